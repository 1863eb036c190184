"""Video U-Net with event-guided spatio-temporal attention (ESA), the denoiser of LaSe-E2V.

Input (Sec. 3.2 of the paper): the channel concat ``[noisy z_1..z_N, z_0, z_e]`` per frame, where
``z_0`` is the previous frame's latent (broadcast to every frame) and ``z_e`` the event features.
Every level of the U-Net runs, per layer (diffusers' ``CrossAttnDownBlock3D`` order):

1. ``ResnetBlock2D`` with the timestep embedding;
2. :class:`SpatialTransformer`: self-attention over the frame's pixels -> cross-attention to the same
   frame's event features (ESA) -> cross-attention to the text tokens -> feed-forward;
3. :class:`TemporalTransformer`: self-attention over the clip's frames at each pixel -> temporal
   cross-attention to that pixel's event features over the frames (ESA) -> feed-forward.

Event features reach lower levels by average pooling to the level's size. Where the paper is
silent we chose: 2D sine-cosine position embeddings on both sides of the spatial event
cross-attention (so a pixel can find *its* events among the frame's tokens), 1D sine-cosine frame
embeddings in the temporal blocks (AnimateDiff's motion modules), SD-style skip connections.

Ablation switches in the config: ``use_esa=False`` drops both event cross-attentions (events then
enter by channel concat only), ``use_text=False`` drops the text cross-attention,
``use_previous_frame=False`` drops ``z_0`` from the input.

Attention tiles (``attention_window``, a forward argument; our addition for large sensors,
:mod:`lase_e2v.models.tiles`): the spatial self-attention and event cross-attention cost grows with
the square of the pixels. With a window ``w`` the frame is cut into near-equal tiles of at most
``w x w`` latent pixels (lower levels: the same share of the frame) and both attentions run within
each tile, with the frame's positions; convolutions, the text and the temporal attention still see
the whole frame. Training crops (128 px: 16 x 16 tokens) are far smaller than such a tile, so
tiles also keep large frames nearer the attention lengths the model was trained on. ``None`` (the
default here) attends over the whole frame.

Estimate conditioning (``use_estimate``, our addition; off by default): the latent ``z_est`` of an
event-based estimate of each frame (a peer reconstructor's output, the same estimate EI starts from)
is concatenated to the input as well, ``[noisy z_i, z_0, z_e, z_est_i]``. Sampling starts near
``z_est`` anyway (EI); giving it to the network as a clean condition lets the denoiser learn the
residual from the estimate to the true frame instead of having to tell the estimate from the noise.
The extra input channels start at zero when a model without them is extended
(:meth:`VideoUNet.load_extended_state_dict`), so fine-tuning starts from the old model's function.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.attention import FeedForward
from diffusers.models.attention_processor import Attention, AttnProcessor, AttnProcessor2_0
from diffusers.models.embeddings import (
    TimestepEmbedding,
    Timesteps,
    get_1d_sincos_pos_embed_from_grid,
    get_2d_sincos_pos_embed,
)
from diffusers.models.resnet import Downsample2D, ResnetBlock2D, Upsample2D
from torch import nn

from lase_e2v.errors import ConfigError
from lase_e2v.models.modeling import LaseModelMixin
from lase_e2v.models.tiles import attention_tiles

PREDICTION_TYPES = ("epsilon", "v_prediction")

#: named sizes: ``tiny`` (~2 M parameters) trains on a CPU; ``base`` is meant for GPUs
UNET_PRESETS: dict[str, dict] = {
    "tiny": {
        "block_out_channels": (32, 64),
        "layers_per_block": 1,
        "attention_heads": 2,
        "norm_num_groups": 8,
    },
    "base": {
        "block_out_channels": (128, 256, 512),
        "layers_per_block": 2,
        "attention_heads": 8,
        "norm_num_groups": 32,
    },
}


@lru_cache(maxsize=32)
def _sincos_2d(channels: int, height: int, width: int) -> torch.Tensor:
    """``(1, h*w, channels)`` 2D sine-cosine embedding, computed once per size (not in every layer)."""
    grid = get_2d_sincos_pos_embed(channels, (height, width), base_size=max(height, width), output_type="pt")
    return grid[None]


@lru_cache(maxsize=32)
def _sincos_1d(channels: int, length: int) -> torch.Tensor:
    """``(1, length, channels)`` 1D sine-cosine embedding of frame indices, computed once per size."""
    frames = torch.arange(length, dtype=torch.float64)
    return get_1d_sincos_pos_embed_from_grid(channels, frames, output_type="pt")[None]


def _position_2d(channels: int, height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """``(1, h*w, channels)`` 2D sine-cosine embedding (row-major, like flattened feature maps)."""
    return _sincos_2d(channels, height, width).to(like.device, like.dtype)


def _position_1d(channels: int, length: int, like: torch.Tensor) -> torch.Tensor:
    """``(1, length, channels)`` 1D sine-cosine embedding of frame indices."""
    return _sincos_1d(channels, length).to(like.device, like.dtype)


class ShortSequenceAttnProcessor:
    """Attention over a few tokens (a pixel's frames in the clip): plain batched matmuls on a CPU
    under reduced precision, diffusers' fused ``scaled_dot_product_attention`` everywhere else.

    Why: the temporal attention runs one 4-token sequence per latent pixel and sample (57,600 at
    1280x720). The CPU's fused bfloat16 kernel pays per-sequence overhead there and takes 1.6-2.5x
    the time of diffusers' plain :class:`AttnProcessor` (softmax upcast to float32); in float32
    and on GPUs the fused kernel is the faster one. Both compute the same attention.
    """

    def __init__(self) -> None:
        self.plain, self.fused = AttnProcessor(), AttnProcessor2_0()

    def __call__(self, attn: Attention, hidden_states: torch.Tensor, encoder_hidden_states=None,
                 attention_mask=None, **kwargs) -> torch.Tensor:
        device = hidden_states.device.type
        reduced = torch.is_autocast_enabled(device) or hidden_states.dtype != torch.float32
        processor = self.plain if device == "cpu" and reduced else self.fused
        return processor(attn, hidden_states, encoder_hidden_states, attention_mask)


@dataclass
class Conditioning:
    """Everything a block attends to, prepared once per forward pass.

    ``events``: ``(B*N, C_e, h, w)`` at the latent size (pooled per level on demand);
    ``text``: ``(B*N, L, D)`` or ``None``; ``text_bias``: ``(B*N, 1, L)`` additive mask (0 / -10000);
    ``attention_window``: largest side, in latent pixels, of the tiles the spatial attentions run
    in (``None``: the whole frame; coarser levels get the same share of the frame).
    """

    num_frames: int
    events: torch.Tensor
    text: torch.Tensor | None = None
    text_bias: torch.Tensor | None = None
    attention_window: int | None = None
    _pooled: dict = field(default_factory=dict)

    def events_at(self, height: int, width: int) -> torch.Tensor:
        if (height, width) not in self._pooled:
            self._pooled[height, width] = F.adaptive_avg_pool2d(self.events, (height, width))
        return self._pooled[height, width]

    def tiles_at(self, height: int, width: int) -> list[tuple[slice, slice]]:
        """The spatial attention tiles of a level of ``height x width`` (:func:`attention_tiles`)."""
        window = self.attention_window
        if window is not None:
            window = max(1, window * height // self.events.shape[-2])
        return attention_tiles(height, width, window)


def _tile_tokens(
    tokens: torch.Tensor | None, height: int, width: int, rows: slice, cols: slice
) -> torch.Tensor | None:
    """The tokens ``(B, h*w, C)`` (row-major) of one tile, ``(B, rows*cols, C)``; ``None`` stays ``None``."""
    if tokens is None:
        return None
    return tokens.unflatten(1, (height, width))[:, rows, cols].flatten(1, 2)


class ResidualAttention(nn.Module):
    """``tokens + Attention(LayerNorm(tokens) [+ query_position], context [+ context_position])``.

    ``short_sequences``: the attention runs over a few tokens at a time (the temporal blocks), with
    :class:`ShortSequenceAttnProcessor`.
    """

    def __init__(
        self, channels: int, heads: int, context_channels: int | None = None, short_sequences: bool = False
    ) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels)
        self.attention = Attention(
            channels,
            cross_attention_dim=context_channels,
            heads=heads,
            dim_head=channels // heads,
            bias=False,
            upcast_softmax=short_sequences,
            processor=ShortSequenceAttnProcessor() if short_sequences else None,
        )

    def forward(
        self,
        tokens: torch.Tensor,
        context: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        query_position: torch.Tensor | None = None,
    ) -> torch.Tensor:
        query = self.norm(tokens)
        if query_position is not None:
            query = query + query_position
        return tokens + self.attention(query, encoder_hidden_states=context, attention_mask=mask)


class ResidualFeedForward(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels)
        self.feed_forward = FeedForward(channels, activation_fn="geglu")

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return tokens + self.feed_forward(self.norm(tokens))


class SpatialTransformer(nn.Module):
    """Per frame, on ``(B*N, C, h, w)``: self-attn -> event cross-attn (ESA) -> text cross-attn -> FF."""

    def __init__(
        self, channels: int, heads: int, groups: int, event_channels: int | None, text_dim: int | None
    ):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels)
        self.proj_in = nn.Linear(channels, channels)
        self.self_attention = ResidualAttention(channels, heads)
        self.event_attention = ResidualAttention(channels, heads, event_channels) if event_channels else None
        self.text_attention = ResidualAttention(channels, heads, text_dim) if text_dim else None
        self.feed_forward = ResidualFeedForward(channels)
        self.proj_out = nn.Linear(channels, channels)

    def _attend(
        self, tokens: torch.Tensor, events: torch.Tensor | None, position: torch.Tensor | None
    ) -> torch.Tensor:
        """Self-attention, then event cross-attention (ESA), on one tile's tokens ``(B*N, n, C)``."""
        tokens = self.self_attention(tokens)
        if self.event_attention is not None:
            tokens = self.event_attention(tokens, events, query_position=position)
        return tokens

    def forward(self, hidden: torch.Tensor, condition: Conditioning) -> torch.Tensor:
        # 1. Input: (B*N, C, h, w) -> tokens (B*N, h*w, C)
        frames, channels, height, width = hidden.shape
        tokens = self.proj_in(self.norm(hidden).flatten(2).transpose(1, 2))
        events = position = None
        if self.event_attention is not None:
            events = condition.events_at(height, width).flatten(2).transpose(1, 2)
            events = events + _position_2d(events.shape[-1], height, width, events)
            position = _position_2d(channels, height, width, tokens)
        # 2. Blocks: self- and event attention within each tile (positions stay the frame's), then text
        tiles = condition.tiles_at(height, width)
        if len(tiles) == 1:
            tokens = self._attend(tokens, events, position)
        else:
            attended = torch.empty_like(tokens).unflatten(1, (height, width))
            for rows, cols in tiles:
                tile = [_tile_tokens(x, height, width, rows, cols) for x in (tokens, events, position)]
                attended[:, rows, cols] = self._attend(*tile).unflatten(1, attended[:, rows, cols].shape[1:3])
            tokens = attended.flatten(1, 2)
        if self.text_attention is not None:
            tokens = self.text_attention(tokens, condition.text, mask=condition.text_bias)
        tokens = self.feed_forward(tokens)
        # 3. Output: back to (B*N, C, h, w), residual
        return hidden + self.proj_out(tokens).transpose(1, 2).reshape(frames, channels, height, width)


class TemporalTransformer(nn.Module):
    """Per pixel, over the clip's frames: temporal self-attn -> temporal event cross-attn (ESA) -> FF."""

    def __init__(self, channels: int, heads: int, groups: int, event_channels: int | None):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels)
        self.proj_in = nn.Linear(channels, channels)
        self.self_attention = ResidualAttention(channels, heads, short_sequences=True)
        self.event_attention = None
        if event_channels:
            self.event_attention = ResidualAttention(channels, heads, event_channels, short_sequences=True)
        self.feed_forward = ResidualFeedForward(channels)
        self.proj_out = nn.Linear(channels, channels)

    @staticmethod
    def _per_pixel(maps: torch.Tensor, num_frames: int) -> torch.Tensor:
        """``(B*N, C, h, w)`` -> ``(B*h*w, N, C)``."""
        frames, channels, height, width = maps.shape
        batch = frames // num_frames
        return maps.reshape(batch, num_frames, channels, height * width).permute(0, 3, 1, 2).flatten(0, 1)

    def forward(self, hidden: torch.Tensor, condition: Conditioning) -> torch.Tensor:
        # 1. Input: (B*N, C, h, w) -> tokens (B*h*w, N, C) with frame positions
        frames, channels, height, width = hidden.shape
        num_frames = condition.num_frames
        tokens = self.proj_in(self._per_pixel(self.norm(hidden), num_frames))
        tokens = tokens + _position_1d(channels, num_frames, tokens)
        # 2. Blocks
        tokens = self.self_attention(tokens)
        if self.event_attention is not None:
            events = self._per_pixel(condition.events_at(height, width), num_frames)
            events = events + _position_1d(events.shape[-1], num_frames, events)
            tokens = self.event_attention(tokens, events)
        tokens = self.feed_forward(tokens)
        # 3. Output: (B*h*w, N, C) -> (B*N, C, h, w), residual
        batch = frames // num_frames
        tokens = self.proj_out(tokens).reshape(batch, height * width, num_frames, channels)
        return hidden + tokens.permute(0, 2, 3, 1).reshape(frames, channels, height, width)


class VideoLayer(nn.Module):
    """One U-Net layer: ResnetBlock2D (+ timestep) -> spatial transformer -> temporal transformer."""

    def __init__(self, channels_in: int, channels_out: int, temb_channels: int, config) -> None:
        super().__init__()
        heads, groups = config.attention_heads, config.norm_num_groups
        event_channels = config.event_channels if config.use_esa else None
        text_dim = config.text_dim if config.use_text else None
        self.resnet = ResnetBlock2D(
            in_channels=channels_in, out_channels=channels_out, temb_channels=temb_channels, groups=groups
        )
        self.spatial = SpatialTransformer(channels_out, heads, groups, event_channels, text_dim)
        self.temporal = TemporalTransformer(channels_out, heads, groups, event_channels)

    def forward(self, hidden: torch.Tensor, temb: torch.Tensor, condition: Conditioning) -> torch.Tensor:
        hidden = self.resnet(hidden, temb)
        hidden = self.spatial(hidden, condition)
        return self.temporal(hidden, condition)


class VideoUNet(LaseModelMixin, ConfigMixin):
    """The LaSe-E2V denoiser: predicts epsilon or v for every frame of a clip of latents.

    Args:
        latent_channels (`int`, defaults to 32): C, channels of the autoencoder's latents.
        event_channels (`int`, defaults to 16): C_e, channels of the event encoder's features.
        text_dim (`int`, defaults to 384): D, width of the text encoder's token states.
        block_out_channels (`tuple[int, ...]`): width per level (a stride-2 step between levels).
        layers_per_block (`int`): :class:`VideoLayer` s per level on the way down (+1 on the way up).
        attention_heads (`int`): heads of every attention.
        norm_num_groups (`int`): GroupNorm groups.
        use_esa, use_text, use_previous_frame (`bool`): ablation switches (see the module docstring).
        use_estimate (`bool`, defaults to False): also take the latent of an event-based estimate of
            every frame (module docstring).
        prediction_type (`str`): ``"epsilon"`` or ``"v_prediction"`` (diffusers' scheduler names).
    """

    _supports_gradient_checkpointing = True

    @register_to_config
    def __init__(
        self,
        latent_channels: int = 32,
        event_channels: int = 16,
        text_dim: int = 384,
        block_out_channels: tuple[int, ...] = (32, 64),
        layers_per_block: int = 1,
        attention_heads: int = 2,
        norm_num_groups: int = 8,
        use_esa: bool = True,
        use_text: bool = True,
        use_previous_frame: bool = True,
        prediction_type: str = "epsilon",
        use_estimate: bool = False,
    ) -> None:
        super().__init__()
        if prediction_type not in PREDICTION_TYPES:
            raise ConfigError(f"prediction_type '{prediction_type}' unknown; choose from {PREDICTION_TYPES}")
        config = self.config
        in_channels = latent_channels * (1 + use_previous_frame + use_estimate) + event_channels
        first = block_out_channels[0]
        temb_channels = first * 4
        # 1. Input and timestep embedding
        self.conv_in = nn.Conv2d(in_channels, first, 3, padding=1)
        self.time_proj = Timesteps(first, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_embedding = TimestepEmbedding(first, temb_channels)
        # 2. Down path; skip_channels tracks what the up path will concatenate
        skip_channels = [first]
        self.down_layers = nn.ModuleList()
        self.downsamplers = nn.ModuleList()
        channels = first
        for level, width in enumerate(block_out_channels):
            layers = nn.ModuleList()
            for _ in range(layers_per_block):
                layers.append(VideoLayer(channels, width, temb_channels, config))
                channels = width
                skip_channels.append(width)
            self.down_layers.append(layers)
            if level < len(block_out_channels) - 1:
                self.downsamplers.append(Downsample2D(width, use_conv=True, padding=1, name="op"))
                skip_channels.append(width)
        # 3. Middle
        self.mid_layer = VideoLayer(channels, channels, temb_channels, config)
        self.mid_resnet = ResnetBlock2D(
            in_channels=channels, out_channels=channels, temb_channels=temb_channels, groups=norm_num_groups
        )
        # 4. Up path
        self.up_layers = nn.ModuleList()
        self.upsamplers = nn.ModuleList()
        for level, width in reversed(list(enumerate(block_out_channels))):
            layers = nn.ModuleList()
            for _ in range(layers_per_block + 1):
                layers.append(VideoLayer(channels + skip_channels.pop(), width, temb_channels, config))
                channels = width
            self.up_layers.append(layers)
            if level > 0:
                self.upsamplers.append(Upsample2D(width, use_conv=True))
        # 5. Output
        self.conv_out = nn.Sequential(
            nn.GroupNorm(norm_num_groups, first), nn.SiLU(), nn.Conv2d(first, latent_channels, 3, padding=1)
        )
        self.gradient_checkpointing = False

    @classmethod
    def from_preset(cls, name: str, **overrides) -> VideoUNet:
        """Random-initialised U-Net of a named size (``tiny``, ``base``), with config overrides."""
        if name not in UNET_PRESETS:
            raise ConfigError(f"U-Net preset '{name}' unknown; choose from {sorted(UNET_PRESETS)}")
        return cls(**{**UNET_PRESETS[name], **overrides})

    def load_extended_state_dict(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Load a model's weights that lacked the estimate input (``use_estimate=False``) into this one:
        ``conv_in`` keeps its old input channels and gets zeros for the new ones, so the extended model
        computes exactly what the old one did until training moves them."""
        weight = state_dict.get("conv_in.weight")
        if weight is not None and weight.shape[1] < self.conv_in.in_channels:
            extended = torch.zeros_like(self.conv_in.weight)
            extended[:, : weight.shape[1]] = weight
            state_dict = {**state_dict, "conv_in.weight": extended}
        self.load_state_dict(state_dict)

    def _check_inputs(self, noisy_latents, event_features, previous_latent, text_states, text_mask,
                      estimate_latents) -> None:
        config = self.config
        if noisy_latents.ndim != 5 or noisy_latents.shape[2] != config.latent_channels:
            raise ConfigError(
                f"noisy_latents must be (B, N, {config.latent_channels}, h, w), got {tuple(noisy_latents.shape)}"
            )
        expected = (*noisy_latents.shape[:2], config.event_channels, *noisy_latents.shape[3:])
        if tuple(event_features.shape) != expected:
            raise ConfigError(f"event_features must be {expected}, got {tuple(event_features.shape)}")
        if previous_latent is not None and not config.use_previous_frame:
            raise ConfigError("previous_latent given to a U-Net built with use_previous_frame=False")
        if (text_states is not None) != config.use_text:
            raise ConfigError(
                f"text_states {'missing' if config.use_text else 'given'} but use_text={config.use_text}"
            )
        if text_states is not None and text_mask is not None and text_mask.shape != text_states.shape[:2]:
            raise ConfigError(
                f"text_mask must be {tuple(text_states.shape[:2])}, got {tuple(text_mask.shape)}"
            )
        if (estimate_latents is not None) != config.use_estimate:
            raise ConfigError(
                f"estimate_latents {'missing' if config.use_estimate else 'given'} but use_estimate={config.use_estimate}"
            )
        if estimate_latents is not None and estimate_latents.shape != noisy_latents.shape:
            raise ConfigError(
                f"estimate_latents must be {tuple(noisy_latents.shape)}, got {tuple(estimate_latents.shape)}"
            )

    def _run(self, layer: nn.Module, *args) -> torch.Tensor:
        if torch.is_grad_enabled() and self.gradient_checkpointing:
            return self._gradient_checkpointing_func(layer, *args)
        return layer(*args)

    def forward(
        self,
        noisy_latents: torch.Tensor,
        timesteps: torch.Tensor | int,
        event_features: torch.Tensor,
        previous_latent: torch.Tensor | None = None,
        text_states: torch.Tensor | None = None,
        text_mask: torch.Tensor | None = None,
        estimate_latents: torch.Tensor | None = None,
        attention_window: int | None = None,
    ) -> torch.Tensor:
        """Predict the noise (or v) of every frame.

        Args:
            noisy_latents (`torch.Tensor`): ``(B, N, C, h, w)``, the noised latents z_1..z_N.
            timesteps (`torch.Tensor` or `int`): ``(B,)`` or a scalar, diffusion steps in [0, 1000).
            event_features (`torch.Tensor`): ``(B, N, C_e, h, w)`` from :class:`EventEncoder`.
            previous_latent (`torch.Tensor`, *optional*): ``(B, C, h, w)`` latent z_0 of the frame before
                the clip; ``None`` means zeros. Must be ``None`` when ``use_previous_frame=False``.
            text_states (`torch.Tensor`, *optional*): ``(B, L, D)``; required iff ``use_text``.
            text_mask (`torch.Tensor`, *optional*): ``(B, L)`` bool, True on real tokens (all if ``None``).
            estimate_latents (`torch.Tensor`, *optional*): ``(B, N, C, h, w)``, latents of an event-based
                estimate of every frame; required iff ``use_estimate``.
            attention_window (`int`, *optional*): spatial self- and event attention within tiles of at
                most this many latent pixels a side (module docstring); ``None``: over the whole frame.

        Returns:
            `torch.Tensor`: ``(B, N, C, h, w)``, same dtype as the model.
        """
        self._check_inputs(noisy_latents, event_features, previous_latent, text_states, text_mask, estimate_latents)
        batch, num_frames = noisy_latents.shape[:2]
        dtype = self.dtype
        # 1. Input: [z_1..z_N, z_0, z_e (, z_est)] per frame, flattened to (B*N, C_in, h, w)
        inputs = [noisy_latents.to(dtype)]
        if self.config.use_previous_frame:
            if previous_latent is None:
                previous_latent = torch.zeros_like(noisy_latents[:, 0])
            inputs.append(previous_latent.to(dtype)[:, None].expand_as(noisy_latents))
        inputs.append(event_features.to(dtype))
        if estimate_latents is not None:
            inputs.append(estimate_latents.to(dtype))
        hidden = self.conv_in(torch.cat(inputs, dim=2).flatten(0, 1))
        # 2. Timestep embedding per frame
        timesteps = torch.as_tensor(timesteps, device=hidden.device).reshape(-1).expand(batch)
        temb = self.time_embedding(self.time_proj(timesteps).to(dtype)).repeat_interleave(num_frames, dim=0)
        condition = Conditioning(num_frames, event_features.to(dtype).flatten(0, 1),
                                 attention_window=attention_window)
        if text_states is not None:
            condition.text = text_states.to(dtype).repeat_interleave(num_frames, dim=0)
            if text_mask is not None:
                bias = (~text_mask.bool()).to(dtype) * -10000.0
                condition.text_bias = bias[:, None].repeat_interleave(num_frames, dim=0)
        # 3. Down path
        skips = [hidden]
        for level, layers in enumerate(self.down_layers):
            for layer in layers:
                hidden = self._run(layer, hidden, temb, condition)
                skips.append(hidden)
            if level < len(self.downsamplers):
                hidden = self.downsamplers[level](hidden)
                skips.append(hidden)
        # 4. Middle
        hidden = self._run(self.mid_layer, hidden, temb, condition)
        hidden = self.mid_resnet(hidden, temb)
        # 5. Up path
        for level, layers in enumerate(self.up_layers):
            for layer in layers:
                hidden = self._run(layer, torch.cat([hidden, skips.pop()], dim=1), temb, condition)
            if level < len(self.upsamplers):
                hidden = self.upsamplers[level](hidden, output_size=skips[-1].shape[-2:])
        # 6. Output
        return self.conv_out(hidden).unflatten(0, (batch, num_frames))
