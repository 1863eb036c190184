"""Scaling out over processes on one machine, as CI runs it: training and the benchmark under
``torchrun --nproc_per_node 2`` with ``ACCELERATE_USE_CPU=true`` (gloo), against one process.

The training check runs ``record_training.py`` (this folder), which records each process's clips and
weight digests; the benchmark runs the real command line.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from safetensors.torch import load_file

from lase_e2v.evaluation import ConsistencyModels, benchmark, resolve_data
from lase_e2v.evaluation.captions import caption_factories
from lase_e2v.training import load_config
from lase_e2v.training.state import ClipSampler

from record_training import weights_digest

HERE = Path(__file__).parent
#: what differs between any two runs: the time taken
TIMINGS = ("frames_per_second", "reconstruction_s")


def torchrun(*args, cwd: Path) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node 2 ARGS`` on the CPU (a free port; one thread each)."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(ACCELERATE_USE_CPU="true", OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *map(str, args)]
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def without_timings(value):
    if isinstance(value, dict):
        return {key: without_timings(item) for key, item in value.items() if key not in TIMINGS}
    if isinstance(value, list):
        return [without_timings(item) for item in value]
    return value


def test_two_processes_train_one_model_on_different_clips(data_dir, tmp_path):
    run_dir, data = tmp_path / "run", tmp_path / "data"
    shutil.copytree(data_dir, data, ignore=shutil.ignore_patterns("latents"))  # caches made here, by both
    values = {"run_dir": str(run_dir), "data_dir": str(data), "crop": [32, 32], "clip_frames": 2,
              "batch_size": 2, "max_steps": 2, "warmup_steps": 1, "checkpoint_every": 2, "log_every": 1,
              "validate_every": 0, "val_clips": 1, "val_inference_steps": 1, "ema_decay": 0.9,
              "cache_latents": True}
    config = tmp_path / "config.json"
    config.write_text(load_config(values).to_json())
    torchrun(HERE / "record_training.py", config, tmp_path, cwd=tmp_path)
    ranks = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    # the latent cache: each process encoded its own share of the train sequences, together all of them
    assert [r["cached"] for r in ranks] == [["seq_00000.h5"], ["seq_00001.h5"]]
    assert (data / "latents" / "tae" / "frames").is_dir()
    # one model: identical weights on both processes after every step, and the checkpoint holds them
    assert len(ranks[0]["digests"]) == 2 and ranks[0]["digests"] == ranks[1]["digests"]
    saved = {f"{part}.{key}": value for part in ("event_encoder", "unet")
             for key, value in load_file(run_dir / "checkpoint-2" / part / "diffusion_pytorch_model.safetensors").items()}
    assert weights_digest(saved) == ranks[0]["digests"][-1]
    # different clips: each process drew its own share of the one sample stream, none twice
    first, second = ranks[0]["clips"], ranks[1]["clips"]
    assert len(first) == len(second) == 4 and not set(first) & set(second)
    size = 10  # 2 train sequences of 7 frames, clips of 2 frames after a previous one: 2 x 5
    for rank, drawn in enumerate((first, second)):
        stream = iter(ClipSampler(size, batch_size=2, seed=0, rank=rank, world_size=2))
        assert drawn == [next(stream) for _ in range(4)]


def test_two_processes_write_the_benchmark_report_of_one(data_dir, tmp_path, tiny_dino):
    """With caption rows (stored, empty, another sequence's) and VBench's subject consistency too."""
    fast_lase = tmp_path / "fast_lase.json"
    fast_lase.write_text(json.dumps({"method": "lase", "options": {"num_inference_steps": 1, "num_samples": 1}}))
    methods = ["integrate", "firenet", str(fast_lase)]
    sequences = resolve_data(data_dir, "synthetic/train")
    one = tmp_path / "one"
    rows = caption_factories(methods, ["stored", "empty", "other"], [], sequences)
    benchmark(rows, data_dir, one, dataset="synthetic/train", progress=False, consistency=ConsistencyModels(tiny_dino))
    two = tmp_path / "two"
    done = torchrun("-m", "lase_e2v.cli", "benchmark", "--data", data_dir, "--dataset", "synthetic/train",
                    "--methods", ",".join(methods), "--caption", "stored,empty,other", "--dino", tiny_dino,
                    "-o", two, cwd=tmp_path)
    assert "process 1 of 2" in done.stderr and done.stdout.count("report: ") == 1  # split, reported once
    summary = without_timings(json.loads((two / "aggregate.json").read_text()))
    assert summary == without_timings(json.loads((one / "aggregate.json").read_text()))
    assert summary["methods"] == ["Integrator", "FireNet", "LaSe-E2V [stored caption]", "LaSe-E2V [no caption]",
                                  "LaSe-E2V [other scene's caption]"]
    assert 0 < summary["scores"]["LaSe-E2V [no caption]"]["synthetic"]["subject_consistency"] <= 1
    files = sorted(p.relative_to(one).as_posix() for p in one.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(two).as_posix() for p in two.rglob("*") if p.is_file())
    assert sum(name.startswith("videos/") and name.endswith(".mp4") for name in files) == 2
    for name in files:
        if name.startswith("results/"):
            assert without_timings(json.loads((two / name).read_text())) == \
                without_timings(json.loads((one / name).read_text()))


def test_two_processes_train_the_fusion_of_one(data_dir, base_checkpoint, tmp_path):
    """``train-fusion``: the processes share the sequences' collection, the main one trains; the
    fusion equals the one a single process trains (each sequence's sampling is seeded on its own)."""
    import torch

    from lase_e2v.training.fusion import FusionConfig, run_fusion_training

    run_fusion_training([data_dir], tmp_path / "one", base_checkpoint, FusionConfig(max_steps=2))
    done = torchrun("-m", "lase_e2v.cli", "train-fusion", data_dir, "-o", tmp_path / "two",
                    "--checkpoint", base_checkpoint, "--steps", "2", cwd=tmp_path)
    assert done.stdout.count("wrote ") == 1 and "collecting frames" in done.stderr
    one, two = (load_file(tmp_path / name / "fusion" / "diffusion_pytorch_model.safetensors")
                for name in ("one", "two"))
    # equal up to the rounding of this process's thread count against the launched processes' one thread
    assert one.keys() == two.keys() and all(torch.allclose(one[key], two[key], atol=1e-5) for key in one)
    assert one["head.weight"].abs().max() > 0  # trained: the head starts at zero
    assert not (tmp_path / "two.cache").exists()
