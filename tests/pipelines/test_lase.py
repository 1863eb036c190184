"""LaSe-E2V pipeline: one clip step by step, EI, guidance, streaming, save/load, bounded memory."""

from __future__ import annotations

import gc
import itertools
import json
import tracemalloc

import numpy as np
import pytest
import torch

from lase_e2v.errors import CheckpointError, ConfigError
from lase_e2v.events.formats import open_events
from lase_e2v.events.streams import EventStream
from lase_e2v.events.windows import TimeWindows, Window
from lase_e2v.models.autoencoder import TinyAutoencoder, load_autoencoder
from lase_e2v.models.text_encoder import load_text_encoder
from lase_e2v.pipelines.integrator import IntegratorPipeline
from lase_e2v.pipelines.lase import LaSeE2VPipeline, with_sampling
from lase_e2v.pipelines.sampling_options import SamplingOptions
from lase_e2v.pipelines.output import ReconstructedFrame, ReconstructionPipeline

HEIGHT, WIDTH, FRAMES = 48, 64, 3
FAST = {"num_inference_steps": 2, "clip_length": FRAMES}


@pytest.fixture(scope="module")
def tae():
    return load_autoencoder("tae")


@pytest.fixture(scope="module")
def minilm():
    return load_text_encoder("minilm")


def make_pipeline(tae, minilm, **unet_options) -> LaSeE2VPipeline:
    torch.manual_seed(0)
    text_encoder = minilm if unet_options.get("use_text", True) else None
    return LaSeE2VPipeline.from_preset(
        "tiny", tae, text_encoder, unet_options=unet_options, options=SamplingOptions(**FAST)
    )


@pytest.fixture(scope="module")
def pipeline(tae, minilm) -> LaSeE2VPipeline:
    return make_pipeline(tae, minilm)


def voxels(seed: int = 0) -> torch.Tensor:
    return torch.randn(1, FRAMES, 5, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(seed))


def generate(pipeline, seed=0, **kwargs) -> torch.Tensor:
    return pipeline.generate_clip(voxels(), generator=torch.Generator().manual_seed(seed), **kwargs).frames


def random_windows(count: int, events_per_window: int = 200, seed: int = 0) -> list[Window]:
    rng = np.random.default_rng(seed)
    windows = []
    for i in range(count):
        t = np.sort(rng.integers(i * 10_000, (i + 1) * 10_000, events_per_window))
        events = EventStream(
            rng.integers(0, WIDTH, events_per_window),
            rng.integers(0, HEIGHT, events_per_window),
            t,
            rng.choice([-1, 1], events_per_window),
            (HEIGHT, WIDTH),
        )
        windows.append(Window(i, i * 10_000, (i + 1) * 10_000, events))
    return windows


def test_clip_shapes_and_range(pipeline):
    out = pipeline.generate_clip(voxels(), prompt="a shelf")
    assert out.frames.shape == (1, FRAMES, 1, HEIGHT, WIDTH)
    assert out.latents.shape == (1, FRAMES, 32, 6, 8)
    assert out.frames.min() >= 0 and out.frames.max() <= 1 and out.frames.std() > 0


@pytest.mark.parametrize("size", [(45, 61), (26, 35)])
def test_sizes_that_are_not_multiples_of_the_stride(pipeline, size):
    """Latents and event features are ceil(H/8) x ceil(W/8); frames are cropped back to the sensor."""
    clip = torch.randn(1, 2, 5, *size, generator=torch.Generator().manual_seed(0))
    estimate = torch.rand(1, 2, 1, *size, generator=torch.Generator().manual_seed(1))
    out = pipeline.generate_clip(
        clip, estimate=estimate, ei_strength=0.5, generator=torch.Generator().manual_seed(0)
    )
    assert out.frames.shape == (1, 2, 1, *size)
    assert out.latents.shape[-2:] == (-(-size[0] // 8), -(-size[1] // 8))
    assert out.frames.std() > 0


def test_same_seed_same_frames(pipeline):
    assert torch.equal(generate(pipeline, seed=3), generate(pipeline, seed=3))
    assert not torch.equal(
        generate(pipeline, seed=3, ei_strength=1.0), generate(pipeline, seed=4, ei_strength=1.0)
    )


@pytest.mark.parametrize("sampler", ["ddim", "dpm++"])
def test_ei_runs_the_last_fraction_of_the_schedule(pipeline, sampler):
    calls = []
    hook = pipeline.unet.register_forward_hook(lambda module, args, output: calls.append(int(args[1])))
    try:
        generate(pipeline, num_inference_steps=8, ei_strength=0.5, sampler=sampler)
        partial = list(calls)
        calls.clear()
        generate(pipeline, num_inference_steps=8, ei_strength=1.0, sampler=sampler)
    finally:
        hook.remove()
    assert len(calls) == 8 and partial == calls[4:]  # trailing spacing: 999, 874, ... 124
    assert calls[0] == 999


def test_ei_latent_formula(pipeline):
    sampler = pipeline.sampler("ddim")
    timesteps = pipeline.prepare_timesteps(sampler, 10, 0.3)
    estimate = torch.randn(2, 1, 32, 6, 8)
    latents = pipeline.prepare_latents(sampler, timesteps[0], estimate, 0.3, torch.Generator().manual_seed(0))
    noise = torch.randn(estimate.shape, generator=torch.Generator().manual_seed(0))
    alpha_bar = sampler.alphas_cumprod[int(timesteps[0])]
    assert int(timesteps[0]) == 299 and len(timesteps) == 3
    assert torch.allclose(latents, alpha_bar.sqrt() * estimate + (1 - alpha_bar).sqrt() * noise, atol=1e-6)


def test_ei_strength_zero_is_the_estimate_through_the_autoencoder(pipeline):
    estimate = torch.rand(1, FRAMES, 1, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(2))
    output = pipeline.generate_clip(voxels(), estimate=estimate, ei_strength=0.0, num_samples=2)
    expected = pipeline.decode_latents(pipeline.encode_frames(estimate), (HEIGHT, WIDTH))
    assert torch.allclose(output.frames, expected, atol=1e-6)
    denoised = pipeline.generate_clip(voxels(), estimate=estimate, ei_strength=0.1)
    assert not torch.allclose(denoised.frames, expected, atol=1e-3)  # one step changes it


def test_detail_transfer_puts_back_what_the_autoencoder_loses(pipeline):
    estimate = torch.rand(1, FRAMES, 1, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(2))

    def without_denoising(detail_transfer: float) -> torch.Tensor:  # EI 0: only detail transfer acts
        view = with_sampling(pipeline, detail_transfer=detail_transfer)
        return view.generate_clip(voxels(), estimate=estimate, ei_strength=0.0).frames

    assert torch.allclose(without_denoising(1.0), estimate, atol=1e-5)  # full detail: the estimate itself
    round_trip = pipeline.decode_latents(pipeline.encode_frames(estimate), (HEIGHT, WIDTH))
    assert torch.allclose(without_denoising(0.5), ((round_trip + estimate) / 2).clamp(0, 1), atol=1e-5)


@pytest.mark.parametrize("guidance_scale", [1.0, 2.0])
def test_num_samples_averages_the_latents_of_independent_draws(pipeline, guidance_scale):
    """M samples of one clip = the mean over a batch of M copies of it drawn with the same noise."""
    estimate = torch.rand(1, FRAMES, 1, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(1))
    common = {"estimate": estimate, "ei_strength": 0.5, "prompt": "a mug", "guidance_scale": guidance_scale}
    averaged = pipeline.generate_clip(voxels(), num_samples=3, generator=torch.Generator().manual_seed(5), **common)
    copies = pipeline.generate_clip(voxels().expand(3, -1, -1, -1, -1), generator=torch.Generator().manual_seed(5),
                                    **{**common, "estimate": estimate.expand(3, -1, -1, -1, -1)})
    assert torch.allclose(averaged.latents[0], copies.latents.mean(0), atol=1e-5)
    assert copies.latents.std(0).mean() > 1e-3  # the draws differ, so the average is not one of them
    expected_frames = pipeline.decode_latents(copies.latents.mean(0, keepdim=True), (HEIGHT, WIDTH))
    assert torch.allclose(averaged.frames, expected_frames, atol=1e-5)


def test_flip_ensemble_averages_each_flips_draws_flipped_back(pipeline):
    """flips (none, h), 2 samples = the mean of one draw on the inputs and one on their mirror image,
    mirrored back, with the same noise: the frames, not the latents, are averaged."""
    estimate = torch.rand(1, FRAMES, 1, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(1))
    previous = torch.rand(1, 1, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(3))
    noise = torch.randn(2, FRAMES, 32, 6, 8, generator=torch.Generator().manual_seed(4))
    common = {"ei_strength": 0.5, "prompt": "a mug", "estimate_mix": 0.3}
    ensemble = pipeline.generate_clip(voxels(), previous, estimate, flips=("none", "h"), num_samples=2,
                                      noise=noise, **common)
    plain = pipeline.generate_clip(voxels(), previous, estimate, num_samples=1, noise=noise[:1], **common)
    mirrored = pipeline.generate_clip(voxels().flip(-1), previous.flip(-1), estimate.flip(-1), num_samples=1,
                                      noise=noise[1:], **common)
    assert ensemble.latents is None
    assert torch.allclose(ensemble.frames, (plain.frames + mirrored.frames.flip(-1)) / 2, atol=1e-5)
    assert (plain.frames - mirrored.frames.flip(-1)).abs().mean() > 1e-3  # the denoiser is not symmetric
    vertical = pipeline.generate_clip(voxels(), previous, estimate, flips=("v",), num_samples=1,
                                      noise=noise[1:], **common)
    flipped_input = pipeline.generate_clip(voxels().flip(-2), previous.flip(-2), estimate.flip(-2),
                                           num_samples=1, noise=noise[1:], **common)
    assert torch.allclose(vertical.frames, flipped_input.frames.flip(-2), atol=1e-5)


def test_flip_ensemble_refuses_what_it_cannot_do(pipeline):
    with pytest.raises(ConfigError, match="multiple of the number of flips"):
        pipeline.generate_clip(voxels(), flips=("none", "h"), num_samples=3)
    with pytest.raises(ConfigError, match=r"flips must be distinct names .* got \['none', 'x'\]"):
        pipeline.generate_clip(voxels(), flips=("none", "x"), num_samples=2)
    with pytest.raises(ConfigError, match="pass previous_frame, not previous_latent"):
        pipeline.generate_clip(voxels(), previous_latent=torch.zeros(1, 32, 6, 8), flips=("h",))
    with pytest.raises(ConfigError, match="voxels must be"):  # the caller's shapes, checked before stacking
        pipeline.generate_clip(torch.randn(1, 2, 4, 16, 16), flips=("none", "h"), num_samples=2)


def test_a_flip_ensemble_chains_clips_on_the_averaged_last_frame(pipeline, monkeypatch):
    calls = []
    original = LaSeE2VPipeline.generate_clip

    def spy(self, voxels, previous_frame=None, estimate=None, previous_latent=None, **kwargs):
        out = original(self, voxels, previous_frame, estimate, previous_latent, **kwargs)
        if kwargs.get("flips") != ("none",):  # the caller's call, not the ensemble's inner batch
            calls.append((previous_frame, previous_latent, out.frames[:, -1]))
        return out

    monkeypatch.setattr(LaSeE2VPipeline, "generate_clip", spy)
    windows = random_windows(5)
    output = pipeline(_stream(windows), TimeWindows(10_000, t_start_us=0), clip_length=2, num_samples=2,
                      flips=("none", "h"))
    assert output.frames.shape == (5, HEIGHT, WIDTH) and len(calls) == 3
    assert calls[0][0] is None and all(latent is None for _, latent, _ in calls)
    assert torch.equal(calls[1][0], calls[0][2]) and torch.equal(calls[2][0], calls[1][2])


def test_frames_go_through_the_autoencoder_one_at_a_time_with_the_batched_result(pipeline, monkeypatch):
    frames = torch.rand(2, FRAMES, 1, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(2))
    seen = []
    encode = pipeline.autoencoder.encode
    monkeypatch.setattr(pipeline.autoencoder, "encode", lambda b: seen.append(len(b)) or encode(b))
    with torch.no_grad():
        latents = pipeline.encode_frames(frames)
        batched = encode(frames.flatten(0, 1)).unflatten(0, (2, FRAMES))
        decoded = pipeline.decode_latents(latents, (HEIGHT, WIDTH))
        batched_decoded = pipeline.autoencoder.decode(batched.flatten(0, 1), size=(HEIGHT, WIDTH))
    assert seen == [1] * 2 * FRAMES
    assert torch.allclose(latents, batched, atol=1e-5)
    assert torch.allclose(decoded, batched_decoded.unflatten(0, (2, FRAMES)), atol=1e-5)


def test_first_clip_reuses_the_estimate_latent_as_previous_frame(pipeline, monkeypatch):
    """Without a previous frame z_0 is E(first estimate): the same as passing that frame, encoded once."""
    estimate = torch.rand(1, FRAMES, 1, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(1))
    explicit = generate(pipeline, estimate=estimate, previous_frame=estimate[:, 0])
    encoded = []
    encode = pipeline.encode_frames
    monkeypatch.setattr(pipeline, "encode_frames", lambda f: encoded.append(f.shape[1]) or encode(f))
    implicit = generate(pipeline, estimate=estimate)
    assert encoded == [FRAMES]
    assert torch.allclose(implicit, explicit, atol=1e-5)


def test_guidance_scale_one_is_the_conditional_pass(pipeline):
    latents = torch.randn(1, FRAMES, 32, 6, 8)
    events = torch.randn(1, FRAMES, 16, 6, 8)
    previous = torch.randn(1, 32, 6, 8)
    timestep = torch.tensor(500)
    with torch.no_grad():
        conditional_text = pipeline.encode_prompt(["a mug"], guidance=False)
        both = pipeline.encode_prompt(["a mug"], guidance=True)
        conditional = pipeline.unet(
            latents, timestep, events, previous, conditional_text.states, conditional_text.mask
        )
        unconditional_text = pipeline.encode_prompt([""], guidance=False)
        unconditional = pipeline.unet(
            latents, timestep, events, previous, unconditional_text.states, unconditional_text.mask
        )
        assert torch.equal(
            pipeline.predict(latents, timestep, events, previous, conditional_text, 1.0), conditional
        )
        guided = pipeline.predict(latents, timestep, events, previous, both, 3.0)
    assert torch.allclose(guided, unconditional + 3.0 * (conditional - unconditional), atol=1e-4)


def test_prompt_edits_the_result(pipeline):
    assert not torch.allclose(
        generate(pipeline, prompt="a dark room"), generate(pipeline, prompt="a bright beach")
    )


@pytest.mark.parametrize("switch", ["use_esa", "use_text"])
def test_esa_and_text_switches_change_the_output(tae, minilm, pipeline, switch):
    ablated = make_pipeline(tae, minilm, **{switch: False})
    ablated.unet.load_state_dict(pipeline.unet.state_dict(), strict=False)
    ablated.event_encoder.load_state_dict(pipeline.event_encoder.state_dict())
    assert not torch.allclose(generate(ablated), generate(pipeline), atol=1e-3)


def test_text_free_pipeline_refuses_guidance(tae, minilm):
    ablated = make_pipeline(tae, minilm, use_text=False)
    assert generate(ablated).shape == (1, FRAMES, 1, HEIGHT, WIDTH)
    with pytest.raises(ConfigError, match="guidance_scale"):
        generate(ablated, guidance_scale=2.0)


def test_bad_inputs_raise(pipeline):
    with pytest.raises(ConfigError, match=r"voxels must be \(B, N, 5, H, W\)"):
        pipeline.generate_clip(torch.randn(1, 2, 4, 16, 16))
    with pytest.raises(ConfigError, match="previous_frame must be"):
        pipeline.generate_clip(voxels(), previous_frame=torch.rand(1, 1, 8, 8))
    for bad in ({"ei_strength": -0.1}, {"ei_strength": 1.5}, {"detail_transfer": 2.0}, {"guidance_scale": 0.5}, {"sampler": "euler"}, {"estimate": "firenet"},
                {"num_samples": 0}, {"attention_window": 4}, {"noise": "pink"}):
        with pytest.raises(ConfigError):
            SamplingOptions(**bad)


def test_attention_window_tiles_frames_larger_than_it_only(pipeline):
    full = generate(pipeline)
    for window, changed in ((WIDTH, False), (8, True)):  # one tile, then 8-pixel tiles (1 latent pixel)
        tiled = generate(with_sampling(pipeline, attention_window=window))
        assert torch.equal(tiled, full) != changed


def test_bfloat16_autocast_stays_close_to_float32(pipeline):
    full = generate(pipeline)
    half = generate(with_sampling(pipeline, dtype="bfloat16"))
    assert half.dtype == torch.float32 and 0 <= half.min() <= half.max() <= 1
    assert 0 < (half - full).abs().mean() < 0.03


def test_save_load_round_trip_is_exact(pipeline, tmp_path):
    pipeline.save_pretrained(tmp_path / "lase")
    index = json.loads((tmp_path / "lase" / "pipeline.json").read_text())
    assert index["autoencoder"] == {"source": "tae"} and index["text_encoder"] == {"source": "minilm"}
    assert index["options"]["num_inference_steps"] == 2
    loaded = LaSeE2VPipeline.from_pretrained(tmp_path / "lase")
    assert torch.equal(generate(loaded, prompt="a mug"), generate(pipeline, prompt="a mug"))
    assert LaSeE2VPipeline.from_pretrained(tmp_path / "lase", prompt="x").options.prompt == "x"
    with_sampling(pipeline, flips=["none", "h"], num_samples=2).save_pretrained(tmp_path / "flips")
    assert json.loads((tmp_path / "flips" / "pipeline.json").read_text())["options"]["flips"] == ["none", "h"]
    assert LaSeE2VPipeline.from_pretrained(tmp_path / "flips").options.flips == ("none", "h")  # a tuple again
    assert SamplingOptions(flips="none,h", num_samples=2).flips == ("none", "h")  # as on the command line


def test_unreferenced_encoders_are_saved(minilm, tmp_path):
    torch.manual_seed(0)
    pipeline = LaSeE2VPipeline.from_preset("tiny", TinyAutoencoder(latent_channels=4, width=8), None)
    pipeline.autoencoder.requires_grad_(False)
    pipeline.save_pretrained(tmp_path / "lase")
    loaded = LaSeE2VPipeline.from_pretrained(tmp_path / "lase")
    assert json.loads((tmp_path / "lase" / "pipeline.json").read_text())["autoencoder"] == {
        "subfolder": "autoencoder"
    }
    assert loaded.text_encoder is None and loaded.autoencoder.source is None
    clip = torch.randn(1, 2, 5, 16, 16)
    frames = [
        model.generate_clip(clip, num_inference_steps=1, generator=torch.Generator().manual_seed(0)).frames
        for model in (loaded, pipeline)
    ]
    assert torch.equal(*frames)


def test_loading_other_folders_raises(tmp_path):
    with pytest.raises(CheckpointError, match="pipeline.json"):
        LaSeE2VPipeline.from_pretrained(tmp_path)


def test_streaming_groups_windows_into_clips_and_chains_them(pipeline, monkeypatch):
    seen = []
    original = pipeline.generate_clip

    def spy(voxels, **kwargs):
        out = original(voxels, **kwargs)
        seen.append((voxels.shape[1], kwargs["previous_latent"], out.latents[:, -1]))
        return out

    monkeypatch.setattr(pipeline, "generate_clip", spy)
    windows = random_windows(5)
    output = pipeline(_stream(windows), TimeWindows(10_000, t_start_us=0), clip_length=2)
    assert output.frames.shape == (5, HEIGHT, WIDTH)
    assert output.timestamps_us.tolist() == [10_000, 20_000, 30_000, 40_000, 50_000]
    assert [n for n, _, _ in seen] == [2, 2, 1]
    assert seen[0][1] is None  # first clip: from the EI estimate (grey for "previous")
    assert torch.equal(seen[1][1], seen[0][2]) and torch.equal(seen[2][1], seen[1][2])
    assert pipeline.options.clip_length == FRAMES  # per-call options are restored
    again = pipeline(_stream(windows), TimeWindows(10_000, t_start_us=0), clip_length=2)
    assert np.array_equal(again.frames, output.frames)  # reset() restarts the seeded noise


def test_fixed_noise_is_one_draw_per_recording(pipeline, monkeypatch):
    drawn = []
    original = pipeline.prepare_latents

    def spy(sampler, timestep, estimate_latents, strength, generator, noise=None):
        latents = original(sampler, timestep, estimate_latents, strength, generator, noise)
        alpha_bar = sampler.alphas_cumprod[int(timestep)]
        drawn.append((latents - alpha_bar.sqrt() * estimate_latents) / (1 - alpha_bar).sqrt())
        return latents

    monkeypatch.setattr(pipeline, "prepare_latents", spy)
    windows = random_windows(5)
    run = lambda **options: pipeline(_stream(windows), TimeWindows(10_000, t_start_us=0), clip_length=2,
                                     num_samples=2, **options)
    run(noise="fixed")
    fixed, drawn[:] = list(drawn), []
    assert [tuple(n.shape[:2]) for n in fixed] == [(2, 2), (2, 2), (2, 1)]
    first = fixed[0][:, :1]
    for noise in fixed:  # the same eps at every frame of every clip, a different one per sample
        assert torch.allclose(noise, first.expand_as(noise), atol=1e-4)
    assert not torch.allclose(first[0], first[1], atol=0.1)
    run(noise="fixed")
    assert torch.allclose(drawn[0], fixed[0], atol=1e-6)  # reset() draws it again from the seed
    drawn[:] = []
    run()
    assert not torch.allclose(drawn[0][:, 0], drawn[0][:, 1], atol=0.1)  # "independent": per frame
    with pytest.raises(ConfigError, match="does not broadcast"):
        original(pipeline.sampler("ddim"), torch.tensor(99), torch.zeros(2, 1, 32, 6, 8), 0.1, None,
                 torch.zeros(3, 1, 32, 6, 8))


def test_caption_is_the_prompt_unless_one_is_given(pipeline, monkeypatch):
    prompts = []
    original = pipeline.generate_clip

    def spy(voxels, **kwargs):
        prompts.append(kwargs["prompt"])
        return original(voxels, **kwargs)

    monkeypatch.setattr(pipeline, "generate_clip", spy)
    windows = random_windows(2)
    list(pipeline.iter_frames(windows, caption="a red car on a street"))
    list(pipeline.iter_frames(windows, "a red car on a street"))
    pipeline(_stream(windows), TimeWindows(10_000, t_start_us=0), prompt="a dark room")
    list(pipeline.iter_frames(windows))  # the next recording: nothing of the caption is left
    assert prompts == ["a red car on a street", "a red car on a street", "a dark room", ""]


def _stream(windows: list[Window]) -> EventStream:
    parts = [w.events for w in windows]
    return EventStream(*(np.concatenate([getattr(p, f) for p in parts]) for f in "xytp"), (HEIGHT, WIDTH))


def test_estimate_from_a_reconstructor_runs_in_lockstep(pipeline):
    integrator = IntegratorPipeline()
    expected = [f.image for f in integrator.iter_frames(random_windows(4))]
    seen = []

    class Recording(IntegratorPipeline):
        def iter_frames(self, windows, caption=None, progress=False):
            for frame in super().iter_frames(windows, caption, progress):
                seen.append(frame.image)
                yield frame

    frames = list(with_sampling(pipeline, estimate=Recording()).iter_frames(random_windows(4)))
    assert len(frames) == 4 and len(seen) == 4
    assert all(np.array_equal(a, b) for a, b in zip(seen, expected))


def test_estimate_with_look_ahead_is_refused(pipeline):
    class Buffering(ReconstructionPipeline):
        num_bins = None

        def reset(self):
            pass

        def iter_frames(self, windows, caption=None, progress=False):
            for window in list(itertools.islice(windows, 2)):  # reads ahead before yielding
                yield ReconstructedFrame(window, np.zeros((HEIGHT, WIDTH), np.float32))

    with pytest.raises(ConfigError, match="one frame per window"):
        list(with_sampling(pipeline, estimate=Buffering()).iter_frames(random_windows(2)))


def test_callable_estimate_is_used_for_ei(pipeline):
    calls = []
    def estimate(window: Window) -> np.ndarray:
        calls.append(window.index)
        return np.full((HEIGHT, WIDTH), 0.2)

    sampled = with_sampling(pipeline, estimate=estimate)
    frames = [f.image for f in sampled.iter_frames(random_windows(3))]
    assert calls == [0, 1, 2] and len(frames) == 3


def _live_tensors() -> int:
    gc.collect()
    return sum(issubclass(type(obj), torch.Tensor) for obj in gc.get_objects())  # type(): no proxy warnings


def test_memory_stays_flat_over_slider_depth(slider_depth_dir):
    """A random tiny model over 0.3 s of slider_depth (30 windows of 10 ms at 240x180, 1 step).

    Between the 10th and the 30th frame neither Python-side memory (numpy frames, voxels) nor the
    number of live tensors may grow; the full-length run is in benchmarks/lase.py.
    """
    torch.manual_seed(0)
    autoencoder = TinyAutoencoder(latent_channels=4, width=8).requires_grad_(False)
    pipeline = LaSeE2VPipeline.from_preset(
        "tiny", autoencoder, None, options=SamplingOptions(num_inference_steps=1, clip_length=3)
    )
    reader = open_events(slider_depth_dir)
    windows = itertools.islice(TimeWindows(10_000).iter_windows(reader.iter_chunks(chunk_events=50_000)), 30)
    tracemalloc.start()
    try:
        marks = {}
        for count, frame in enumerate(pipeline.iter_frames(windows), start=1):
            assert frame.image.shape == (180, 240) and 0 <= frame.image.min() <= frame.image.max() <= 1
            if count in (10, 30):
                marks[count] = (_live_tensors(), tracemalloc.get_traced_memory()[0])
    finally:
        tracemalloc.stop()
    assert len(marks) == 2
    assert marks[30][0] <= marks[10][0]
    # keeping the 20 frames in between would add 20 * 240 * 180 * 4 bytes = 3.5 MB
    assert marks[30][1] - marks[10][1] < 200_000


def test_with_sampling_is_a_copy_that_builds_a_named_peer(pipeline):
    view = with_sampling(pipeline, estimate="integrate", num_samples=3, ei_strength=0.5)
    assert isinstance(view.options.estimate, IntegratorPipeline)
    assert (view.options.num_samples, view.options.ei_strength) == (3, 0.5)
    assert pipeline.options == SamplingOptions(**FAST)  # the caller's pipeline keeps its sampling
    assert view.unet is pipeline.unet and view.event_encoder is pipeline.event_encoder
    expected = [f.image for f in IntegratorPipeline().iter_frames(random_windows(3))]
    zero = with_sampling(view, ei_strength=0.0)  # the estimate through the autoencoder, frame for frame
    got = [f.image for f in zero.iter_frames(random_windows(3))]
    estimates = torch.from_numpy(np.stack(expected)).float()[None, :, None]
    round_trip = pipeline.decode_latents(pipeline.encode_frames(estimates), (HEIGHT, WIDTH))[0, :, 0].numpy()
    assert all(np.allclose(a, b, atol=1e-5) for a, b in zip(got, round_trip))
    with pytest.raises(ConfigError, match="num_samples"):
        with_sampling(pipeline, num_samples=0)


def test_call_options_sample_a_copy_and_may_name_a_peer(pipeline):
    """Options given to a call apply to that call only, named peers included, as in the loader."""
    stream, windowing = _stream(random_windows(3)), TimeWindows(10_000, t_start_us=0)
    options = {"estimate": "integrate", "ei_strength": 0.0}
    got = pipeline(stream, windowing, **options).frames
    assert np.array_equal(got, with_sampling(pipeline, **options)(stream, windowing).frames)
    assert pipeline.options == SamplingOptions(**FAST)
    assert not np.allclose(got, pipeline(stream, windowing).frames, atol=1e-3)  # the estimate mattered
