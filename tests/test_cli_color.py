"""Colour event cameras through the command line: make-dataset --color, info, convert, reconstruct."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from lase_e2v.errors import ConfigError
from lase_e2v.events.formats import open_events


def test_make_dataset_color_writes_rgb_frames_and_the_pattern(run_cli, tmp_path, shared_dir):
    out = tmp_path / "data"
    code, stdout, _ = run_cli("make-dataset", out, "-n", "2", "--duration", "0.2", "--height", "16", "--width", "24",
                              "--coco-dir", shared_dir / "data" / "coco_mini", "--color", "--bayer", "gbrg")
    assert code == 0 and "wrote 2 sequences" in stdout
    assert json.loads((out / "manifest.json").read_text())["color_filter"] == "GBRG"
    reader = open_events(out / "seq_00000.h5")
    assert reader.color_filter == "GBRG" and reader.read_frames().images.shape == (7, 16, 24, 3)
    from lase_e2v.training.clips import SyntheticClipDataset

    with pytest.raises(ConfigError, match="a colour dataset .*; LaSe-E2V trains on gray ones"):
        SyntheticClipDataset(out, clip_frames=2)


def test_info_convert_and_reconstruct_a_colour_recording(run_cli, cli_error, color_dataset, tmp_path):
    sequence = color_dataset / "seq_00003.h5"
    code, stdout, _ = run_cli("info", sequence)
    assert code == 0 and "color_filter: RGGB (colour camera)" in stdout and "(120x90 RGB uint8)" in stdout
    # EVREAL folders and HDF5 keep the pattern; the events and RGB frames survive
    folder = tmp_path / "evreal"
    assert run_cli("convert", sequence, folder)[0] == 0
    assert open_events(folder).color_filter == "RGGB"
    assert np.array_equal(open_events(folder).read_frames().images, open_events(sequence).read_frames().images)
    # reconstruct: colour by default (the file says so), gray with --no-color
    colour, gray = tmp_path / "colour", tmp_path / "gray"
    code, stdout, _ = run_cli("reconstruct", sequence, "-o", colour, "--method", "integrate")
    assert code == 0 and "wrote 45 frames (integrate, colour)" in stdout
    assert np.asarray(Image.open(colour / "frame_000030.png")).shape == (90, 120, 3)
    assert run_cli("reconstruct", sequence, "-o", gray, "--method", "integrate", "--no-color")[0] == 0
    assert np.asarray(Image.open(gray / "frame_000030.png")).shape == (90, 120)
    assert "Bayer pattern 'RGBW' unknown" in cli_error("reconstruct", sequence, "-o", tmp_path / "x", "--bayer", "RGBW")
    assert not (tmp_path / "x").exists()


def test_evaluate_scores_colour_in_rgb_with_the_std_rgb_protocol(run_cli, cli_error, color_dataset, tmp_path):
    sequence = color_dataset / "seq_00003.h5"
    out = tmp_path / "rgb"
    code, stdout, _ = run_cli("evaluate", "--method", "integrate", "--data", sequence, "--eval-config", "std_rgb",
                              "-o", out)
    assert code == 0 and json.loads((out / "aggregate.json").read_text())["eval_config"]["color_scoring"] == "rgb"
    line = cli_error("evaluate", "--method", "integrate", "--data", sequence, "--eval-config", "nope", "-o", tmp_path / "x")
    assert "eval definition 'nope' not found" in line and not (tmp_path / "x").exists()
