"""Voxel grid (E2VID convention) and the other representations: known answers and invariants."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lase_e2v.errors import ConfigError
from lase_e2v.events.representations import (
    VoxelGrid,
    normalize_nonzero,
    polarity_image_rgb,
    to_count_image,
    to_event_mask,
    to_polarity_image,
    to_voxel_grid,
)
from lase_e2v.events.streams import EventStream


def _random_events(n=5000, size=(18, 24), seed=0):
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(1_000_000, 1_050_000, n))
    return (
        rng.integers(0, size[1], n).astype(np.uint16),
        rng.integers(0, size[0], n).astype(np.uint16),
        t,
        rng.choice(np.array([-1, 1], np.int8), n),
    )


def _naive_voxel_grid(x, y, t, p, num_bins, size):
    """Event-by-event loop of the rpg E2VID formula, float64."""
    voxel = np.zeros((num_bins, *size))
    tn = (num_bins - 1) * (t - t[0]) / (t[-1] - t[0])
    for xi, yi, ti, pi in zip(x, y, tn, p):
        left = int(np.floor(ti))
        voxel[left, yi, xi] += pi * (1 - (ti - left))
        if left + 1 < num_bins:
            voxel[left + 1, yi, xi] += pi * (ti - left)
    return voxel


def test_voxel_grid_of_four_events_by_hand():
    # B = 3 over t 0..100: tn = 2 t / 100 = [0, 0.5, 1.5, 2]
    x = np.array([0, 1, 0, 2])
    y = np.array([0, 0, 0, 1])
    t = np.array([0, 25, 75, 100])
    p = np.array([1, -1, 1, 1])
    voxel = to_voxel_grid(x, y, t, p, num_bins=3, sensor_size=(2, 3))
    expected = np.zeros((3, 2, 3), np.float32)
    expected[0, 0, 0] = 1.0  # event 0: all in bin 0
    expected[0, 0, 1], expected[1, 0, 1] = -0.5, -0.5  # event 1: halfway between bins 0 and 1
    expected[1, 0, 0], expected[2, 0, 0] = 0.5, 0.5  # event 3 (t=75): between bins 1 and 2
    expected[2, 1, 2] = 1.0  # last event: all in the last bin
    assert voxel.dtype == np.float32 and voxel.shape == (3, 2, 3)
    np.testing.assert_array_equal(voxel, expected)


def test_zero_one_polarity_is_read_as_minus_one_plus_one():
    x, y, t, p = _random_events()
    np.testing.assert_array_equal(
        to_voxel_grid(x, y, t, (p > 0).astype(np.uint8), 5, (18, 24)), to_voxel_grid(x, y, t, p, 5, (18, 24))
    )


def test_matches_the_naive_loop():
    x, y, t, p = _random_events(2000)
    np.testing.assert_allclose(
        to_voxel_grid(x, y, t, p, 5, (18, 24)), _naive_voxel_grid(x, y, t, p, 5, (18, 24)), atol=2e-5
    )


@pytest.mark.parametrize("num_bins", [1, 2, 5, 9])
def test_numpy_equals_torch(num_bins):
    x, y, t, p = _random_events(seed=num_bins)
    from_numpy = to_voxel_grid(x, y, t, p, num_bins, (18, 24))
    tensors = [torch.from_numpy(a.astype(np.int64)) for a in (x, y)] + [
        torch.from_numpy(t),
        torch.from_numpy(p),
    ]
    from_torch = to_voxel_grid(*tensors, num_bins, (18, 24))
    assert isinstance(from_torch, torch.Tensor) and from_torch.dtype == torch.float32
    np.testing.assert_allclose(from_torch.numpy(), from_numpy, atol=1e-5)


def test_total_polarity_is_conserved():
    x, y, t, p = _random_events()
    assert to_voxel_grid(x, y, t, p, 5, (18, 24)).sum() == pytest.approx(float(p.sum()), abs=1e-2)


def test_input_not_mutated():
    arrays = _random_events()
    copies = [a.copy() for a in arrays]
    to_voxel_grid(*arrays, 5, (18, 24), normalize=True)
    to_voxel_grid(arrays[0], arrays[1], arrays[2], (arrays[3] > 0).astype(np.int8), 5, (18, 24))
    for original, copy in zip(arrays, copies):
        np.testing.assert_array_equal(original, copy)


def test_empty_and_single_timestamp():
    empty = np.zeros(0, np.int64)
    np.testing.assert_array_equal(to_voxel_grid(empty, empty, empty, empty, 4, (2, 2)), np.zeros((4, 2, 2)))
    # all events at one time: span 0, everything in bin 0
    voxel = to_voxel_grid(np.array([0, 1]), np.array([0, 0]), np.array([7, 7]), np.array([1, 1]), 3, (1, 2))
    np.testing.assert_array_equal(voxel, [[[1, 1]], [[0, 0]], [[0, 0]]])


def test_num_bins_must_be_positive():
    with pytest.raises(ConfigError):
        to_voxel_grid(np.zeros(1), np.zeros(1), np.zeros(1), np.ones(1), 0, (2, 2))
    with pytest.raises(ConfigError):
        VoxelGrid(num_bins=0)


def _rpg_normalize(events: torch.Tensor) -> torch.Tensor:
    """rpg_e2vid ``EventPreprocessor`` normalization, as published."""
    nonzero_ev = events != 0
    num_nonzeros = nonzero_ev.sum()
    mean = events.sum() / num_nonzeros
    stddev = torch.sqrt((events**2).sum() / num_nonzeros - mean**2)
    mask = nonzero_ev.float()
    return mask * (events - mean) / stddev


def test_normalize_nonzero_matches_rpg():
    voxel = to_voxel_grid(*_random_events(300), 5, (18, 24))
    normalized = normalize_nonzero(voxel)
    np.testing.assert_allclose(normalized, _rpg_normalize(torch.from_numpy(voxel)).numpy(), atol=1e-5)
    nonzero = normalized[voxel != 0]
    assert nonzero.mean() == pytest.approx(0, abs=1e-5) and nonzero.std() == pytest.approx(1, abs=1e-4)
    assert np.all(normalized[voxel == 0] == 0)
    np.testing.assert_array_equal(normalize_nonzero(np.zeros((2, 2))), np.zeros((2, 2)))
    assert normalized.dtype == np.float32  # what the networks take, as the torch path gives


def test_polarity_image_rgb_colours():
    rgb = polarity_image_rgb(np.array([[0, 3, -1, 6]]))
    np.testing.assert_allclose(rgb[0, 0], [1, 1, 1])  # silent: white
    np.testing.assert_allclose(rgb[0, 1], [1, 0, 0])  # 3 net ON events: full red
    np.testing.assert_allclose(rgb[0, 2], [2 / 3, 2 / 3, 1])  # 1 OFF event: a third of the way to blue
    np.testing.assert_allclose(rgb[0, 3], [1, 0, 0])  # saturates
    assert rgb.dtype == np.float32


def test_count_polarity_and_mask():
    x, y, p = np.array([0, 0, 1, 2]), np.array([0, 0, 1, 0]), np.array([1, -1, -1, 1])
    counts = to_count_image(x, y, p, (2, 3))
    np.testing.assert_array_equal(counts[0], [[1, 0, 1], [0, 0, 0]])
    np.testing.assert_array_equal(counts[1], [[1, 0, 0], [0, 1, 0]])
    np.testing.assert_array_equal(to_polarity_image(x, y, p, (2, 3)), [[0, 0, 1], [0, -1, 0]])
    np.testing.assert_array_equal(to_event_mask(counts), [[1, 0, 1], [0, 1, 0]])
    torch_counts = to_count_image(torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(p), (2, 3))
    np.testing.assert_array_equal(torch_counts.numpy(), counts)


def test_voxel_grid_transform_on_stream():
    x, y, t, p = _random_events()
    stream = EventStream(x, y, t, p, (18, 24))
    np.testing.assert_array_equal(VoxelGrid(num_bins=4)(stream), to_voxel_grid(x, y, t, p, 4, (18, 24)))
