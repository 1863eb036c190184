"""Smooth signals, layer motion and warping: exact identities and bounds."""

from __future__ import annotations

import numpy as np
import pytest

from lase_e2v.simulate.motion import CONSTANT, Layer, LayerMotion, SmoothSignal, composite, max_displacement


def test_smooth_signal_value_and_speed_bound():
    signal = SmoothSignal(offset=1.0, rate=2.0, amplitudes=(3.0,), frequencies_hz=(0.5,), phases=(0.0,))
    assert signal(np.array([0.5]))[0] == pytest.approx(1.0 + 1.0 + 3.0 * np.sin(np.pi / 2))
    assert signal.max_speed == pytest.approx(2.0 + 2 * np.pi * 3.0 * 0.5)
    rng = np.random.default_rng(0)
    for _ in range(20):
        random_signal = SmoothSignal.random(rng, max_speed=50.0)
        t = np.linspace(0, 3, 30001)
        speed = np.abs(np.diff(random_signal(t)) / np.diff(t))
        assert random_signal.max_speed <= 50.0 + 1e-9
        assert speed.max() <= random_signal.max_speed + 1e-6


def random_motion(rng: np.random.Generator) -> LayerMotion:
    return LayerMotion(
        SmoothSignal.random(rng, 40.0, offset=10.0),
        SmoothSignal.random(rng, 40.0, offset=7.0),
        anchor=(3.0, 4.0),
        rotation=SmoothSignal.random(rng, 1.0),
        log_scale=SmoothSignal.random(rng, 0.3),
    )


def test_inverse_affine_inverts_forward():
    motion = random_motion(np.random.default_rng(1))
    t = np.array([0.0, 0.3, 1.7])
    points = np.array([[0.0, 0.0], [5.0, -2.0], [12.5, 8.0]])
    positions = motion.forward(points, t)  # (3, 3, 2)
    inverse = motion.inverse_affine(t)
    back = np.einsum("nij,npj->npi", inverse[:, :, :2], positions) + inverse[:, None, :, 2]
    np.testing.assert_allclose(back, np.broadcast_to(points, back.shape), atol=1e-9)


def test_identity_motion_reproduces_the_image_and_integer_shift_moves_it():
    image = np.random.default_rng(2).random((12, 16)).astype(np.float32)
    still = Layer(image, LayerMotion(SmoothSignal(offset=5.0), SmoothSignal(offset=4.0), anchor=(5.0, 4.0)))
    np.testing.assert_allclose(composite(still, [], np.zeros(1), (12, 16))[0], image, atol=1e-5)
    # the anchor appears 3 px right of where it is: output(x) = image(x - 3)
    shifted = Layer(image, LayerMotion(SmoothSignal(offset=8.0), SmoothSignal(offset=4.0), anchor=(5.0, 4.0)))
    out = composite(shifted, [], np.zeros(1), (12, 16))[0]
    np.testing.assert_allclose(out[:, 3:], image[:, :-3], atol=1e-5)
    np.testing.assert_allclose(out[:, :3], np.repeat(image[:, :1], 3, axis=1), atol=1e-5)  # border repeats


def test_alpha_composites_over_the_background_and_is_transparent_outside():
    background = Layer(np.zeros((20, 20), np.float32), LayerMotion(SmoothSignal(offset=10), SmoothSignal(offset=10), (10, 10)))
    alpha = np.zeros((6, 6), np.float32)
    alpha[1:5, 1:5] = 1.0
    alpha[0, 0] = 0.5
    cutout = Layer(np.ones((6, 6), np.float32), LayerMotion(SmoothSignal(offset=12), SmoothSignal(offset=7), (2.0, 2.0)), alpha)
    out = composite(background, [cutout], np.zeros(1), (20, 20))[0]
    # layer pixel (i, j) lands at output (10 + j, 5 + i)
    np.testing.assert_allclose(out[5:11, 10:16], alpha, atol=1e-5)
    assert out.sum() == pytest.approx(alpha.sum(), abs=1e-5)


def test_max_displacement_of_a_translation():
    motion = LayerMotion(SmoothSignal(rate=30.0), SmoothSignal(rate=-40.0), anchor=(0.0, 0.0))
    steps = max_displacement([(motion, np.array([[0.0, 0.0], [9.0, 9.0]]))], np.array([0.0, 0.1, 0.3]))
    np.testing.assert_allclose(steps, [5.0, 10.0])


def test_constant_signal_is_zero():
    assert CONSTANT(np.array([0.0, 5.0])).tolist() == [0.0, 0.0]
    assert CONSTANT.max_speed == 0.0


def test_opaque_black_object_over_white_never_goes_negative():
    # bilinear weights of an all-ones alpha can sum to 1 + 1 ulp: white + alpha * (0 - white) < 0
    # unless clamped, and the simulator refuses negative radiance (a make-dataset seed failed so)
    rng = np.random.default_rng(0)
    size = (40, 40)
    background = Layer(np.ones(size, np.float32), LayerMotion(CONSTANT, CONSTANT, (19.5, 19.5)))
    objects = [
        Layer(
            np.zeros((16, 16), np.float32),
            LayerMotion(SmoothSignal(offset=float(x), rate=3.7), SmoothSignal(offset=float(y), rate=-2.3),
                        (7.5, 7.5), rotation=SmoothSignal(rate=0.37), log_scale=SmoothSignal(rate=0.11)),
            np.ones((16, 16), np.float32),
        )
        for x, y in rng.uniform(8, 32, (6, 2))
    ]
    frames = composite(background, objects, np.linspace(0, 2, 200), size)
    assert frames.min() == 0.0 and frames.max() == 1.0
