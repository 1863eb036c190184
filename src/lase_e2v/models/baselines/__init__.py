"""Peer reconstructors: FireNet / FireNet+, E2VID / E2VID+ and PIE-Net(-Lite) (recurrent CNNs), with checkpoint loading."""

from lase_e2v.models.baselines.checkpoints import (
    ARCHITECTURES,
    convert_checkpoint,
    load_baseline_checkpoint,
    model_from_state_dict,
)
from lase_e2v.models.baselines.e2vid import E2VID
from lase_e2v.models.baselines.firenet import FireNet
from lase_e2v.models.baselines.pienet import PIENet, PIENetState

__all__ = [
    "ARCHITECTURES",
    "E2VID",
    "FireNet",
    "PIENet",
    "PIENetState",
    "convert_checkpoint",
    "load_baseline_checkpoint",
    "model_from_state_dict",
]
