"""Caption sources as benchmark rows: each text-conditioned method once per source, peers once, the
texts each row gives each recording, and the checks before any work."""

from __future__ import annotations

import json
import shutil

import h5py
import pytest

from lase_e2v.errors import ConfigError
from lase_e2v.evaluation.benchmark import run_benchmark
from lase_e2v.evaluation.captions import caption_factories, parse_caption_sources
from lase_e2v.evaluation.datasets import EvalConfig, SequenceSpec

CAPTIONS = {"square": "a white square on a grey wall", "block": "a bright block at night"}


@pytest.fixture(scope="module")
def captioned_sequences(tmp_path_factory, synthetic_sequence):
    """Two copies of the synthetic recording with different stored captions."""
    folder = tmp_path_factory.mktemp("captioned")
    specs = []
    for name, caption in CAPTIONS.items():
        path = folder / f"{name}.h5"
        shutil.copy(synthetic_sequence, path)
        with h5py.File(path, "a") as file:
            file.attrs["caption"] = caption
        specs.append(SequenceSpec(name, path, "pair"))
    return specs


@pytest.fixture(scope="module")
def fast_lase(tmp_path_factory):
    path = tmp_path_factory.mktemp("methods") / "fast_lase.json"
    path.write_text(json.dumps({"method": "lase", "options": {"num_inference_steps": 2, "num_samples": 1}}))
    return str(path)


def test_rows_per_source_and_the_text_each_gives(captioned_sequences, fast_lase, tmp_path):
    given = []
    rows = caption_factories([fast_lase, "integrate"], ["stored", "empty", "other"], [], captioned_sequences,
                             on_caption=lambda row, stored, text: given.append((row, stored, text)))
    assert list(rows) == ["LaSe-E2V [stored caption]", "LaSe-E2V [no caption]", "LaSe-E2V [other scene's caption]",
                          "Integrator"]
    result = run_benchmark(rows, captioned_sequences, tmp_path / "out", EvalConfig(metrics=("mse",)),
                           videos=False, progress=False)
    square, block = CAPTIONS.values()
    assert given == [
        ("LaSe-E2V [stored caption]", square, square), ("LaSe-E2V [stored caption]", block, block),
        ("LaSe-E2V [no caption]", square, ""), ("LaSe-E2V [no caption]", block, ""),
        ("LaSe-E2V [other scene's caption]", square, block), ("LaSe-E2V [other scene's caption]", block, square),
    ]
    # the text changes LaSe-E2V's frames (the two recordings are copies: compare one of them)
    scores = {row: result.summary["sequences"][row]["pair"]["square"]["mse"] for row in rows}
    assert len(set(scores.values())) == 4


def test_only_stored_keeps_the_plain_names(captioned_sequences):
    assert list(caption_factories(["lase", "firenet"], ["stored"], [], captioned_sequences)) == ["LaSe-E2V", "FireNet"]


def test_auto_rows_name_their_captioner(captioned_sequences, tiny_blip, tiny_tagger):
    rows = caption_factories(["lase"], ["auto"], [tiny_blip, tiny_tagger], captioned_sequences)
    assert list(rows) == [f"LaSe-E2V [auto: {tiny_blip.name}]", f"LaSe-E2V [auto: {tiny_tagger.name}]"]


@pytest.mark.parametrize(("methods", "sources", "message"), [
    (["firenet"], ["empty"], "method 'firenet' reads no text"),
    (["lase"], ["auto"], "--caption auto needs --captioner PATH"),
    (["lase"], ["shuffled"], "unknown caption source 'shuffled'; choose from stored, auto, empty, other"),
])
def test_sources_that_cannot_work_are_refused(captioned_sequences, methods, sources, message):
    with pytest.raises(ConfigError, match=message):
        caption_factories(methods, sources, [], captioned_sequences)


def test_other_needs_two_different_stored_captions(synthetic_sequence, captioned_sequences):
    with pytest.raises(ConfigError, match="needs each sequence's stored caption; moving_square has none"):
        caption_factories(["lase"], ["other"], [], [SequenceSpec("moving_square", synthetic_sequence)])
    with pytest.raises(ConfigError, match="at least two recordings with different stored captions"):
        caption_factories(["lase"], ["other"], [], captioned_sequences[:1])


def test_parse_caption_sources():
    assert parse_caption_sources(" stored, auto ") == ["stored", "auto"]
    with pytest.raises(ConfigError, match="names a source twice"):
        parse_caption_sources("stored,stored")
    with pytest.raises(ConfigError, match="--caption is empty"):
        parse_caption_sources(",")
