"""Every reconstruction method by name: the one list that the API, the CLI, the evaluation and the
benchmarks read.

A :class:`MethodSpec` gives a method's command-line name, its display name for tables, a one-line
summary, where its weights come from, its loader and the keyword options the loader takes with their
defaults. ``load_method("firenet_plus")`` builds a ready :class:`ReconstructionPipeline`; options a
method does not take are refused before anything is loaded.

Loaders import their modules on first use, so listing the methods (``--help``, ``lase-e2v methods``)
does not import torch.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lase_e2v.errors import ConfigError, quoted

if TYPE_CHECKING:
    from lase_e2v.pipelines.output import ReconstructionPipeline

#: where a method's weights come from
WEIGHT_SOURCES = ("bundled", "checkpoint", "none")


@dataclass(frozen=True)
class MethodSpec:
    """One registered method.

    Args:
        name: what ``--method`` and the API take (``"firenet_plus"``).
        display_name: the label in tables and reports (``"FireNet+"``).
        summary: one line for ``--help`` and ``lase-e2v methods``.
        weights: ``"bundled"`` (shipped in the package; ``checkpoint`` replaces them), ``"checkpoint"``
            (not redistributable: the user passes a checkpoint) or ``"none"`` (training-free).
        loader: ``loader(checkpoint, device, **options) -> ReconstructionPipeline``.
        option_defaults: returns ``{option: default}`` of the loader's keyword options; called on
            demand because LaSe-E2V's come from torch-importing code.
    """

    name: str
    display_name: str
    summary: str
    weights: str
    loader: Callable[..., ReconstructionPipeline]
    option_defaults: Callable[[], dict[str, Any]]

    def __post_init__(self) -> None:
        if self.weights not in WEIGHT_SOURCES:
            raise ValueError(f"method '{self.name}': weights must be one of {WEIGHT_SOURCES}")

    def defaults(self) -> dict[str, Any]:
        """``{option: default}`` of every keyword option the method takes."""
        return self.option_defaults()

    def check_options(self, options: dict[str, Any]) -> None:
        """Refuse options the method does not take (one :class:`ConfigError` naming them)."""
        unknown = sorted(set(options) - set(self.defaults()))
        if unknown:
            accepted = ", ".join(self.defaults()) or "none"
            raise ConfigError(
                f"method '{self.name}' takes no option(s) {', '.join(unknown)} (its options: {accepted})"
            )

    def load(
        self, checkpoint: str | Path | None = None, device: str = "cpu", **options: Any
    ) -> ReconstructionPipeline:
        """Build the method's pipeline; ``checkpoint`` replaces the default weights."""
        self.check_options(options)
        return self.loader(checkpoint, device, **options)


def _keyword_defaults(function: Callable, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """``{name: default}`` of ``function``'s parameters that have a default, minus ``skip``."""
    return {
        name: parameter.default
        for name, parameter in inspect.signature(function).parameters.items()
        if parameter.default is not inspect.Parameter.empty and name not in skip
    }


# -- loaders -----------------------------------------------------------------------------------


def _load_lase(checkpoint, device, **options) -> ReconstructionPipeline:
    from lase_e2v.pipelines.lase import load_lase_pipeline

    return load_lase_pipeline(checkpoint, device=device, **options)


def _lase_defaults() -> dict[str, Any]:
    """SamplingOptions' field defaults; a checkpoint's saved and recommended options replace them."""
    from lase_e2v.pipelines.sampling_options import SamplingOptions

    return {field.name: field.default for field in dataclasses.fields(SamplingOptions)}


def _peer(name: str) -> Callable[..., ReconstructionPipeline]:
    def load(checkpoint, device, **options) -> ReconstructionPipeline:
        from lase_e2v.pipelines.baselines import load_reconstructor

        return load_reconstructor(name, checkpoint=checkpoint, device=device, **options)

    return load


def _recurrent_defaults() -> dict[str, Any]:
    from lase_e2v.pipelines.recurrent import RecurrentReconstructionPipeline

    return _keyword_defaults(RecurrentReconstructionPipeline.__init__, skip=("device", "name"))


def _integrator_defaults() -> dict[str, Any]:
    from lase_e2v.pipelines.integrator import IntegratorPipeline

    return _keyword_defaults(IntegratorPipeline.__init__)


def _recurrent_spec(name: str, display_name: str, summary: str, weights: str = "bundled") -> MethodSpec:
    return MethodSpec(name, display_name, summary, weights, _peer(name), _recurrent_defaults)


_SPECS = (
    MethodSpec(
        "lase", "LaSe-E2V", "language-guided latent video diffusion (bundled tiny checkpoint, or a saved pipeline)",
        "bundled", _load_lase, _lase_defaults,
    ),
    _recurrent_spec("firenet", "FireNet", "FireNet, Scheerlinck et al. WACV 2020 (official weights)"),
    _recurrent_spec("firenet_plus", "FireNet+", "FireNet+ of EVREAL (official weights)"),
    _recurrent_spec("pienet_lite", "PIE-Net-Lite", "PIE-Net-Lite, Qu et al. (official weights)"),
    _recurrent_spec("pienet", "PIE-Net", "PIE-Net, Qu et al. (official weights)"),
    _recurrent_spec("cista_tc", "CISTA-TC", "CISTA-TC, Liu et al. ICASSP 2022 (official weights)"),
    _recurrent_spec("e2vid", "E2VID", "E2VID, Rebecq et al. TPAMI 2019 (your checkpoint)", weights="checkpoint"),
    _recurrent_spec("e2vid_plus", "E2VID+", "E2VID+, Stoffregen et al. ECCV 2020 (your checkpoint)",
                    weights="checkpoint"),
    MethodSpec(
        "integrate", "Integrator", "high-pass direct integration, Scheerlinck et al. ACCV 2018 (training-free)",
        "none", _peer("integrate"), _integrator_defaults,
    ),
)
#: name -> spec, in the order help texts list them
METHODS: dict[str, MethodSpec] = {spec.name: spec for spec in _SPECS}
#: the methods ``lase-e2v benchmark`` compares when ``--methods`` is not given
DEFAULT_BENCHMARK_METHODS = ("integrate", "firenet", "firenet_plus", "lase")
#: the method ``lase-e2v live`` runs when ``--method`` is not given: among the fastest bundled ones
#: (FireNet+: about FireNet's speed, better frames), so a CPU comes closest to keeping up
DEFAULT_LIVE_METHOD = "firenet_plus"


def method_names() -> list[str]:
    """Every registered method name, in registry order."""
    return list(METHODS)


def iter_methods() -> Iterator[MethodSpec]:
    """Every registered :class:`MethodSpec`, in registry order."""
    return iter(METHODS.values())


def get_method(name: str) -> MethodSpec:
    """The spec of ``name``; an unknown name raises a :class:`ConfigError` listing the choices."""
    try:
        return METHODS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown method {quoted(name)}; choose one of {', '.join(METHODS)}") from None


def load_method(
    name: str, checkpoint: str | Path | None = None, device: str = "cpu", **options: Any
) -> ReconstructionPipeline:
    """A ready pipeline for the registered method ``name`` (see :data:`METHODS`).

    Args:
        name: a registered method name.
        checkpoint: weights file or folder; ``None`` uses the bundled weights (required for
            methods whose ``weights`` is ``"checkpoint"``, refused for training-free ones).
        device: torch device.
        options: the method's keyword options (:meth:`MethodSpec.defaults` lists them).
    """
    return get_method(name).load(checkpoint, device, **options)

