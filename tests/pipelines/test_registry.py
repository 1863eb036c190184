"""The method registry: every registered method is reachable from every entry point (API, CLI
reconstruct / demo / evaluate / benchmark help, evaluation, demo), and options are checked first."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lase_e2v.api import reconstruct
from lase_e2v.cli import main
from lase_e2v.demo import run_demo
from lase_e2v.errors import ConfigError
from lase_e2v.evaluation import evaluate
from lase_e2v.models.baselines import ARCHITECTURES
from lase_e2v.pipelines import baselines
from lase_e2v.pipelines.output import ReconstructionPipeline
from lase_e2v.pipelines.registry import METHODS, get_method, iter_methods, load_method, method_names

#: LaSe-E2V's fastest settings: these tests check reachability, not quality
FAST_OPTIONS = {"lase": {"num_inference_steps": 1, "num_samples": 1}}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, str]:
    """Random weights of the official size for methods whose weights are not bundled."""
    import torch

    folder = tmp_path_factory.mktemp("weights")
    paths = {}
    for spec in iter_methods():
        if spec.weights == "checkpoint":
            torch.manual_seed(0)
            model_class, fixed = ARCHITECTURES[spec.name]
            model_class(**fixed).save_pretrained(folder / spec.name)
            paths[spec.name] = str(folder / spec.name)
    return paths


def test_every_peer_the_baselines_build_is_registered():
    assert set(baselines.peer_names()) == set(METHODS) - {"lase"}
    assert len(method_names()) == len(set(spec.display_name for spec in iter_methods()))


@pytest.mark.parametrize("name", method_names())
def test_api_reconstructs_with_every_method(name, synthetic_sequence, checkpoints):
    output = reconstruct(synthetic_sequence, method=name, checkpoint=checkpoints.get(name),
                         **FAST_OPTIONS.get(name, {}))
    assert output.frames.shape == (5, 32, 32)
    assert 0 <= output.frames.min() and output.frames.max() <= 1


@pytest.mark.parametrize("name", method_names())
def test_weights_source_is_what_the_loader_does(name):
    spec = get_method(name)
    if spec.weights == "checkpoint":
        with pytest.raises(ConfigError, match="pass its checkpoint path"):
            load_method(name)
    elif spec.weights == "none":
        with pytest.raises(ConfigError, match="takes no checkpoint"):
            load_method(name, checkpoint="weights.pth")
    else:
        assert isinstance(load_method(name), ReconstructionPipeline)


@pytest.mark.parametrize("name", method_names())
def test_cli_reconstruct_reaches_every_method(name, synthetic_sequence, checkpoints, tmp_path, capsys):
    args = ["reconstruct", str(synthetic_sequence), "-o", str(tmp_path / "out.h5"), "--method", name]
    if name in checkpoints:
        args += ["--checkpoint", checkpoints[name]]
    if name == "lase":
        args += ["--steps", "1", "--samples", "1"]
    assert main(args) == 0
    assert f"wrote 5 frames ({name})" in capsys.readouterr().out


@pytest.mark.parametrize("name", method_names())
def test_evaluation_and_demo_reach_every_method(name, synthetic_sequence, checkpoints, tmp_path):
    spec = get_method(name)
    if name in FAST_OPTIONS:  # a method JSON holding only what differs from the registered method
        variant = tmp_path / "fast.json"
        variant.write_text(json.dumps({"method": name, "options": FAST_OPTIONS[name]}))
        result = evaluate(str(variant), synthetic_sequence, tmp_path / "eval", videos=False, progress=False)
    else:
        result = evaluate(name, synthetic_sequence, tmp_path / "eval", checkpoint=checkpoints.get(name),
                          videos=False, progress=False)
    scores = result.summary["scores"][spec.display_name]["custom"]
    assert scores["num_frames"] == 4 and 0 <= scores["mse"] <= 1
    demo = run_demo(tmp_path / "demo", method=name, clip=synthetic_sequence, checkpoint=checkpoints.get(name),
                    progress=False, **FAST_OPTIONS.get(name, {}))
    assert demo.num_frames == 5 and demo.grid.is_file()


@pytest.mark.parametrize("command", ["reconstruct", "demo", "evaluate", "benchmark"])
def test_cli_help_lists_every_method(command, capsys):
    assert main([command, "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert all(name in text for name in method_names())


def test_methods_command_describes_every_method(capsys):
    assert main(["methods"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == method_names()
    assert all(get_method(line.split()[0]).display_name in line for line in lines)


def test_options_are_checked_before_loading():
    with pytest.raises(ConfigError, match=r"'firenet' takes no option\(s\) prompt \(its options: num_bins"):
        load_method("firenet", prompt="a dog")
    with pytest.raises(ConfigError, match="unknown method 'magic'; choose one of lase, firenet"):
        load_method("magic")
    assert get_method("integrate").defaults() == {
        "contrast_threshold": 0.05, "cutoff_rad_s": 2 * np.pi, "display": "fixed", "log_range": 0.5}
    assert load_method("integrate", log_range=2.0).log_range == 2.0


def test_checking_lase_options_loads_no_model_code():
    """Options are checked before loading, so checking them must not import diffusers or the models
    (a fresh interpreter: this test session has imported both already)."""
    import subprocess
    import sys

    script = ("import sys; from lase_e2v.pipelines.registry import get_method; "
              "get_method('lase').check_options({'ei_strength': 0.2}); "
              "print(sorted(m for m in ('diffusers', 'lase_e2v.pipelines.lase') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
