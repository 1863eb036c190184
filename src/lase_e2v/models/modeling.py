"""Base class of lase-e2v's diffusers-style models.

Why it exists: diffusers' ``from_pretrained`` leaves the weights inside the memory-mapped
safetensors file, at offsets that are only 8-byte aligned. CPU kernels (oneDNN/MKL) take other
code paths for such tensors than for freshly allocated ones, so a loaded model differed from the
model that was saved in the last bit (about 1e-6). Copying the weights into fresh memory makes a
save/load round trip bit-exact and closes the file.
"""

from __future__ import annotations

import torch
from diffusers.models.modeling_utils import ModelMixin


class LaseModelMixin(ModelMixin):
    """``ModelMixin`` whose ``from_pretrained`` returns weights in freshly allocated memory."""

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        model = super().from_pretrained(*args, **kwargs)
        with torch.no_grad():
            for tensor in [*model.parameters(), *model.buffers()]:
                tensor.data = tensor.data.clone()
        return model
