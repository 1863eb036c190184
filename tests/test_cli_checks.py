"""The CLI checks outputs before any work, keeps library warnings off the terminal unless --verbose,
and quotes bad input escaped and short, on one line."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import numpy as np
import pytest

from lase_e2v.cli import lase_options, main, one_line
from lase_e2v.errors import quoted
from lase_e2v.pipelines.integrator import IntegratorPipeline


def run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def error_line(err: str) -> str:
    lines = [line.split("\r")[-1] for line in err.splitlines()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, err
    return errors[0]


@pytest.fixture
def no_reconstruction(monkeypatch):
    """Fail the test if any reconstruction starts."""
    def refuse(*args, **kwargs):
        raise AssertionError("reconstruction started before the output was checked")

    monkeypatch.setattr(IntegratorPipeline, "iter_frames", refuse)


@pytest.mark.parametrize(
    "output, message",
    [
        ("out.aedat4", "unknown output type '.aedat4'"),
        ("existing.mp4", "existing.mp4: exists; pass --overwrite"),
        ("a_file/out.mp4", "a_file is not a folder"),
    ],
)
def test_reconstruct_checks_its_output_first(capsys, tmp_path, synthetic_sequence, no_reconstruction, output,
                                             message):
    (tmp_path / "existing.mp4").write_bytes(b"keep")
    (tmp_path / "a_file").write_text("x")
    code, _, err = run(capsys, "reconstruct", synthetic_sequence, "-o", tmp_path / output, "--method", "integrate")
    assert code == 2 and message in error_line(err)
    assert (tmp_path / "existing.mp4").read_bytes() == b"keep"


def test_overwrite_replaces_an_existing_output(capsys, tmp_path, synthetic_sequence):
    out = tmp_path / "frames.h5"
    out.write_bytes(b"old")
    assert run(capsys, "reconstruct", synthetic_sequence, "-o", out, "--method", "integrate", "--overwrite")[0] == 0
    assert out.read_bytes()[:4] == b"\x89HDF"


@pytest.mark.parametrize(
    "args, message",
    [
        (["convert", "{data}", "{tmp}/events.mp4"], "cannot tell the output format from '.mp4'"),
        (["convert", "{data}", "{tmp}/existing.h5"], "existing.h5: exists"),
        (["simulate", "{tmp}", "-o", "{tmp}/events.xyz"], "cannot tell the output format"),
        (["preview", "{data}", "-o", "{tmp}/preview.jpg"], "name it *.png"),
        (["evaluate", "--method", "integrate", "--data", "{data}", "-o", "{tmp}/existing.h5"], "exists"),
        (["benchmark", "--methods", "integrate", "--data", "{data}", "-o", "{tmp}/existing.h5"], "exists"),
        (["demo", "--method", "integrate", "-o", "{tmp}/a_file"], "a_file is not a folder"),
        (["live", "{data}", "--method", "integrate", "-o", "{tmp}/existing.h5"], "existing.h5: exists"),
        (["live", "{data}", "--method", "integrate", "-o", "{tmp}/a_file/live.mp4"], "a_file is not a folder"),
        (["live", "{data}", "--method", "integrate", "-o", "{tmp}/live.aedat4"], "unknown output type '.aedat4'"),
    ],
)
def test_every_writing_command_checks_its_output_first(capsys, tmp_path, synthetic_sequence, no_reconstruction,
                                                       args, message):
    (tmp_path / "existing.h5").write_bytes(b"keep")
    (tmp_path / "a_file").write_text("x")
    args = [a.format(data=synthetic_sequence, tmp=tmp_path) for a in args]
    code, _, err = run(capsys, *args)
    assert code == 2 and message in error_line(err)
    assert (tmp_path / "existing.h5").read_bytes() == b"keep"


#: runs the CLI in a fresh process (pytest records warnings itself) with a reconstructor that warns and logs
NOISY_CLI = """
import logging, sys, warnings
from lase_e2v.cli import main
from lase_e2v.pipelines.integrator import IntegratorPipeline

original = IntegratorPipeline.iter_frames

def noisy(self, windows, caption=None, progress=False):
    warnings.warn("a library warning", UserWarning)
    logging.getLogger("diffusers.models").warning("a library log message")
    yield from original(self, windows, caption, progress)

IntegratorPipeline.iter_frames = noisy
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("verbose", [False, True])
def test_library_warnings_show_only_with_verbose(synthetic_sequence, tmp_path, verbose):
    args = ["--verbose"] * verbose + ["reconstruct", str(synthetic_sequence), "-o", str(tmp_path / "a.h5"),
                                      "--method", "integrate"]
    done = subprocess.run([sys.executable, "-c", NOISY_CLI, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "wrote 5 frames" in done.stdout
    assert ("a library warning" in done.stderr) is verbose
    assert ("a library log message" in done.stderr) is verbose


def test_main_leaves_the_process_as_it_found_it(capsys, synthetic_sequence, tmp_path):
    before = (logging.getLogger().level, logging.getLogger("diffusers").level, os.environ.get("DIFFUSERS_VERBOSITY"))
    assert run(capsys, "reconstruct", synthetic_sequence, "-o", tmp_path / "a.h5", "--method", "integrate")[0] == 0
    after = (logging.getLogger().level, logging.getLogger("diffusers").level, os.environ.get("DIFFUSERS_VERBOSITY"))
    assert after == before


def test_quoted_input_is_escaped_and_short():
    assert quoted("abc") == "'abc'"
    text = quoted("line\nbreak\x1b[31m" + "x" * 100)
    assert len(text) == 40 and text.endswith("...") and "\n" not in text and "\x1b" not in text
    assert one_line("a\nb\x1b[0m") == "a\\nb\\x1b[0m"


def test_a_binary_text_file_gives_one_short_line_and_no_abort(tmp_path):
    garbage = tmp_path / "events.txt"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    # a fresh process: pyarrow's read-ahead thread once aborted the interpreter at exit after this error
    done = subprocess.run([sys.executable, "-m", "lase_e2v.cli", "info", str(garbage)], capture_output=True,
                          text=True, errors="replace", timeout=120)
    assert done.returncode == 2, done.stderr[-500:]
    line = error_line(done.stderr)
    assert "expected lines 't x y p'" in line and len(line) < 200 and line.isprintable()


def test_attention_window_zero_means_the_whole_frame():
    assert lase_options(None, None, None, None, None, 0) == {"attention_window": None}
    assert lase_options(None, 2, None, None, None, 128) == {"num_inference_steps": 2, "attention_window": 128}
    assert "attention_window" not in lase_options(None, None, None, None)
    assert lase_options(None, None, None, None, noise="fixed") == {"noise": "fixed"}
    assert lase_options(None, None, None, None, estimate_mix=0.0) == {"estimate_mix": 0.0}  # 0 is a choice, not unset
    assert lase_options(None, None, None, None, flips="none,h") == {"flips": "none,h"}  # SamplingOptions splits it


def test_a_bad_estimate_mix_stops_before_any_output(capsys, tmp_path, synthetic_sequence):
    out = tmp_path / "out.h5"
    code, _, err = run(capsys, "reconstruct", synthetic_sequence, "-o", out, "--estimate-mix", "1.5")
    assert code == 2 and "estimate_mix must be in [0, 1], got 1.5" in error_line(err)
    assert not out.exists()


def test_bad_flips_stop_before_any_output(capsys, tmp_path, synthetic_sequence):
    out = tmp_path / "out.h5"
    code, _, err = run(capsys, "reconstruct", synthetic_sequence, "-o", out, "--flips", "none,up")
    assert code == 2 and "flips must be distinct names" in error_line(err) and "'up'" in error_line(err)
    code, _, err = run(capsys, "reconstruct", synthetic_sequence, "-o", out, "--flips", "none,h,v",
                       "--samples", "4")
    assert code == 2 and "num_samples (4) must be a multiple of the number of flips (3)" in error_line(err)
    assert not out.exists()


def test_a_bad_noise_mode_stops_before_any_output(capsys, tmp_path, synthetic_sequence):
    out = tmp_path / "out.h5"
    code, _, err = run(capsys, "reconstruct", synthetic_sequence, "-o", out, "--noise", "pink")
    assert code == 2 and "noise 'pink' unknown; choose from ('independent', 'fixed')" in error_line(err)
    assert not out.exists()


@pytest.mark.parametrize(("method", "message"), [
    ("lase", "attention_window must be >= 8 pixels"),
    ("firenet", "attention_window"),  # a peer takes no LaSe-E2V sampling option
])
def test_a_bad_attention_window_stops_before_any_output(capsys, tmp_path, synthetic_sequence, method, message):
    out = tmp_path / "out.mp4"
    code, _, err = run(capsys, "reconstruct", synthetic_sequence, "-o", out, "--method", method,
                       "--attention-window", "4")
    assert code == 2 and message in error_line(err)
    assert not out.exists()
