"""Event simulation: frames to events (ESIM / v2e model) and captioned synthetic training sequences.

* :mod:`~lase_e2v.simulate.esim`: :class:`EventSimulator`, :class:`SimulatorConfig`;
* :mod:`~lase_e2v.simulate.video`: video file / image folder -> events file (:func:`simulate_video`);
* :mod:`~lase_e2v.simulate.motion` / :mod:`~lase_e2v.simulate.scenes`: moving scenes from photos;
* :mod:`~lase_e2v.simulate.dataset`: :func:`make_dataset` (HDF5 sequences + manifest.json);
* :mod:`~lase_e2v.simulate.preview`: :func:`save_preview` (frame | events | caption PNG).
"""

from lase_e2v.simulate.dataset import make_dataset, random_simulator_config
from lase_e2v.simulate.esim import EventSimulator, SimulatorConfig, lin_log
from lase_e2v.simulate.preview import save_preview
from lase_e2v.simulate.video import iter_video_events, read_video_events, simulate_video

__all__ = [
    "EventSimulator",
    "SimulatorConfig",
    "iter_video_events",
    "lin_log",
    "make_dataset",
    "random_simulator_config",
    "read_video_events",
    "save_preview",
    "simulate_video",
]
