"""Caption sources: the text a pipeline gets is replaced per recording (auto from a first FireNet+
reconstruction and a local captioner, empty, another recording's), it reaches the pipeline, and
options that cannot work are refused before any work."""

from __future__ import annotations

import numpy as np
import pytest

import lase_e2v
from lase_e2v.errors import ConfigError
from lase_e2v.events.formats import open_events
from lase_e2v.events.formats.hdf5 import write_hdf5
from lase_e2v.events.streams import EventStream
from lase_e2v.events.windows import TimeWindows
from lase_e2v.models.captioner import load_captioner
from lase_e2v.pipelines.captions import (
    AutoCaption,
    CaptionedPipeline,
    EmptyCaption,
    OtherCaption,
    check_caption_source,
    first_windows,
)
from lase_e2v.pipelines.registry import load_method

CAPTION = "a red car on a street at night"
FAST_LASE = {"num_inference_steps": 1, "num_samples": 1}
WINDOWS = TimeWindows(20_000, t_start_us=0)


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """32x40 sensor, 0.2 s of random events (10 windows of 20 ms), with a stored caption."""
    rng = np.random.default_rng(3)
    n = 8000
    events = EventStream(rng.integers(0, 40, n), rng.integers(0, 32, n), np.sort(rng.integers(0, 200_000, n)),
                         rng.choice([-1, 1], n), (32, 40))
    path = tmp_path_factory.mktemp("captions") / "street.h5"
    write_hdf5(path, events, attrs={"caption": CAPTION})
    return path


def windows_of(path):
    return WINDOWS.iter_windows(open_events(path).iter_chunks())


def reconstruct(pipeline, path, caption):
    pipeline.reset()
    return np.stack([f.image for f in pipeline.iter_frames(windows_of(path), caption=caption)])


def test_first_windows_stop_at_the_duration_and_leave_the_rest(recording):
    windows = windows_of(recording)
    taken = first_windows(windows, 0.05)
    assert [w.index for w in taken] == [0, 1, 2]  # 0-20, 20-40, 40-60 ms: the third reaches 50 ms
    assert next(windows).index == 3


def test_empty_caption_reaches_lase_instead_of_the_stored_one(recording):
    lase = load_method("lase", **FAST_LASE)
    given = []
    captioned = CaptionedPipeline(lase, EmptyCaption(), on_caption=lambda stored, text: given.append((stored, text)))
    frames = reconstruct(captioned, recording, CAPTION)
    assert given == [(CAPTION, "")]
    assert np.array_equal(frames, reconstruct(lase, recording, ""))
    assert not np.array_equal(frames, reconstruct(lase, recording, CAPTION))


def test_auto_caption_describes_the_last_peer_frame_of_the_first_window_span(recording, tiny_blip):
    captioner = load_captioner(tiny_blip)
    peer = load_method("firenet_plus", postprocess=True)
    source = AutoCaption(captioner, peer, duration_s=0.1)
    peer_frames = [f.image for f in load_method("firenet_plus", postprocess=True).iter_frames(windows_of(recording))]
    expected = captioner([peer_frames[4]])[0]  # windows 0..4 span 0-100 ms
    assert expected

    lase = load_method("lase", **FAST_LASE)
    given = []
    captioned = CaptionedPipeline(lase, source, on_caption=lambda stored, text: given.append(text))
    frames = reconstruct(captioned, recording, CAPTION)
    assert given == [expected]
    assert frames.shape == (10, 32, 40)  # the windows held for the caption are reconstructed too
    assert np.array_equal(frames, reconstruct(lase, recording, expected))
    assert np.array_equal(reconstruct(captioned, recording, CAPTION), frames)  # reset: same again


def test_other_caption_is_the_next_different_one_in_order():
    source = OtherCaption(["a cat", "a dog", "a cat", "a desk"])
    assert [source(c, []) for c in ("a cat", "a dog", "a desk")] == ["a dog", "a desk", "a cat"]
    with pytest.raises(ConfigError, match="not among the recordings"):
        source("a bird", [])
    with pytest.raises(ConfigError, match="at least two recordings with different stored captions"):
        OtherCaption(["a cat", "a cat"])


@pytest.mark.parametrize(("source", "method", "captioners", "prompt", "message"), [
    ("shuffled", "lase", [], None, "unknown caption source 'shuffled'; choose from stored, auto, empty"),
    ("empty", "firenet", [], None, "method 'firenet' reads no text (text-conditioned: lase)"),
    ("auto", "lase", [], None, "--caption auto needs --captioner PATH"),
    ("empty", "lase", [], "a desk", "--prompt and --caption empty both give the text"),
])
def test_caption_sources_that_cannot_work_are_refused(source, method, captioners, prompt, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_caption_source(source, method, captioners, prompt=prompt)


def test_the_api_returns_the_caption_it_gave(recording, tiny_blip):
    stored = lase_e2v.reconstruct(recording, method="firenet", window="ms:20")
    assert stored.caption == CAPTION
    auto = lase_e2v.reconstruct(recording, method="lase", window="ms:20", caption="auto", captioner=tiny_blip,
                                **FAST_LASE)
    assert auto.caption and auto.caption != CAPTION
    assert auto.caption == load_captioner(tiny_blip)([
        [f.image for f in load_method("firenet_plus", postprocess=True).iter_frames(windows_of(recording))][-1]
    ])[0]  # 0.2 s < the default 1 s: the last frame of the whole recording
