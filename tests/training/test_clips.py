"""SyntheticClipDataset: clips equal the stored data, augmentation is exact, split holds."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch

from lase_e2v.errors import ConfigError
from lase_e2v.events.formats.hdf5 import Hdf5Reader
from lase_e2v.events.representations import events_to_voxel_grid, normalize_nonzero, to_voxel_grid
from lase_e2v.simulate.dataset import make_dataset
from lase_e2v.training.clips import SyntheticClipDataset

CLIP = 3


def _small_dataset(out, shared_dir, seed, size=(24, 32), val_fraction=0.34, num_sequences=3):
    """Sequences of 5 frames (0.2 s at 20 fps); val_fraction holds out photos and picks the val count."""
    make_dataset(out, num_sequences, duration_s=0.2, size=size, fps=20.0, seed=seed, progress=False,
                 val_fraction=val_fraction, coco_dir=shared_dir / "data" / "coco_mini")
    return out


@pytest.fixture(scope="module")
def root(tmp_path_factory, shared_dir):
    return _small_dataset(tmp_path_factory.mktemp("clips") / "data", shared_dir, seed=1)


def test_length_shapes_dtypes_and_values(root):
    dataset = SyntheticClipDataset(root, "train", clip_frames=CLIP, num_bins=4, crop=(16, 16))
    assert len(dataset) == 2 * (5 - CLIP)  # two train sequences of 5 frames
    item = dataset[1]
    assert item["frames"].shape == (CLIP, 1, 16, 16) and item["frames"].dtype == torch.float32
    assert item["voxels"].shape == (CLIP, 4, 16, 16) and item["voxels"].dtype == torch.float32
    assert item["previous_frame"].shape == (1, 16, 16)
    assert item["event_mask"].shape == (CLIP, 1, 16, 16)
    assert 0 <= item["frames"].min() and item["frames"].max() <= 1
    assert set(item["event_mask"].unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(item["event_mask"][:, 0] > 0, (item["voxels"] != 0).any(dim=1))
    assert torch.isfinite(item["voxels"]).all()
    captions = json.loads((root / "manifest.json").read_text())["sequences"][0]["captions"]
    assert item["caption"] in captions
    with pytest.raises(IndexError):
        dataset[len(dataset)]


def test_clip_equals_the_stored_frames_and_events(root):
    dataset = SyntheticClipDataset(root, "train", clip_frames=CLIP, num_bins=5, augment=False, normalize_voxels=False)
    item = dataset[1]  # sequence 0, target frames 2..4
    reader = Hdf5Reader(root / "seq_00000.h5")
    events, frames = reader.read(), reader.read_frames()
    np.testing.assert_array_equal(item["previous_frame"][0].numpy(), frames.images[1] / np.float32(255))
    np.testing.assert_array_equal(item["frames"][:, 0].numpy(), frames.images[2:5] / np.float32(255))
    for i in range(CLIP):
        window = events.time_slice(int(frames.t_us[1 + i]), int(frames.t_us[2 + i]))
        np.testing.assert_allclose(item["voxels"][i].numpy(), events_to_voxel_grid(window, 5), atol=1e-6)
    assert item["caption"] == json.loads((root / "manifest.json").read_text())["sequences"][0]["captions"][0]


def test_reading_twice_gives_identical_clips(root):
    first = SyntheticClipDataset(root, "train", clip_frames=CLIP, crop=(16, 16), seed=4)
    second = SyntheticClipDataset(root, "train", clip_frames=CLIP, crop=(16, 16), seed=4)
    for index in range(len(first)):
        a, b = first[index], second[index]
        for key in ("frames", "voxels", "previous_frame", "event_mask"):
            assert torch.equal(a[key], b[key])
        assert a["caption"] == b["caption"]


def test_time_reversal_of_events_is_negated_reversed_voxels():
    rng = np.random.default_rng(0)
    t = np.sort(rng.integers(0, 10_000, 200))
    x, y, p = rng.integers(0, 8, 200), rng.integers(0, 6, 200), rng.choice([-1, 1], 200)
    forward = to_voxel_grid(x, y, t, p, 5, (6, 8))
    backward = to_voxel_grid(x[::-1], y[::-1], (t[-1] + t[0] - t)[::-1], -p[::-1], 5, (6, 8))
    np.testing.assert_allclose(backward, -forward[::-1], atol=1e-5)


def test_augmented_clip_is_a_flip_or_reversal_of_the_plain_clip(root):
    plain = SyntheticClipDataset(root, "train", clip_frames=CLIP, augment=False)
    augmented = SyntheticClipDataset(root, "train", clip_frames=CLIP, augment=True, seed=2)
    seen = set()
    for index in range(len(plain)):
        base, aug = plain[index], augmented[index]
        clip = torch.cat([base["previous_frame"][None], base["frames"]])
        for reverse, hflip, vflip in itertools.product((False, True), repeat=3):
            frames, voxels = clip, base["voxels"]
            if reverse:
                frames, voxels = frames.flip(0), -voxels.flip(0, 1)
            dims = [d for d, on in ((-1, hflip), (-2, vflip)) if on]
            if dims:
                frames, voxels = frames.flip(dims), voxels.flip(dims)
            same_frames = torch.equal(frames[1:], aug["frames"]) and torch.equal(frames[0], aug["previous_frame"])
            if same_frames and torch.allclose(voxels, aug["voxels"], atol=1e-5):
                seen.add((reverse, hflip, vflip))
                break
        else:
            pytest.fail(f"clip {index} is no flip / reversal of the plain clip")
    assert len(seen) > 1


def test_normalized_voxels_have_zero_mean_unit_std_on_events(root):
    item = SyntheticClipDataset(root, "train", clip_frames=CLIP, augment=False)[0]
    voxel = item["voxels"][0]
    values = voxel[voxel != 0]
    assert values.mean().item() == pytest.approx(0.0, abs=1e-4)
    assert values.std(unbiased=False).item() == pytest.approx(1.0, abs=1e-4)
    np.testing.assert_allclose(voxel.numpy(), normalize_nonzero(voxel.numpy()), atol=1e-5)


def test_splits_hold_their_own_photos(root):
    manifest = json.loads((root / "manifest.json").read_text())
    photo_of = {s["file"]: s["source_photo_id"] for s in manifest["sequences"]}
    train = SyntheticClipDataset(root, "train", clip_frames=CLIP)
    val = SyntheticClipDataset(root, "val", clip_frames=CLIP)
    train_photos = {photo_of[s["file"]] for s in train.sequences}
    val_photos = {photo_of[s["file"]] for s in val.sequences}
    assert train_photos and val_photos and not train_photos & val_photos
    assert {val[i]["sequence"] for i in range(len(val))} == {"seq_00002.h5"}


def test_bad_arguments(root, tmp_path):
    with pytest.raises(ConfigError, match="manifest"):
        SyntheticClipDataset(tmp_path)
    with pytest.raises(ConfigError, match="crop"):
        SyntheticClipDataset(root, crop=(64, 64))
    with pytest.raises(ConfigError, match="split"):
        SyntheticClipDataset(root, split="test")
    with pytest.raises(ConfigError, match="frames"):
        SyntheticClipDataset(root, clip_frames=5)


def test_estimates_are_cached_and_travel_with_their_frames(root):
    from lase_e2v.pipelines.baselines import load_reconstructor
    from lase_e2v.training.estimates import cache_estimates, compute_estimates, estimate_path

    with pytest.raises(ConfigError, match="no cached integrate estimates"):
        SyntheticClipDataset(root, "train", clip_frames=CLIP, estimate_method="integrate")
    sequences = [s for s in json.loads((root / "manifest.json").read_text())["sequences"] if s["split"] == "train"]
    cache_estimates(root, "integrate", sequences)
    stored = np.load(estimate_path(root, "integrate", sequences[0]["file"]))
    assert stored.shape == (len(sequences[0]["frame_t_us"]), 24, 32) and stored.dtype == np.uint8
    assert np.all(stored[0] == 128)  # no window before the first frame: mid-grey
    direct = compute_estimates(load_reconstructor("integrate"), root / sequences[0]["file"], sequences[0]["frame_t_us"])
    assert np.array_equal(stored, direct)
    plain = SyntheticClipDataset(root, "train", clip_frames=CLIP, crop=(16, 16), augment=False,
                                 estimate_method="integrate")
    item, reference = plain[0], SyntheticClipDataset(root, "train", clip_frames=CLIP, crop=(16, 16), augment=False)[0]
    assert torch.equal(item["frames"], reference["frames"]) and torch.equal(item["voxels"], reference["voxels"])
    top, left = (24 - 16) // 2, (32 - 16) // 2  # centre crop; clip 0 starts at frame 1
    expected = stored[0 : 1 + CLIP, top : top + 16, left : left + 16].astype(np.float32) / 255
    assert torch.allclose(item["estimate"][:, 0], torch.from_numpy(expected[1:]))
    assert torch.allclose(item["previous_estimate"][0], torch.from_numpy(expected[0]))  # the previous frame's
    augmented = SyntheticClipDataset(root, "train", clip_frames=CLIP, crop=(16, 16), estimate_method="integrate")
    for index in range(len(augmented)):  # frames and estimates stay paired under crops, flips and reversal
        with_estimate = augmented[index]
        without = SyntheticClipDataset(root, "train", clip_frames=CLIP, crop=(16, 16))[index]
        assert torch.equal(with_estimate["frames"], without["frames"])
        assert with_estimate["estimate"].shape == with_estimate["frames"].shape


def _folder_with(folder, sources):
    """A make-dataset folder holding the train sequences of ``sources`` in order (symlinks, renumbered):
    what one folder made with all of them would look like."""
    folder.mkdir()
    manifest, records = json.loads((sources[0] / "manifest.json").read_text()), []
    for source in sources:
        for record in json.loads((source / "manifest.json").read_text())["sequences"]:
            if record["split"] == "train":
                name = f"seq_{len(records):05d}.h5"
                (folder / name).symlink_to(source / record["file"])
                records.append(dict(record, file=name))
    (folder / "manifest.json").write_text(json.dumps(dict(manifest, sequences=records)))
    return folder


@pytest.fixture(scope="module")
def second(tmp_path_factory, shared_dir):
    return _small_dataset(tmp_path_factory.mktemp("clips") / "second", shared_dir, seed=2)


def test_more_folders_train_as_one_folder_holding_them_all(root, second, tmp_path):
    from lase_e2v.training.estimates import cache_estimates

    together = SyntheticClipDataset(root, "train", clip_frames=CLIP, crop=(16, 16), more_roots=[second])
    merged = SyntheticClipDataset(_folder_with(tmp_path / "merged", [root, second]), "train", clip_frames=CLIP,
                                  crop=(16, 16))
    assert len(together) == len(merged) == 4 * (5 - CLIP)
    assert together.folders == [root, root, second, second]
    for index in range(len(together)):  # same clips, same augmentation: one recipe reproduces the other
        a, b = together[index], merged[index]
        assert all(torch.equal(a[key], b[key]) for key in ("frames", "voxels", "previous_frame", "event_mask"))
        assert a["caption"] == b["caption"]
    # each folder keeps its own caches: a missing one is named with its folder
    for folder in (root, second):
        records = json.loads((folder / "manifest.json").read_text())["sequences"]
        assert SyntheticClipDataset(folder, "train", clip_frames=CLIP).by_folder() == {
            folder: [s for s in records if s["split"] == "train"]}
    cache_estimates(root, "integrate", SyntheticClipDataset(root, "train", clip_frames=CLIP).sequences)
    with pytest.raises(ConfigError, match=f"{second}: no cached integrate estimates"):
        SyntheticClipDataset(root, "train", clip_frames=CLIP, more_roots=[second], estimate_method="integrate")


def test_in_range_only_keeps_the_sequences_marked_in_range(root, tmp_path):
    with pytest.raises(ConfigError, match="without --realistic"):
        SyntheticClipDataset(root, "train", clip_frames=CLIP, in_range_only=True)
    marked = _folder_with(tmp_path / "marked", [root])
    manifest = json.loads((marked / "manifest.json").read_text())
    for record, in_range in zip(manifest["sequences"], (False, True), strict=True):
        record["realism"] = {"draws": 3, "in_real_range": in_range}
    (marked / "manifest.json").write_text(json.dumps(manifest))
    dataset = SyntheticClipDataset(marked, "train", clip_frames=CLIP, in_range_only=True)
    assert [s["file"] for s in dataset.sequences] == ["seq_00001.h5"]
    assert len(dataset) == 5 - CLIP
    assert len(SyntheticClipDataset(marked, "train", clip_frames=CLIP)) == 2 * (5 - CLIP)


def test_folders_of_another_size_or_other_held_out_photos_are_refused(root, tmp_path, shared_dir):
    wider = _small_dataset(tmp_path / "wider", shared_dir, seed=1, size=(24, 40), num_sequences=2)
    other_photos = _small_dataset(tmp_path / "other_photos", shared_dir, seed=1, val_fraction=0.5, num_sequences=2)
    for folder in (wider, other_photos):
        with pytest.raises(ConfigError, match=f"{folder}: its frame size or held-out photos differ"):
            SyntheticClipDataset(root, "train", clip_frames=CLIP, more_roots=[folder])


def test_lighting_balance_gives_each_kind_make_datasets_share(root, tmp_path):
    from lase_e2v.simulate.scenes import LIGHTING_SHARES
    from lase_e2v.training.state import ClipSampler

    old = _folder_with(tmp_path / "old", [root])  # written before the lighting was recorded
    manifest = json.loads((old / "manifest.json").read_text())
    for record in manifest["sequences"]:
        del record["scene"]["lighting"]
    (old / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ConfigError, match="seq_00000.h5 has no recorded lighting kind"):
        SyntheticClipDataset(old, "train", clip_frames=CLIP).lighting_weights()
    relit = _folder_with(tmp_path / "relit", [root])  # two train sequences: one dark, one bright
    manifest = json.loads((relit / "manifest.json").read_text())
    for record, kind in zip(manifest["sequences"], ("dark", "bright"), strict=True):
        record["scene"]["lighting"]["kind"] = kind
    (relit / "manifest.json").write_text(json.dumps(manifest))
    dataset = SyntheticClipDataset(relit, "train", clip_frames=CLIP)
    weights = dataset.lighting_weights()
    assert weights.sum().item() == pytest.approx(1.0)
    kinds = [dataset.sequences[s]["scene"]["lighting"]["kind"] for s, _ in dataset._clips]
    dark = torch.tensor([kind == "dark" for kind in kinds])
    share = LIGHTING_SHARES["dark"] / (LIGHTING_SHARES["dark"] + LIGHTING_SHARES["bright"])  # 2/3
    assert weights[dark].sum().item() == pytest.approx(share)
    # the sampler draws in those proportions, and a run resumed at micro-step 300 continues the stream
    sampler = ClipSampler(len(dataset), batch_size=2, seed=5, weights=weights)
    drawn = list(itertools.islice(iter(sampler), 3000))
    assert abs(np.mean([bool(dark[i]) for i in drawn]) - share) < 0.03  # 3000 draws: sd 0.009
    resumed = ClipSampler(len(dataset), batch_size=2, seed=5, weights=weights, start_micro_step=300)
    assert list(itertools.islice(iter(resumed), 100)) == drawn[600:700]
    with pytest.raises(ValueError, match="non-negative"):
        ClipSampler(len(dataset), batch_size=2, seed=5, weights=-weights)


def test_estimate_agreement_is_the_per_frame_correlation_whatever_the_tone():
    from lase_e2v.training.clips import estimate_agreement

    truth = np.random.default_rng(0).integers(0, 256, (3, 6, 8)).astype(np.uint8)
    estimates = np.stack([truth[0] // 2 + 60, 255 - truth[1], np.full((6, 8), 128)]).astype(np.uint8)
    assert estimate_agreement(truth, estimates) == pytest.approx([1.0, -1.0, 0.0], abs=0.01)  # // 2 rounds


def test_good_estimate_share_goes_to_the_best_estimated_third_of_the_clips(root, tmp_path):
    from lase_e2v.training.config import TrainingConfig
    from lase_e2v.training.estimates import estimate_path
    from lase_e2v.training.loop import clip_weights

    folder = _folder_with(tmp_path / "data", [root])  # two train sequences of 5 frames: 2 clips each
    with pytest.raises(ConfigError, match="needs the cached estimates"):
        SyntheticClipDataset(folder, "train", clip_frames=CLIP).good_estimate_weights(0.6)
    manifest = json.loads((folder / "manifest.json").read_text())
    for index, record in enumerate(manifest["sequences"]):
        frames = Hdf5Reader(folder / record["file"]).read_frames().images
        # the first sequence's estimates are its frames; the second's lose the contrast's sign from frame 3
        estimates = frames.copy() if index == 0 else np.concatenate([frames[:3], 255 - frames[3:]])
        path = estimate_path(folder, "integrate", record["file"])
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, estimates)
    dataset = SyntheticClipDataset(folder, "train", clip_frames=CLIP, estimate_method="integrate")
    weights = dataset.good_estimate_weights(0.6)
    # clip agreements: 1 and 1 (first sequence), 1/3 and -1/3: the top third by quantile is the first two
    first = torch.tensor([s == 0 for s, _ in dataset._clips])
    assert weights[first].tolist() == pytest.approx([0.3, 0.3]) and weights[~first].tolist() == pytest.approx([0.2, 0.2])
    # with lighting_balance the two weights multiply
    manifest["sequences"][0]["scene"]["lighting"]["kind"], manifest["sequences"][1]["scene"]["lighting"]["kind"] = "dark", "bright"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    dataset = SyntheticClipDataset(folder, "train", clip_frames=CLIP, estimate_method="integrate")
    config = TrainingConfig(lighting_balance=True, good_estimate_share=0.6, use_estimate=True,
                            ei_training_estimate="integrate")
    assert torch.allclose(clip_weights(config, dataset), dataset.lighting_weights() * weights)
    assert clip_weights(TrainingConfig(), dataset) is None
    with pytest.raises(ConfigError, match="good_estimate_share needs a peer's estimates"):
        TrainingConfig(good_estimate_share=0.6)
    with pytest.raises(ConfigError, match=r"good_estimate_share must be in \[0, 1\)"):
        TrainingConfig(good_estimate_share=1.0, use_estimate=True, ei_training_estimate="integrate")
