"""The tiny synthetic dataset the training tests train on (3 sequences, 32x32, 0.2 s; made once)."""

from __future__ import annotations

import pytest

from lase_e2v.simulate.dataset import make_dataset


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory, shared_dir):
    folder = tmp_path_factory.mktemp("synth") / "data"
    make_dataset(folder, 3, duration_s=0.2, size=(32, 32), seed=0, coco_dir=shared_dir / "data" / "coco_mini",
                 progress=False)
    return folder
