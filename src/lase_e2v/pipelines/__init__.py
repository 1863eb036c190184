"""Reconstruction pipelines; ``load_reconstructor(method)`` builds a peer reconstructor by name.

``load_reconstructor`` is imported on first use, so ``lase_e2v.pipelines.output`` / ``writers``
stay light (no torch/diffusers import).
"""


def __getattr__(name: str):
    if name == "load_reconstructor":
        from lase_e2v.pipelines.baselines import load_reconstructor

        return load_reconstructor
    raise AttributeError(f"module 'lase_e2v.pipelines' has no attribute '{name}'")
