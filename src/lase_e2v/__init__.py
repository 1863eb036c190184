"""lase-e2v: event-camera streams to video, with LaSe-E2V (language-guided event-to-video diffusion)."""

__version__ = "0.1.0"


def __getattr__(name: str):
    """``lase_e2v.reconstruct`` and ``lase_e2v.open_events`` without importing torch at package import."""
    if name == "reconstruct":
        from lase_e2v.api import reconstruct

        return reconstruct
    if name in ("open_events", "read_events", "write_events", "convert"):
        from lase_e2v.events import formats

        return getattr(formats, name)
    raise AttributeError(f"module 'lase_e2v' has no attribute '{name}'")
