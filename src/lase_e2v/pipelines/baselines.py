"""Build a peer reconstructor by name: ``load_reconstructor("firenet")`` and friends.

The user-facing list of methods, with display names and options, is :mod:`lase_e2v.pipelines.registry`;
this module builds the peers it lists (and the EI estimate sources LaSe-E2V names).

Default weights are the copy bundled in the package, ``lase_e2v/assets/baselines/<method>/``
(config.json + safetensors, converted once from the official files) for ``firenet``,
``firenet_plus``, ``pienet_lite``, ``pienet`` and ``cista_tc``; a ``checkpoint`` path replaces them.
E2VID and E2VID+ weights are not redistributable here, so ``e2vid`` and ``e2vid_plus`` need a ``checkpoint``;
``integrate`` is training-free. Nothing is looked up elsewhere: an installed package never depends on
where it was developed.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from lase_e2v.errors import ConfigError, quoted
from lase_e2v.models.baselines import ARCHITECTURES, load_baseline_checkpoint
from lase_e2v.pipelines.integrator import IntegratorPipeline
from lase_e2v.pipelines.output import ReconstructionPipeline
from lase_e2v.pipelines.recurrent import RecurrentReconstructionPipeline


def bundled_weights(method: str) -> Path:
    """The package's own copy of ``method``'s weights (a ``save_pretrained`` folder)."""
    return Path(str(files("lase_e2v") / "assets" / "baselines" / method))


def default_checkpoint(method: str) -> Path:
    """``method``'s bundled weights; a :class:`ConfigError` when the package does not ship them."""
    bundled = bundled_weights(method)
    if not (bundled / "config.json").is_file():
        raise ConfigError(
            f"method '{method}' has no bundled weights; pass its checkpoint path (checkpoint=...)"
        )
    return bundled


def peer_names() -> list[str]:
    """What :func:`load_reconstructor` builds: every baseline architecture, and ``integrate``."""
    return [*ARCHITECTURES, "integrate"]


def load_reconstructor(
    method: str, checkpoint: str | Path | None = None, device: str = "cpu", **options
) -> ReconstructionPipeline:
    """A ready peer :class:`ReconstructionPipeline` (the user-facing list is :mod:`.registry`).

    Args:
        method: ``firenet``, ``firenet_plus``, ``e2vid``, ``e2vid_plus``, ``pienet_lite``, ``pienet``,
            ``cista_tc`` or ``integrate``.
        checkpoint: weights file or folder; defaults to the bundled official weights.
        device: torch device of the network.
        options: keyword options of :class:`RecurrentReconstructionPipeline` (e.g. ``postprocess``,
            display post-processing, off for evaluation) or of :class:`IntegratorPipeline`.
    """
    if method == "integrate":
        if checkpoint is not None:
            raise ConfigError("method 'integrate' is training-free and takes no checkpoint")
        return IntegratorPipeline(**options)
    if method not in ARCHITECTURES:
        raise ConfigError(f"unknown method {quoted(method)}; expected one of {', '.join(peer_names())}")
    path = Path(checkpoint) if checkpoint is not None else default_checkpoint(method)
    model = load_baseline_checkpoint(path, arch=method)
    return RecurrentReconstructionPipeline(model, device=device, name=method, **options)
