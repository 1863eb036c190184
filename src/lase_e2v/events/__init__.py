"""Events: the container, file formats, windowing and representations (voxel grids, masks)."""

from lase_e2v.events.representations import VoxelGrid, events_to_voxel_grid, to_voxel_grid
from lase_e2v.events.streams import EVENT_DTYPE, EventStream, Frames, concatenate
from lase_e2v.events.windows import CountWindows, FrameWindows, TimeWindows, Window

__all__ = [
    "EVENT_DTYPE",
    "EventStream",
    "Frames",
    "concatenate",
    "VoxelGrid",
    "to_voxel_grid",
    "events_to_voxel_grid",
    "CountWindows",
    "FrameWindows",
    "TimeWindows",
    "Window",
]
