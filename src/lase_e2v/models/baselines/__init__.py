"""Peer reconstructors: FireNet / FireNet+, E2VID / E2VID+, PIE-Net(-Lite) and CISTA-TC (recurrent CNNs), with
checkpoint loading."""

from lase_e2v.models.baselines.checkpoints import (
    ARCHITECTURES,
    BaselineModel,
    convert_checkpoint,
    load_baseline_checkpoint,
    model_from_state_dict,
)
from lase_e2v.models.baselines.cista import CistaTC
from lase_e2v.models.baselines.e2vid import E2VID
from lase_e2v.models.baselines.firenet import FireNet
from lase_e2v.models.baselines.pienet import PIENet, PIENetState

__all__ = [
    "ARCHITECTURES",
    "BaselineModel",
    "CistaTC",
    "E2VID",
    "FireNet",
    "PIENet",
    "PIENetState",
    "convert_checkpoint",
    "load_baseline_checkpoint",
    "model_from_state_dict",
]
