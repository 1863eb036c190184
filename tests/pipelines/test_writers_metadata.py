"""Frame writers keep metadata where each format does, and read it back unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from lase_e2v.pipelines.writers import read_frames_metadata, write_frames

#: characters ffmpeg's metadata format escapes, quotes, a newline and non-ASCII text
METADATA = {"method": "lase", "caption": 'a cat; on = a "sofa" #1 \\ back\nslash, café'}


@pytest.mark.parametrize("name", ["video.mp4", "frames.h5", "frames"])
def test_metadata_round_trip(tmp_path, name):
    frames = np.linspace(0, 1, 3 * 8 * 10, dtype=np.float32).reshape(3, 8, 10)
    out = tmp_path / name
    assert write_frames(out, frames, np.array([0, 10, 20]), fps=10, metadata=METADATA) == 3
    assert read_frames_metadata(out) == METADATA


@pytest.mark.parametrize("name", ["video.mp4", "frames.h5", "frames"])
def test_no_metadata_reads_empty(tmp_path, name):
    out = tmp_path / name
    write_frames(out, np.zeros((2, 8, 10), np.float32), np.array([0, 10]), fps=10)
    assert read_frames_metadata(out) == {}
