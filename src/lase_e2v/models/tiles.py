"""Attention within tiles of a frame: what keeps LaSe-E2V's time linear in the sensor's pixels.

Self-attention over a frame's latent pixels costs the square of their number: at 1280x720 a frame
has 14,400 latent pixels and the U-Net's spatial attentions took 60% of the time. With a window
``w`` the map is cut into near-equal tiles of at most ``w x w`` (:func:`attention_tiles`) and each
attention runs within a tile; a map that fits in one tile is computed exactly as without tiles.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import Attention, AttnProcessor2_0


def attention_tiles(height: int, width: int, window: int | None) -> list[tuple[slice, slice]]:
    """Near-equal tiles of at most ``window`` rows and columns that cover a ``height x width`` map
    (sizes differ by at most one); the whole map as one tile when ``window`` is ``None`` or the map fits."""
    if window is None or (height <= window and width <= window):
        return [(slice(0, height), slice(0, width))]

    def spans(size: int) -> list[slice]:
        count = -(-size // window)
        edges = [round(index * size / count) for index in range(count + 1)]
        return [slice(start, stop) for start, stop in zip(edges, edges[1:])]

    return [(rows, cols) for rows in spans(height) for cols in spans(width)]


class TiledSelfAttnProcessor:
    """diffusers attention processor for the self-attention of a ``(B, C, h, w)`` map, within tiles.

    The steps of diffusers' :class:`AttnProcessor2_0` on a 4D input (group norm over the whole map,
    q/k/v projections, scaled-dot-product attention, output projection, residual, rescale), with
    the attention run per tile of :func:`attention_tiles`. The window comes with each call
    (``attention(maps, window=w)``); one tile, or none given, is diffusers' own processor.
    """

    def __init__(self) -> None:
        self.whole_map = AttnProcessor2_0()

    def __call__(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        window: int | None = None,
    ) -> torch.Tensor:
        tiles = attention_tiles(*hidden_states.shape[-2:], window) if hidden_states.ndim == 4 else []
        if len(tiles) <= 1 or encoder_hidden_states is not None or attention_mask is not None:
            return self.whole_map(attn, hidden_states, encoder_hidden_states, attention_mask)
        normed = attn.group_norm(hidden_states) if attn.group_norm is not None else hidden_states
        attended = torch.empty_like(hidden_states)
        for rows, cols in tiles:
            tile = normed[..., rows, cols]
            tokens = tile.flatten(2).transpose(1, 2)
            query, key, value = (
                project(tokens).unflatten(-1, (attn.heads, -1)).transpose(1, 2)
                for project in (attn.to_q, attn.to_k, attn.to_v)
            )
            out = F.scaled_dot_product_attention(query, key, value).transpose(1, 2).flatten(2)
            out = attn.to_out[1](attn.to_out[0](out))
            attended[..., rows, cols] = out.transpose(1, 2).reshape(tile.shape)
        if attn.residual_connection:
            attended = attended + hidden_states
        return attended / attn.rescale_output_factor
