"""Shared test fixtures: where ../shared lives and the real slider_depth sequence."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from lase_e2v.events.formats import write_events
from lase_e2v.events.streams import EventStream, Frames

# Two cores shared by pytest and BLAS: one intra-op thread avoids oversubscription and is faster here.
torch.set_num_threads(1)

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LASE_SHARED", REPO_ROOT.parent / "shared"))
SLIDER_DEPTH = SHARED / "data" / "ecd_slider_depth"


def pytest_collection_modifyitems(config, items):
    if os.environ.get("LASE_RUN_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow test: set LASE_RUN_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"../shared not found at {SHARED}; set LASE_SHARED")
    return SHARED


@pytest.fixture(scope="session")
def slider_depth_dir(shared_dir: Path) -> Path:
    return shared_dir / "data" / "ecd_slider_depth"


SYNTHETIC_FRAME_T_US = np.array([0, 10_000, 20_000, 30_000, 40_000, 50_000])


def synthetic_recording() -> tuple[EventStream, Frames]:
    """32x32 sensor, 6 frames 10 ms apart, a bright square moving 2 px per frame.

    Events fire only in columns 0..15; in the window ending at frame 3 (30 ms) the last event is at
    27 ms, 3 ms before the frame, so the 1 ms timestamp tolerance leaves that frame unscored.
    """
    rng = np.random.default_rng(0)
    images = np.full((6, 32, 32), 40, np.uint8)
    for k in range(6):
        images[k, 8:20, 2 + 2 * k : 14 + 2 * k] = 200
    ts, xs, ys = [], [], []
    for k in range(5):
        start = k * 10_000
        end = start + (7_000 if k == 2 else 9_950)
        n = 50
        ts.append(np.sort(rng.integers(start, end, n)))
        xs.append(rng.integers(0, 16, n))
        ys.append(rng.integers(0, 32, n))
    t = np.concatenate(ts)
    events = EventStream(
        np.concatenate(xs), np.concatenate(ys), t, np.where(np.arange(len(t)) % 2, 1, -1), (32, 32)
    )
    return events, Frames(images, SYNTHETIC_FRAME_T_US.copy())


@pytest.fixture(scope="session")
def synthetic_sequence(tmp_path_factory) -> Path:
    """The synthetic recording written as an HQF-layout HDF5 file."""
    events, frames = synthetic_recording()
    path = tmp_path_factory.mktemp("synthetic") / "moving_square.h5"
    write_events(path, events, frames)
    return path


@pytest.fixture(scope="session")
def synthetic_frames() -> Frames:
    return synthetic_recording()[1]


@pytest.fixture
def run_cli(capsys):
    """``run_cli(*args)`` runs ``lase-e2v`` in this process: ``(exit code, stdout, stderr)``."""
    from lase_e2v.cli import main

    def run(*args) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


@pytest.fixture
def cli_error(run_cli):
    """``cli_error(*args)``: the one ``error:`` line of a command that must fail with exit status 2
    and no traceback."""

    def error_line(*args) -> str:
        code, _, err = run_cli(*args)
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        assert code == 2 and "Traceback" not in err and len(errors) == 1, err
        return errors[0]

    return error_line


@pytest.fixture
def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def color_dataset(tmp_path_factory, shared_dir) -> Path:
    """make-dataset --color: 4 RGGB sequences of COCO photos (3 train, 1 val), 90x120, 1.5 s at 30 Hz."""
    from lase_e2v.simulate.dataset import make_dataset

    folder = tmp_path_factory.mktemp("color") / "data"
    make_dataset(folder, 4, duration_s=1.5, size=(90, 120), seed=0, coco_dir=shared_dir / "data" / "coco_mini",
                 progress=False, color_filter="RGGB")
    return folder


# -- tiny random transformers vision models, built and saved here (nothing downloads) -------------

#: the words of the tiny captioner's vocabulary after BERT's special tokens and BLIP's [DEC]
TINY_WORDS = ("a", "cat", "dog", "on", "the", "sofa", "street", "night", "desk", "of")


@pytest.fixture(scope="session")
def tiny_blip(tmp_path_factory) -> Path:
    """A BLIP captioner (BlipForConditionalGeneration + BlipProcessor, PIL image processor) of random
    weights at a tiny size, saved as a Hugging Face snapshot is."""
    from transformers import BertTokenizer, BlipConfig, BlipForConditionalGeneration, BlipProcessor
    from transformers.models.blip.image_processing_pil_blip import BlipImageProcessorPil

    folder = tmp_path_factory.mktemp("tiny_blip")
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]", *TINY_WORDS]
    (folder / "vocab.txt").write_text("\n".join(words) + "\n")
    tokenizer = BertTokenizer(str(folder / "vocab.txt"), bos_token="[DEC]")
    size = {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2}
    config = BlipConfig(
        vision_config={**size, "image_size": 32, "patch_size": 16},
        text_config={**size, "vocab_size": len(words), "encoder_hidden_size": 16, "max_position_embeddings": 40,
                     "bos_token_id": 5, "pad_token_id": 0, "sep_token_id": 3, "eos_token_id": 3},
        projection_dim=16,
    )
    torch.manual_seed(0)
    BlipForConditionalGeneration(config).save_pretrained(folder)
    BlipProcessor(BlipImageProcessorPil(size={"height": 32, "width": 32}), tokenizer).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_tagger(tmp_path_factory) -> Path:
    """A RAM-style tagger: a tiny multi-label ViT image classifier whose labels are words."""
    from transformers import ViTConfig, ViTForImageClassification
    from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil

    folder = tmp_path_factory.mktemp("tiny_tagger")
    config = ViTConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                       image_size=32, patch_size=16, problem_type="multi_label_classification",
                       id2label=dict(enumerate(TINY_WORDS)), label2id={w: i for i, w in enumerate(TINY_WORDS)})
    torch.manual_seed(0)
    ViTForImageClassification(config).save_pretrained(folder)
    ViTImageProcessorPil(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory) -> Path:
    """A CLIP model (both towers, as a CLIP snapshot) of random weights with its PIL image processor."""
    from transformers import CLIPConfig, CLIPModel
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    folder = tmp_path_factory.mktemp("tiny_clip")
    size = {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2}
    config = CLIPConfig(text_config={**size, "vocab_size": 10}, vision_config={**size, "image_size": 32, "patch_size": 8},
                        projection_dim=8)
    torch.manual_seed(0)
    CLIPModel(config).save_pretrained(folder)
    CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_dino(tmp_path_factory) -> Path:
    """A ViT backbone (DINO's architecture in transformers) of random weights with its PIL image processor."""
    from transformers import ViTConfig, ViTModel
    from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil

    folder = tmp_path_factory.mktemp("tiny_dino")
    torch.manual_seed(0)
    ViTModel(ViTConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                       image_size=32, patch_size=8), add_pooling_layer=False).save_pretrained(folder)
    ViTImageProcessorPil(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder
