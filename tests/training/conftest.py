"""The tiny synthetic dataset the training tests train on (3 sequences, 32x32, 0.2 s; made once), and the
random pipeline the learned fusion's tests train on top of."""

from __future__ import annotations

import json

import pytest
import torch

from lase_e2v.models.autoencoder import load_autoencoder
from lase_e2v.models.text_encoder import load_text_encoder
from lase_e2v.pipelines.lase import LaSeE2VPipeline, with_sampling
from lase_e2v.simulate.dataset import make_dataset


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory, shared_dir):
    folder = tmp_path_factory.mktemp("synth") / "data"
    make_dataset(folder, 3, duration_s=0.2, size=(32, 32), seed=0, coco_dir=shared_dir / "data" / "coco_mini",
                 progress=False)
    return folder


@pytest.fixture(scope="session")
def base_checkpoint(tmp_path_factory):
    """A random tiny pipeline saved with a recommended sampling that names a peer (the integrator)."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("base") / "lase"
    pipeline = LaSeE2VPipeline.from_preset("tiny", load_autoencoder("tae"), load_text_encoder("minilm"))
    with_sampling(pipeline, num_inference_steps=2, clip_length=2, ei_strength=0.5).save_pretrained(folder)
    (folder / "sampling.json").write_text(json.dumps({"estimate": "integrate", "estimate_mix": 0.25}))
    return folder
