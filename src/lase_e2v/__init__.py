"""lase-e2v: event-camera streams to video, with LaSe-E2V (language-guided event-to-video diffusion)."""

__version__ = "0.1.0"
