"""Build a peer reconstructor by name: ``load_reconstructor("firenet")`` and friends.

Methods: ``firenet``, ``firenet_plus``, ``pienet_lite``, ``pienet`` (bundled weights), ``e2vid``,
``e2vid_plus`` (weights are not redistributable here: pass ``checkpoint=``) and ``integrate``
(training-free, no weights).

Where default weights come from, first found wins (all local files; nothing is downloaded):

1. ``$LASE_WEIGHTS_DIR/<file>``;
2. ``<shared>/weights/baselines/<file>`` (the development layout, see :func:`lase_e2v.paths.shared_dir`);
3. the copy bundled in the package, ``lase_e2v/assets/baselines/<method>/`` (config.json + safetensors).
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

from lase_e2v.errors import CheckpointError, ConfigError
from lase_e2v.models.baselines import load_baseline_checkpoint
from lase_e2v.paths import shared_dir
from lase_e2v.pipelines.integrator import IntegratorPipeline
from lase_e2v.pipelines.output import ReconstructionPipeline
from lase_e2v.pipelines.precision import check_dtype
from lase_e2v.pipelines.recurrent import RecurrentReconstructionPipeline

#: method -> file name of its official weights in a weights folder (None: user must give a checkpoint)
WEIGHT_FILES: dict[str, str | None] = {
    "firenet": "firenet_state_dict.pth",
    "firenet_plus": "firenet_plus_state_dict.pth",
    "e2vid": None,
    "e2vid_plus": None,
    "pienet_lite": "pienet_lite.pth",
    "pienet": "pienet.pth",
}
METHODS = (*WEIGHT_FILES, "integrate")


def weight_folders() -> list[Path]:
    """Folders searched for default weights, in order (see the module docstring)."""
    folders = [Path(os.environ["LASE_WEIGHTS_DIR"])] if os.environ.get("LASE_WEIGHTS_DIR") else []
    return folders + [shared_dir() / "weights" / "baselines"]


def bundled_weights(method: str) -> Path:
    """The package's own copy of ``method``'s weights (a ``save_pretrained`` folder)."""
    return Path(str(files("lase_e2v") / "assets" / "baselines" / method))


def default_checkpoint(method: str) -> Path:
    """Where ``method``'s weights are found when no checkpoint is given."""
    file_name = WEIGHT_FILES[method]
    if file_name is None:
        raise ConfigError(
            f"method '{method}' has no bundled weights; pass its checkpoint path (checkpoint=...)"
        )
    for folder in weight_folders():
        if (folder / file_name).is_file():
            return folder / file_name
    bundled = bundled_weights(method)
    if not (bundled / "config.json").is_file():
        raise CheckpointError(
            f"no weights for '{method}': {file_name} not found and the bundled copy is missing"
        )
    return bundled


def load_reconstructor(
    method: str,
    checkpoint: str | Path | None = None,
    device: str = "cpu",
    postprocess: bool = False,
    dtype: str = "float32",
) -> ReconstructionPipeline:
    """A ready :class:`ReconstructionPipeline` for ``method`` (see :data:`METHODS`).

    Args:
        method: ``firenet``, ``firenet_plus``, ``e2vid``, ``e2vid_plus``, ``pienet_lite``, ``pienet`` or
            ``integrate``.
        checkpoint: weights file or folder; defaults to the found/bundled official weights.
        device: torch device of the network (``integrate`` has none: it runs in numpy on the CPU).
        postprocess: display post-processing (robust normalisation + unsharp mask); off for evaluation.
        dtype: ``"float32"``, ``"bfloat16"`` or ``"float16"`` (autocast, see
            :mod:`lase_e2v.pipelines.precision`); ``integrate`` computes in float64 and takes only
            ``"float32"``.
    """
    if method not in METHODS:
        raise ConfigError(f"unknown method '{method}'; expected one of {', '.join(METHODS)}")
    check_dtype(dtype)
    if method == "integrate":
        if checkpoint is not None:
            raise ConfigError("method 'integrate' is training-free and takes no checkpoint")
        if dtype != "float32":
            raise ConfigError(f"method 'integrate' computes in float64 numpy; dtype '{dtype}' does not apply")
        return IntegratorPipeline()
    path = Path(checkpoint) if checkpoint is not None else default_checkpoint(method)
    model = load_baseline_checkpoint(path, arch=method)
    return RecurrentReconstructionPipeline(model, device=device, postprocess=postprocess, name=method, dtype=dtype)
