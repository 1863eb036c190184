"""Peer reconstructors: FireNet / FireNet+ and E2VID / E2VID+ (recurrent CNNs), with checkpoint loading."""

from lase_e2v.models.baselines.checkpoints import (
    ARCHITECTURES,
    convert_checkpoint,
    load_baseline_checkpoint,
    model_from_state_dict,
)
from lase_e2v.models.baselines.e2vid import E2VID
from lase_e2v.models.baselines.firenet import FireNet

__all__ = [
    "ARCHITECTURES",
    "E2VID",
    "FireNet",
    "convert_checkpoint",
    "load_baseline_checkpoint",
    "model_from_state_dict",
]
