"""Attention within tiles: the tiles cover a map once, and a tile's attention sees only that tile."""

from __future__ import annotations

import pytest
import torch
from diffusers.models.attention_processor import Attention, AttnProcessor2_0

from lase_e2v.models.event_encoder import EventEncoder
from lase_e2v.models.tiles import TiledSelfAttnProcessor, attention_tiles


@pytest.mark.parametrize(("height", "width", "window"), [(90, 160, 32), (23, 30, 32), (33, 44, 32), (7, 5, 2)])
def test_attention_tiles_cover_the_map_once_with_near_equal_tiles(height, width, window):
    tiles = attention_tiles(height, width, window)
    covered = torch.zeros(height, width, dtype=torch.int64)
    for rows, cols in tiles:
        covered[rows, cols] += 1
    assert bool((covered == 1).all())
    heights = {rows.stop - rows.start for rows, _ in tiles}
    widths = {cols.stop - cols.start for _, cols in tiles}
    assert max(heights) <= window and max(widths) <= window
    assert max(heights) - min(heights) <= 1 and max(widths) - min(widths) <= 1
    fits = height <= window and width <= window
    assert (len(tiles) == 1) == fits
    assert attention_tiles(height, width, None) == [(slice(0, height), slice(0, width))]


def test_each_tile_attends_as_if_it_were_the_whole_map():
    torch.manual_seed(0)
    attention = Attention(8, heads=2, dim_head=4, residual_connection=True, bias=True).eval()
    maps = torch.randn(2, 8, 5, 7)
    with torch.no_grad():
        tiled = TiledSelfAttnProcessor()(attention, maps, window=3)  # rows 0:2, 2:5 x cols 0:4, 4:7
        for rows, cols in attention_tiles(5, 7, 3):
            alone = AttnProcessor2_0()(attention, maps[..., rows, cols].contiguous())
            assert torch.allclose(tiled[..., rows, cols], alone, atol=1e-6)
        assert torch.equal(TiledSelfAttnProcessor()(attention, maps, window=7), AttnProcessor2_0()(attention, maps))


def test_event_encoder_tiles_only_frames_larger_than_the_window():
    torch.manual_seed(0)
    encoder = EventEncoder.from_preset("tiny").eval()
    voxels = torch.randn(1, 2, 5, 48, 64)  # features 6 x 8
    with torch.no_grad():
        whole = encoder(voxels)
        assert torch.equal(encoder(voxels, attention_window=8), whole)
        assert not torch.allclose(encoder(voxels, attention_window=4), whole, atol=1e-4)
