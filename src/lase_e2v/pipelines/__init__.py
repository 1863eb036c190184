"""Reconstruction pipelines: events -> frames, all under one contract (:class:`ReconstructionPipeline`).

``from lase_e2v.pipelines import LaSeE2VPipeline, load_method`` and the names below work; each is
imported on first use, so ``lase_e2v.pipelines.output`` / ``writers`` / ``registry`` stay light (no
torch/diffusers import until a pipeline is needed).
"""

from __future__ import annotations

import importlib

#: public name -> the module that defines it
_EXPORTS = {
    "ReconstructionPipeline": "output",
    "ReconstructionOutput": "output",
    "ReconstructedFrame": "output",
    "LaSeE2VPipeline": "lase",
    "SamplingOptions": "sampling_options",
    "load_lase_pipeline": "lase",
    "RecurrentReconstructionPipeline": "recurrent",
    "IntegratorPipeline": "integrator",
    "load_reconstructor": "baselines",
    "METHODS": "registry",
    "MethodSpec": "registry",
    "get_method": "registry",
    "load_method": "registry",
    "method_names": "registry",
    "write_frames": "writers",
    "read_frames_metadata": "writers",
    "CaptionedPipeline": "captions",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"lase_e2v.pipelines.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'lase_e2v.pipelines' has no attribute '{name}'")
