"""Precision options: names, autocast on and off, bfloat16 close to float32 for every neural method."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lase_e2v.errors import ConfigError
from lase_e2v.events.streams import EventStream
from lase_e2v.pipelines.baselines import load_reconstructor
from lase_e2v.pipelines import precision
from lase_e2v.pipelines.precision import autocast, check_dtype, resolve_dtype
from lase_e2v.pipelines.registry import iter_methods, load_method


def windows_of_events(count: int, sensor_size=(24, 32)) -> list[EventStream]:
    rng = np.random.default_rng(0)
    n = 600
    return [
        EventStream(
            rng.integers(0, sensor_size[1], n),
            rng.integers(0, sensor_size[0], n),
            np.sort(rng.integers(k * 10_000, (k + 1) * 10_000, n)),
            rng.choice([-1, 1], n),
            sensor_size,
        )
        for k in range(count)
    ]


def test_autocast_is_off_for_float32_and_on_otherwise():
    weight = torch.randn(4, 4)
    with autocast("cpu", "float32"):
        assert (torch.randn(2, 4) @ weight).dtype == torch.float32
    with autocast("cpu", "bfloat16"):
        assert (torch.randn(2, 4) @ weight).dtype == torch.bfloat16
    with pytest.raises(ConfigError, match="dtype 'half' unknown.*'auto'"):
        check_dtype("half")


@pytest.mark.parametrize(("capabilities", "expected"), [
    ({"avx512_bf16": True, "amx_bf16": False}, "bfloat16"),
    ({"avx512_bf16": False, "amx_bf16": True}, "bfloat16"),
    ({"avx512_bf16": False, "amx_bf16": False}, "float32"),  # emulated bfloat16 would be slower
])
def test_auto_is_bfloat16_only_where_the_cpu_computes_it(monkeypatch, capabilities, expected):
    monkeypatch.setattr(precision.torch.cpu, "get_capabilities", lambda: capabilities)
    assert resolve_dtype("cpu", "auto") == expected
    assert resolve_dtype("cpu", "float32") == "float32" and resolve_dtype("cpu", "bfloat16") == "bfloat16"
    with autocast("cpu", "auto"):
        product = torch.randn(2, 4) @ torch.randn(4, 4)
    assert product.dtype == getattr(torch, expected)


@pytest.mark.parametrize("method", ["firenet", "firenet_plus", "pienet_lite", "pienet", "cista_tc"])
def test_bfloat16_peers_stay_close_to_float32(method):
    frames = {}
    for dtype in ("float32", "bfloat16"):
        pipeline = load_reconstructor(method, dtype=dtype)
        frames[dtype] = np.stack([pipeline.reconstruct(events) for events in windows_of_events(3)])
    assert frames["bfloat16"].dtype == np.float32 and frames["float32"].std() > 0.01
    difference = np.abs(frames["bfloat16"] - frames["float32"])
    assert 0 < difference.mean() < 0.01


def test_every_neural_method_takes_dtype_and_the_integrator_none():
    for spec in iter_methods():
        assert (spec.defaults().get("dtype") == "float32") == (spec.name != "integrate"), spec.name
    with pytest.raises(ConfigError, match=r"takes no option\(s\) dtype"):
        load_method("integrate", dtype="bfloat16")  # numpy float64: precision does not apply
    with pytest.raises(ConfigError, match="dtype 'int8' unknown"):
        load_method("firenet", dtype="int8")
