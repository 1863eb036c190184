"""Every ``lase-e2v`` command end to end through ``cli.main``: results on real data, and bad input
giving exit status 2 with one ``error:`` line (no traceback, no partial output)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from lase_e2v.cli import main
from lase_e2v.demo import DEMO_CLIP
from lase_e2v.events.formats import open_events, read_events
from lase_e2v.events.formats.hdf5 import write_hdf5

COMMANDS = ["info", "convert", "reconstruct", "simulate", "make-dataset", "preview", "train", "train-fusion", "evaluate",
            "benchmark", "demo", "live", "serve"]


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    for fragment in fragments:
        assert fragment in errors[0]


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory):
    """The first 0.2 s of the bundled clip with its 7 APS frames: fast enough for LaSe-E2V on CPU."""
    reader = open_events(DEMO_CLIP)
    events = reader.read()
    frames = reader.read_frames()
    end_us = int(frames.t_us[6])
    keep = frames.t_us <= end_us
    path = tmp_path_factory.mktemp("clip") / "short.h5"
    from lase_e2v.events.streams import Frames

    write_hdf5(path, events.time_slice(int(events.t[0]), end_us),
               Frames(frames.images[keep], frames.t_us[keep]), attrs={"caption": reader.caption})
    return path


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(capsys, command):
    code, out, _ = run(capsys, command, "--help")
    assert code == 0 and "Usage" in out


def test_info_reports_the_bundled_clip(capsys):
    code, out, _ = run(capsys, "info", DEMO_CLIP)
    assert code == 0
    assert "365,847" in out and "240" in out and "180" in out and "31" in out


def test_info_bad_input(capsys, tmp_path):
    assert_one_line_error(*run(capsys, "info", tmp_path / "missing.h5")[::2], "no such file")
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"\x00\x01not hdf5 at all" * 10)
    assert_one_line_error(*run(capsys, "info", garbage)[::2], "garbage.h5")
    unknown = tmp_path / "events.xyz"
    unknown.write_text("1 2 3\n")
    assert_one_line_error(*run(capsys, "info", unknown)[::2], "events.xyz")


def test_info_rejects_unsorted_and_out_of_sensor_text(capsys, tmp_path):
    unsorted = tmp_path / "unsorted.txt"
    unsorted.write_text("240 180\n0.002 1 1 1\n0.001 2 2 0\n")
    assert_one_line_error(*run(capsys, "info", unsorted)[::2], "timestamps")
    outside = tmp_path / "outside.txt"
    outside.write_text("240 180\n0.001 1 1 1\n0.002 240 2 0\n")
    assert_one_line_error(*run(capsys, "info", outside)[::2], "outside.txt")


def test_convert_round_trip_through_text(capsys, short_clip, tmp_path):
    text = tmp_path / "clip.txt"
    code, out, _ = run(capsys, "convert", short_clip, text)
    assert code == 0 and "wrote" in out
    back = tmp_path / "back.h5"
    assert run(capsys, "convert", text, back, "--to", "hdf5")[0] == 0
    original, again = read_events(short_clip), read_events(back)
    assert len(again) == len(original) > 0
    np.testing.assert_array_equal(again.t, original.t)
    np.testing.assert_array_equal(again.p, original.p)
    assert open_events(back).read_frames().images.shape == open_events(short_clip).read_frames().images.shape


def test_convert_bad_output_leaves_nothing(capsys, short_clip, tmp_path):
    target = tmp_path / "out.xyz"
    assert_one_line_error(*run(capsys, "convert", short_clip, target)[::2], "out.xyz")
    assert not target.exists()


@pytest.mark.parametrize("method, precision", [("integrate", []), ("firenet_plus", []),
                                               ("firenet_plus", ["--dtype", "bfloat16"])])
def test_reconstruct_peers_to_png_folder(capsys, short_clip, tmp_path, method, precision):
    out = tmp_path / "frames"
    code, stdout, _ = run(capsys, "reconstruct", short_clip, "-o", out, "--method", method, *precision)
    assert code == 0 and f"wrote 6 frames ({method})" in stdout
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) == 6
    image = np.asarray(Image.open(pngs[-1]))
    assert image.shape == (180, 240) and image.std() > 5  # a picture, not a constant


def test_reconstruct_lase_to_hdf5_uses_the_caption(capsys, short_clip, tmp_path, monkeypatch):
    from lase_e2v.pipelines.lase import LaSeE2VPipeline

    seen = []
    generate = LaSeE2VPipeline.generate_clip

    def spy(self, voxels, **kwargs):
        seen.append((kwargs["prompt"], self.options.num_inference_steps, self.options.seed))
        return generate(self, voxels, **kwargs)

    monkeypatch.setattr(LaSeE2VPipeline, "generate_clip", spy)
    out = tmp_path / "lase.h5"
    code, stdout, _ = run(capsys, "reconstruct", short_clip, "-o", out, "--steps", "4", "--seed", "1")
    assert code == 0 and "wrote 6 frames (lase)" in stdout
    assert len(seen) == 2  # 6 windows in clips of 4
    assert all(prompt.startswith("a table with a model arch") and (steps, seed) == (4, 1)
               for prompt, steps, seed in seen)
    import h5py

    with h5py.File(out) as file:  # frames-only HDF5: images/image%09d
        stack = np.stack([file["images"][name][()] for name in sorted(file["images"])])
    assert stack.shape == (6, 180, 240)
    assert 0 <= stack.min() and stack.max() <= 255 and stack.std() > 5


def test_reconstruct_time_windows_to_mp4(capsys, short_clip, tmp_path):
    out = tmp_path / "video.mp4"
    code, stdout, _ = run(capsys, "reconstruct", short_clip, "-o", out, "--method", "integrate", "--window", "ms:50")
    assert code == 0 and "wrote 5 frames" in stdout  # 0.229 s of events in 50 ms windows, the last partial
    import imageio.v2 as imageio

    with imageio.get_reader(out) as video:
        assert video.count_frames() == 5


def test_reconstruct_bad_options(capsys, short_clip, tmp_path):
    out = tmp_path / "x.mp4"
    assert_one_line_error(*run(capsys, "reconstruct", short_clip, "-o", out, "--method", "magic")[::2], "magic")
    assert_one_line_error(
        *run(capsys, "reconstruct", short_clip, "-o", out, "--method", "firenet", "--prompt", "day")[::2],
        "takes no option(s) prompt")
    assert_one_line_error(
        *run(capsys, "reconstruct", short_clip, "-o", out, "--method", "integrate", "--window", "ms:-3")[::2])
    assert_one_line_error(
        *run(capsys, "reconstruct", short_clip, "-o", out, "--method", "firenet", "--dtype", "half")[::2], "half")
    assert_one_line_error(
        *run(capsys, "reconstruct", short_clip, "-o", out, "--method", "integrate", "--dtype", "bfloat16")[::2],
        "takes no option(s) dtype")
    wrong = tmp_path / "not_a_checkpoint"
    wrong.mkdir()
    assert_one_line_error(*run(capsys, "reconstruct", short_clip, "-o", out, "--checkpoint", wrong)[::2],
                          "not_a_checkpoint")
    assert not out.exists()
    assert_one_line_error(*run(capsys, "reconstruct", short_clip, "--method", "integrate")[::2],  # no -o
                          "--output", "see lase-e2v reconstruct --help")


def test_usage_errors_are_one_line(capsys):
    """Typer's own errors (unknown option or command, bad value) read like ours: one line, exit 2."""
    code, out, err = run(capsys, "reconstruct", "clip.h5", "--outpt", "video.mp4")
    assert_one_line_error(code, err, "No such option: --outpt", "--output")
    assert out == "" and len(err.splitlines()) == 1 and "╭" not in err
    assert_one_line_error(*run(capsys, "nosuch")[::2], "No such command 'nosuch'", "see lase-e2v --help")
    assert_one_line_error(*run(capsys, "make-dataset", "out", "-n", "abc")[::2], "--num-sequences")
    code, out, err = run(capsys)  # a bare command shows its help, no error line
    assert code == 2 and "Usage" in out and "error:" not in err
    assert run(capsys, "--help")[0] == 0


def test_ctrl_c_leaves_no_output(capsys, short_clip, tmp_path, monkeypatch):
    from lase_e2v.pipelines.integrator import IntegratorPipeline

    def interrupted(self, windows, caption=None, progress=False):
        raise KeyboardInterrupt

    monkeypatch.setattr(IntegratorPipeline, "iter_frames", interrupted)
    out = tmp_path / "video.mp4"
    code, _, err = run(capsys, "reconstruct", short_clip, "-o", out, "--method", "integrate")
    assert code == 130 and "interrupted" in err
    assert list(tmp_path.iterdir()) == []


def test_simulate_an_image_folder(capsys, tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    ramp = np.tile(np.linspace(20, 230, 48), (32, 1))
    for k in range(6):  # a bright bar moving right over a ramp
        image = ramp.copy()
        image[:, 4 + 6 * k: 10 + 6 * k] = 255
        Image.fromarray(image.astype(np.uint8)).save(frames / f"{k:03d}.png")
    out = tmp_path / "events.h5"
    code, stdout, _ = run(capsys, "simulate", frames, "-o", out, "--fps", "30")
    assert code == 0
    events = read_events(out)
    assert f"wrote {len(events):,} events" in stdout and len(events) > 100
    assert events.sensor_size == (32, 48)
    assert set(np.unique(events.p)) == {-1, 1}
    assert_one_line_error(*run(capsys, "simulate", tmp_path / "nothing", "-o", tmp_path / "e.h5")[::2], "nothing")


def test_make_dataset_realistic_reports_the_redraws(capsys, tmp_path, shared_dir):
    data = tmp_path / "real"
    code, stdout, _ = run(capsys, "make-dataset", data, "-n", "3", "--duration", "0.2", "--height", "24",
                          "--width", "32", "--seed", "3", "--realistic",
                          "--coco-dir", shared_dir / "data" / "coco_mini")
    records = json.loads((data / "manifest.json").read_text())["sequences"]
    redrawn = sum(r["realism"]["draws"] > 1 for r in records)
    outside = sum(not r["realism"]["in_real_range"] for r in records)
    assert code == 0 and redrawn > 0
    last_line = stdout.strip().splitlines()[-1]
    assert last_line.endswith(f"realistic: {redrawn} redrawn, {outside} still out of range")
    code, stdout, stderr = run(capsys, "make-dataset", tmp_path / "lit", "-n", "3", "--keep-lighting",
                               "--coco-dir", shared_dir / "data" / "coco_mini")
    assert_one_line_error(code, stderr, "keep_lighting")
    assert not (tmp_path / "lit").exists()


def test_make_dataset_preview_and_train(capsys, tmp_path, shared_dir):
    data = tmp_path / "data"
    code, stdout, _ = run(capsys, "make-dataset", data, "-n", "2", "--duration", "0.2", "--height", "32",
                          "--width", "32", "--coco-dir", shared_dir / "data" / "coco_mini")
    assert code == 0 and "wrote 2 sequences" in stdout
    manifest = json.loads((data / "manifest.json").read_text())
    sequences = manifest["sequences"]
    assert sorted(s["split"] for s in sequences) == ["train", "val"]

    png = tmp_path / "preview.png"
    assert run(capsys, "preview", data / sequences[0]["file"], "-o", png, "--frame", "3")[0] == 0
    assert Image.open(png).size[0] > 200

    config = tmp_path / "train.json"
    config.write_text(json.dumps({"run_dir": str(tmp_path / "run"), "data_dir": str(data), "crop": [32, 32],
                                  "clip_frames": 2, "batch_size": 1, "max_steps": 2, "warmup_steps": 1,
                                  "checkpoint_every": 2, "log_every": 1, "validate_every": 0, "val_clips": 1,
                                  "val_inference_steps": 1}))
    code, stdout, _ = run(capsys, "train", "--config", config)
    assert code == 0 and "training finished" in stdout
    assert (tmp_path / "run" / "pipeline" / "pipeline.json").is_file()
    assert (tmp_path / "run" / "checkpoint-2").is_dir()
    code, stdout, _ = run(capsys, "train", "--config", config, "--max-steps", "3")  # train the run longer
    assert code == 0 and (tmp_path / "run" / "log.csv").read_text().splitlines()[-1].startswith("3,")

    assert_one_line_error(*run(capsys, "make-dataset", data, "-n", "1")[::2], "already exists")
    assert_one_line_error(*run(capsys, "make-dataset", tmp_path / "new", "-n", "1", "--photometry", "gamma",
                               "--coco-dir", shared_dir / "data" / "coco_mini")[::2], "photometry 'gamma' unknown")
    assert not (tmp_path / "new").exists()
    assert_one_line_error(*run(capsys, "train", "--config", tmp_path / "none.json")[::2], "none.json")
    config.write_text('{"max_steps": "many"')
    assert_one_line_error(*run(capsys, "train", "--config", config)[::2], "train.json")


def test_evaluate_and_benchmark_on_the_clip(capsys, short_clip, tmp_path):
    out = tmp_path / "evaluate"
    code, stdout, _ = run(capsys, "evaluate", "--method", "integrate", "--data", short_clip, "-o", out)
    assert code == 0 and "SSIM" in stdout
    scores = json.loads((out / "aggregate.json").read_text())["scores"]["Integrator"]["custom"]
    assert scores["num_frames"] == 6 and 0.3 < scores["ssim"] < 0.6  # measured 0.423

    report = tmp_path / "bench"
    code, stdout, _ = run(capsys, "benchmark", "--data", short_clip, "--methods", "integrate,firenet", "-o", report)
    assert code == 0 and (report / "index.html").is_file()
    assert "FireNet" in (report / "index.html").read_text()
    assert_one_line_error(*run(capsys, "benchmark", "--data", short_clip, "--methods", ",", "-o", tmp_path / "b")[::2],
                          "--methods")
    assert not (tmp_path / "b").exists()


def test_demo_writes_video_and_grid(capsys, tmp_path):
    code, stdout, _ = run(capsys, "demo", "-o", tmp_path, "--method", "integrate")
    assert code == 0
    assert "30 frames" in stdout
    grid = Image.open(tmp_path / "integrate_grid.png")
    assert grid.size == (3 * 240, 18 + 4 * 180)
    assert (tmp_path / "integrate_side_by_side.mp4").stat().st_size > 10_000
    ssim = float(stdout.split("SSIM ")[1].split()[0])
    assert 0.35 < ssim < 0.6  # the integrator on the real clip (measured 0.429)
