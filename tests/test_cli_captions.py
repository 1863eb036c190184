"""``reconstruct --caption auto --captioner PATH``: the generated caption reaches LaSe-E2V and is written
into the output's metadata (mp4 comment tag, HDF5 attributes, PNG folder metadata.json); options that
cannot work give one ``error:`` line before any work."""

from __future__ import annotations

import shutil

import pytest

from lase_e2v.pipelines.writers import read_frames_metadata

FAST = ("--steps", "1", "--samples", "1")


@pytest.fixture(scope="module")
def short_recording_with_caption(tmp_path_factory, synthetic_sequence):
    import h5py

    path = tmp_path_factory.mktemp("captioned") / "square.h5"
    shutil.copy(synthetic_sequence, path)
    with h5py.File(path, "a") as file:
        file.attrs["caption"] = "a moving square"
    return path


@pytest.mark.parametrize("name", ["video.mp4", "frames.h5", "frames"])
def test_auto_caption_goes_into_the_metadata(run_cli, tmp_path, synthetic_sequence, tiny_blip, monkeypatch, name):
    from lase_e2v.pipelines.lase import LaSeE2VPipeline

    prompts = []
    generate = LaSeE2VPipeline.generate_clip
    monkeypatch.setattr(LaSeE2VPipeline, "generate_clip",
                        lambda self, voxels, **kwargs: prompts.append(kwargs["prompt"]) or generate(self, voxels, **kwargs))
    out = tmp_path / name
    code, stdout, _ = run_cli("reconstruct", synthetic_sequence, "-o", out, "--caption", "auto",
                              "--captioner", tiny_blip, *FAST)
    assert code == 0
    metadata = read_frames_metadata(out)
    caption = metadata["caption"]
    assert caption and set(prompts) == {caption}  # what LaSe-E2V was conditioned on
    assert metadata == {"method": "lase", "caption_source": "auto", "caption": caption}
    assert stdout.strip().endswith(f"caption: {caption!r}")


def test_stored_caption_metadata_of_a_peer(run_cli, tmp_path, short_recording_with_caption):
    out = tmp_path / "frames"
    code, _, _ = run_cli("reconstruct", short_recording_with_caption, "-o", out, "--method", "integrate")
    assert code == 0
    assert read_frames_metadata(out) == {"method": "integrate", "caption_source": "stored",
                                         "caption": "a moving square"}


@pytest.mark.parametrize(("arguments", "message"), [
    (("--caption", "auto"), "--caption auto needs --captioner PATH"),
    (("--caption", "empty", "--method", "firenet"), "method 'firenet' reads no text"),
    (("--caption", "auto", "--captioner", "{empty}"), "no captioner here (config.json missing)"),
    (("--caption", "empty", "--prompt", "a desk"), "--prompt and --caption empty both give the text"),
    (("--caption", "random"), "unknown caption source 'random'"),
])
def test_caption_options_that_cannot_work(cli_error, tmp_path, synthetic_sequence, arguments, message):
    (tmp_path / "empty").mkdir()
    out = tmp_path / "video.mp4"
    arguments = [a.format(empty=tmp_path / "empty") for a in arguments]
    assert message in cli_error("reconstruct", synthetic_sequence, "-o", out, *arguments, *FAST)
    assert not out.exists()


def test_evaluate_one_row_per_caption_source_and_captioner(run_cli, tmp_path, short_recording_with_caption,
                                                           tiny_blip, tiny_tagger):
    import json

    method = tmp_path / "fast.json"
    method.write_text(json.dumps({"method": "lase", "options": {"num_inference_steps": 2, "num_samples": 1}}))
    out = tmp_path / "evaluation"
    code, stdout, _ = run_cli("evaluate", "--method", method, "--data", short_recording_with_caption, "-o", out,
                              "--caption", "stored,empty,auto", "--captioner", tiny_blip, "--captioner", tiny_tagger)
    assert code == 0
    rows = json.loads((out / "aggregate.json").read_text())["methods"]
    assert rows == ["LaSe-E2V [stored caption]", "LaSe-E2V [no caption]", f"LaSe-E2V [auto: {tiny_blip.name}]",
                    f"LaSe-E2V [auto: {tiny_tagger.name}]"]
    assert f"LaSe-E2V [auto: {tiny_tagger.name}]" in stdout


@pytest.mark.parametrize(("command", "arguments", "message"), [
    ("evaluate", ("--method", "firenet", "--caption", "empty"), "method 'firenet' reads no text"),
    ("benchmark", ("--methods", "integrate,lase", "--caption", "stored,auto"), "--caption auto needs --captioner"),
    ("benchmark", ("--methods", "lase", "--caption", "other"), "needs each sequence's stored caption"),
])
def test_evaluation_caption_options_that_cannot_work(cli_error, tmp_path, synthetic_sequence, command, arguments,
                                                     message):
    out = tmp_path / "report"
    assert message in cli_error(command, "--data", synthetic_sequence, "-o", out, *arguments)
    assert not out.exists()
