"""Mirror flips by name: what each does to the last two dimensions, and the names' checks."""

from __future__ import annotations

import pytest
import torch

from lase_e2v.errors import ConfigError
from lase_e2v.flips import FLIPS, check_flips, flip_images


def test_each_flip_mirrors_its_axes_and_undoes_itself():
    images = torch.arange(2 * 3 * 4.0).reshape(1, 2, 3, 4)
    assert torch.equal(flip_images(images, "none"), images)
    assert flip_images(images, "h")[0, 0, 0].tolist() == [3.0, 2.0, 1.0, 0.0]
    assert flip_images(images, "v")[0, 0, :, 0].tolist() == [8.0, 4.0, 0.0]
    assert torch.equal(flip_images(images, "hv"), images.flip(-1).flip(-2))
    for name in FLIPS:
        assert torch.equal(flip_images(flip_images(images, name), name), images)


def test_flip_names_are_checked():
    assert check_flips(["none", "h"]) == ("none", "h")
    assert check_flips("none, h") == ("none", "h")  # comma-separated, as on the command line
    assert check_flips("hv") == ("hv",)  # one name, not its letters
    for bad in ([], ["none", "none"], ["left"], "none,,h", "none,none"):
        with pytest.raises(ConfigError, match="latent flips must be distinct names"):
            check_flips(bad, "latent flips")
