"""The pipeline contract every registered method keeps: ``num_bins``, a caption passed as an argument,
and a ``reset()`` after which one object reconstructs a recording exactly like a fresh one."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lase_e2v.errors import ConfigError
from lase_e2v.evaluation.protocol import evaluate_method
from lase_e2v.events.formats import open_events
from lase_e2v.events.formats.hdf5 import write_hdf5
from lase_e2v.events.streams import EventStream
from lase_e2v.events.windows import TimeWindows
from lase_e2v.models.autoencoder import TinyAutoencoder
from lase_e2v.pipelines.color import ColorReconstructionPipeline
from lase_e2v.pipelines.lase import LaSeE2VPipeline
from lase_e2v.pipelines.registry import get_method, iter_methods, method_names

OPTIONS = {"lase": {"num_inference_steps": 1, "num_samples": 1}}  # fast; EI from FireNet+ stays on


def random_recording(path, sensor_size, seed, caption, color_filter=None):
    rng = np.random.default_rng(seed)
    n = 3000
    events = EventStream(rng.integers(0, sensor_size[1], n), rng.integers(0, sensor_size[0], n),
                         np.sort(rng.integers(0, 50_000, n)), rng.choice([-1, 1], n), sensor_size)
    attrs = {"caption": caption} if caption else {}
    if color_filter:
        attrs["color_filter"] = color_filter
    write_hdf5(path, events, attrs=attrs)
    return path


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    """Two recordings of different sensors, one with a caption, one without."""
    folder = tmp_path_factory.mktemp("recordings")
    return (random_recording(folder / "first.h5", (32, 40), 0, "a red car on a street at night"),
            random_recording(folder / "second.h5", (24, 32), 1, None))


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    from lase_e2v.models.baselines import ARCHITECTURES

    folder = tmp_path_factory.mktemp("weights")
    for spec in iter_methods():
        if spec.weights == "checkpoint":
            torch.manual_seed(0)
            model_class, fixed = ARCHITECTURES[spec.name]
            model_class(**fixed).save_pretrained(folder / spec.name)
    return folder


def build(name, checkpoints):
    checkpoint = checkpoints / name if get_method(name).weights == "checkpoint" else None
    return get_method(name).load(checkpoint, **OPTIONS.get(name, {}))


WINDOWS = TimeWindows(10_000, t_start_us=0)


@pytest.mark.parametrize("name", method_names())
def test_one_object_reconstructs_two_recordings_like_two_fresh_ones(name, recordings, checkpoints):
    first, second = recordings
    reused = build(name, checkpoints)
    reused_first = reused(open_events(first), WINDOWS).frames
    reused_second = reused(open_events(second), WINDOWS).frames
    assert np.array_equal(reused_first, build(name, checkpoints)(open_events(first), WINDOWS).frames)
    assert np.array_equal(reused_second, build(name, checkpoints)(open_events(second), WINDOWS).frames)
    assert reused_second.shape == (5, 24, 32)
    # streaming: after reset() the object forgets the first recording and its caption
    reader = open_events(second)
    reused.reset()
    streamed = [f.image for f in reused.iter_frames(WINDOWS.iter_windows(reader.iter_chunks()))]
    assert np.array_equal(np.stack(streamed), reused_second)


def test_the_caption_reaches_lase_as_an_argument_only(recordings, checkpoints):
    first, _ = recordings
    pipeline = build("lase", checkpoints)
    reader = open_events(first)
    with_caption = pipeline(reader, WINDOWS).frames
    pipeline.reset()
    windows = WINDOWS.iter_windows(reader.iter_chunks())
    without = np.stack([f.image for f in pipeline.iter_frames(windows)])
    assert not np.array_equal(with_caption, without)  # the caption is used as the prompt ...
    assert not hasattr(pipeline, "scene_caption")  # ... and never stored


@pytest.mark.parametrize("name", method_names())
def test_num_bins_is_declared(name, checkpoints):
    expected = None if name == "integrate" else 5
    assert build(name, checkpoints).num_bins == expected


def test_evaluation_checks_the_contract(synthetic_sequence):
    torch.manual_seed(0)
    three_bins = LaSeE2VPipeline.from_preset("tiny", TinyAutoencoder(latent_channels=4, width=8), None, num_bins=3)
    with pytest.raises(ConfigError, match="'lase-e2v' uses 3 voxel bins; the protocol needs 5"):
        evaluate_method(three_bins, synthetic_sequence, metrics=("mse",))

    class NotAPipeline:
        def iter_frames(self, windows, caption=None, progress=False):
            return iter(())

    with pytest.raises(ConfigError, match="NotAPipeline is not a ReconstructionPipeline"):
        evaluate_method(NotAPipeline(), synthetic_sequence, metrics=("mse",))



@pytest.mark.parametrize("name", method_names())
def test_every_method_in_colour_keeps_the_contract(name, tmp_path, checkpoints):
    """The colour wrapper (four instances of the method) declares the method's bins, and after reset()
    reconstructs a colour recording, streamed with its caption, exactly as when it was new."""
    first = random_recording(tmp_path / "first.h5", (32, 40), 0, "a red car on a street at night", "RGGB")
    colour = ColorReconstructionPipeline.from_factory(lambda: build(name, checkpoints), "RGGB")
    assert colour.num_bins == build(name, checkpoints).num_bins
    new = colour(open_events(first), WINDOWS).frames
    assert new.shape == (5, 32, 40, 3)
    colour.reset()
    streamed = [f.image for f in colour.iter_frames(WINDOWS.iter_windows(open_events(first).iter_chunks()),
                                                    caption="a red car on a street at night")]
    assert np.array_equal(np.stack(streamed), new)
