"""Training the learned fusion (:mod:`lase_e2v.models.fusion`) of a frozen LaSe-E2V pipeline.

Why apart from the diffusion training (:mod:`.loop`): the fusion must learn what the *sampler* makes
of a recording (clips chained on the model's own frames, EI from the estimate, samples averaged),
which the training loop never runs. So the frozen pipeline first reconstructs whole sequences as
inference does, and the small network then learns, from those frames, how to combine them with
their estimates. The sequences should be new to the diffusion model: on its own training
sequences its frames are better than on new ones, and the fusion would learn to trust them too much.

1. :func:`collect_sequence`: for one ``make-dataset`` sequence, the peer's estimate of every window
   between consecutive frames (run once, then handed to the pipeline as its EI source, so both
   see the same estimate), the pipeline's frame with fusion and estimate mix off, the window's
   event magnitude (:func:`~lase_e2v.models.fusion.event_magnitude`), the true frame and, for a
   fusion with a second estimate (``FusionConfig.second_estimate``), the second peer's frame; cached per
   sequence as float16 ``.npz`` under ``<output>.cache/`` so an interrupted run resumes, and shared
   out among several processes (``torchrun``).
2. :func:`train_fusion`: random crops (mirrored half the time) of all frames, loss
   ``L1 + ssim_weight * (1 - SSIM) + lpips_weight * LPIPS`` (SSIM with EVREAL's window, LPIPS
   AlexNet: the scores the benchmark reports), AdamW with a one-cycle learning rate.
3. :func:`fused_pipeline` / :func:`save_fused_pipeline`: the pipeline with its fusion network,
   sampling with ``fusion`` on and ``estimate_mix`` 0 (the network replaces the fixed blend), the
   base folder's other recommended sampling options kept.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from lase_e2v.atomic import atomic_path
from lase_e2v.errors import ConfigError
from lase_e2v.evaluation.lpips import load_lpips
from lase_e2v.evaluation.metrics import gaussian_window_1d, ssim_map
from lase_e2v.events.formats import open_events
from lase_e2v.events.windows import FrameWindows
from lase_e2v.models.fusion import EstimateFusion, event_magnitude, sharpness_ratio
from lase_e2v.pipelines.lase import (LASE_TINY_DIR, LaSeE2VPipeline, load_lase_pipeline, recommended_sampling,
                                     with_sampling)
from lase_e2v.pipelines.output import ReconstructionPipeline
from lase_e2v.processes import Processes
from lase_e2v.training.clips import load_manifest

#: the arrays cached per sequence: decoded frame, estimate, event magnitude, true frame, each (N, H, W)
CACHED = ("frames", "estimates", "magnitudes", "truth")
#: cached too when the pipeline has a ``fusion_estimate``: the second peer's frame, (N, H, W)
SECOND = "seconds"


@dataclass(frozen=True)
class FusionConfig:
    """How :func:`train_fusion` trains (defaults: the bundled fusion's recipe). ``second_estimate``:
    the peer (a registered method name) whose frames the fusion also takes, ``None`` for none."""

    max_steps: int = 1500
    crop_size: int = 96
    batch_size: int = 8
    learning_rate: float = 1e-3
    ssim_weight: float = 1.0
    lpips_weight: float = 1.0
    channels: int = 16
    sharpness_input: bool = False
    second_estimate: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.max_steps < 1 or self.batch_size < 1 or self.channels < 1:
            raise ConfigError(f"max_steps, batch_size and channels must be >= 1, got {self.max_steps}, "
                              f"{self.batch_size}, {self.channels}")
        if self.crop_size < 16:
            raise ConfigError(f"crop_size must be >= 16 pixels (the SSIM window is 11), got {self.crop_size}")
        if self.learning_rate <= 0 or self.ssim_weight < 0 or self.lpips_weight < 0:
            raise ConfigError("learning_rate must be > 0 and the loss weights >= 0")


def fusion_sequences(data_dirs: Sequence[str | Path]) -> list[Path]:
    """Every sequence (train and val) of the ``make-dataset`` folders, in order; gray ones only."""
    paths = []
    for folder in map(Path, data_dirs):
        manifest = load_manifest(folder)
        if manifest.get("color_filter"):
            raise ConfigError(f"{folder}: a colour dataset (make-dataset --color); the fusion trains on "
                              "gray ones")
        paths += [folder / record["file"] for record in manifest["sequences"]]
    if not paths:
        raise ConfigError(f"no sequences in {', '.join(map(str, data_dirs))}")
    return paths


def collect_sequence(pipeline: LaSeE2VPipeline, path: Path) -> dict[str, np.ndarray]:
    """The :data:`CACHED` arrays of one sequence (see the module docstring), float16."""
    peer = pipeline.options.estimate
    if not isinstance(peer, ReconstructionPipeline):
        raise ConfigError("the fusion learns from a peer's estimate: the pipeline's estimate must name a "
                          "peer (e.g. estimate='pienet'), not 'previous'")
    reader = open_events(path)
    frames = reader.read_frames()
    windows = list(FrameWindows(tuple(int(t) for t in frames.t_us)).iter_windows(reader.iter_chunks()))

    def run(source: ReconstructionPipeline) -> np.ndarray:
        source.reset()
        return np.stack([frame.image for frame in source.iter_frames(iter(windows))])

    estimates = run(peer)
    sampler = with_sampling(pipeline, estimate=lambda window: estimates[window.index], fusion=False,
                            estimate_mix=0.0)
    decoded = np.stack([frame.image for frame in sampler.iter_frames(iter(windows), caption=reader.caption)])
    magnitudes = np.concatenate([event_magnitude(pipeline.voxelize([window]))[0, :, 0].numpy()
                                 for window in windows])
    truth = frames.as_float()[[window.index + 1 for window in windows]]
    arrays = {"frames": decoded, "estimates": estimates, "magnitudes": magnitudes, "truth": truth}
    second = pipeline.options.fusion_estimate
    if second is not None:
        if not isinstance(second, ReconstructionPipeline):
            raise ConfigError("the fusion's second estimate must be a peer (e.g. fusion_estimate='cista_tc')")
        arrays[SECOND] = run(second)
    return {name: np.asarray(value, dtype=np.float16) for name, value in arrays.items()}


def cache_file(cache_dir: Path, path: Path) -> Path:
    """Where one sequence's arrays are cached (its folder's name keeps two datasets' ``seq_00000`` apart)."""
    return cache_dir / f"{path.parent.name}_{path.stem}.npz"


def collect(pipeline: LaSeE2VPipeline, paths: Sequence[Path], cache_dir: Path,
            processes: Processes) -> list[Path]:
    """Cache every sequence not cached yet (this process's share of them); all cache files, once every
    process is done."""
    # every process takes the main one's list (gathered before any process writes), so the shares agree
    todo = processes.all_gather([path for path in paths if not cache_file(cache_dir, path).is_file()])[0]

    def work() -> None:
        share = processes.share(todo)
        for path in tqdm(share, desc="collecting frames", unit="seq", disable=not processes.is_main):
            arrays = collect_sequence(pipeline, path)
            with atomic_path(cache_file(cache_dir, path)) as tmp, open(tmp, "wb") as file:
                np.savez(file, **arrays)

    processes.run_everywhere(work)  # also waits for every process
    return [cache_file(cache_dir, path) for path in paths]


def ssim_loss(prediction: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``1 - SSIM`` of ``(B, 1, H, W)`` images in [0, 1], the window and constants of
    :func:`lase_e2v.evaluation.metrics.ssim` (valid filtering), differentiable."""
    window = torch.as_tensor(gaussian_window_1d(), dtype=prediction.dtype, device=prediction.device)

    def blur(image: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(image, window.view(1, 1, 1, -1)), window.view(1, 1, -1, 1))

    return 1 - ssim_map(prediction, reference, blur).mean()


def _load_cache(files: Sequence[Path], second: bool = False) -> dict[str, torch.Tensor]:
    """All frames of the cache files, float16 (``(N, H, W)`` per array), with the second peer's
    when ``second``."""
    names = CACHED + ((SECOND,) if second else ())
    parts: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for file in files:
        with np.load(file) as arrays:
            if second and SECOND not in arrays:
                raise ConfigError(f"{file}: cached without a second estimate; delete the cache to collect again")
            for name in names:
                parts[name].append(arrays[name])
    shapes = {part.shape[1:] for part in parts["truth"]}
    if len(shapes) != 1:
        raise ConfigError(f"the sequences have different frame sizes {sorted(shapes)}; train on one size")
    return {name: torch.from_numpy(np.concatenate(values)) for name, values in parts.items()}


def train_fusion(files: Sequence[Path], config: FusionConfig, progress: bool = True) -> EstimateFusion:
    """Train a fresh :class:`EstimateFusion` on the cached sequences ``files`` (see the module docstring)."""
    second = config.second_estimate is not None
    data = _load_cache(files, second)
    count, height, width = data["truth"].shape
    crop = min(config.crop_size, height, width)
    generator = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    fusion = EstimateFusion(channels=config.channels, sharpness_input=config.sharpness_input,
                            second_estimate=second)
    # whole frames' ratios, for the crops (in chunks: float32 copies of all frames would be GBs)
    ratios = torch.cat([sharpness_ratio(data["frames"][start:start + 256, None].float(),
                                        data["estimates"][start:start + 256, None].float())
                        for start in range(0, count, 256)]) if config.sharpness_input else None
    lpips = load_lpips() if config.lpips_weight > 0 else None
    optimizer = torch.optim.AdamW(fusion.parameters(), lr=config.learning_rate, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, config.learning_rate,
                                                   total_steps=config.max_steps, pct_start=0.05)
    bar = tqdm(range(config.max_steps), desc="training fusion", unit="step", disable=not progress)
    for _ in bar:
        index = torch.randint(count, (config.batch_size,), generator=generator)
        top = torch.randint(height - crop + 1, (config.batch_size,), generator=generator)
        left = torch.randint(width - crop + 1, (config.batch_size,), generator=generator)
        flip = bool(torch.rand((), generator=generator) < 0.5)

        def crops(name: str) -> torch.Tensor:
            batch = torch.stack([data[name][i, t:t + crop, l:l + crop] for i, t, l in zip(index, top, left)])
            return (batch.flip(-1) if flip else batch)[:, None].float()

        truth = crops("truth")
        fused = fusion(crops("frames"), crops("estimates"), crops("magnitudes"),
                       None if ratios is None else ratios[index], crops(SECOND) if second else None)
        loss = (fused - truth).abs().mean() + config.ssim_weight * ssim_loss(fused, truth)
        if lpips is not None:
            loss = loss + config.lpips_weight * lpips(fused.expand(-1, 3, -1, -1) * 2 - 1,
                                                      truth.expand(-1, 3, -1, -1) * 2 - 1).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        bar.set_postfix(loss=f"{loss.item():.4f}")
    return fusion.eval()


def fused_pipeline(pipeline: LaSeE2VPipeline, fusion: EstimateFusion) -> LaSeE2VPipeline:
    """``pipeline``'s modules and sampling with ``fusion`` added, sampling with ``fusion`` on and
    ``estimate_mix`` 0 (the network replaces the fixed blend)."""
    options = replace(pipeline.options, fusion=True, estimate_mix=0.0)
    return LaSeE2VPipeline(pipeline.autoencoder, pipeline.text_encoder, pipeline.event_encoder,
                           pipeline.unet, pipeline.scheduler, options, fusion=fusion)


def save_fused_pipeline(pipeline: LaSeE2VPipeline, fusion: EstimateFusion, base: Path, output: Path,
                        second_estimate: str | None = None) -> None:
    """Save ``pipeline`` with ``fusion`` to ``output``: ``sampling.json`` is the base folder's with
    ``fusion`` on, ``estimate_mix`` 0 and ``fusion_estimate`` the peer ``second_estimate`` names (or
    none); the base's other files (README, licence) are not copied."""
    recommended = recommended_sampling(base)  # read (and checked) once already, by load_lase_pipeline
    recommended.pop("fusion_estimate", None)
    second = {"fusion_estimate": second_estimate} if second_estimate is not None else {}
    # the peer objects are not saved: sampling.json names them, as in the base folder
    fused = fused_pipeline(with_sampling(pipeline, estimate="previous"), fusion)
    fused.save_pretrained(output, sampling={**recommended, "fusion": True, "estimate_mix": 0.0, **second})


def run_fusion_training(data_dirs: Sequence[str | Path], output: str | Path,
                        checkpoint: str | Path | None = None, config: FusionConfig | None = None,
                        device: str = "cpu") -> Path | None:
    """The ``lase-e2v train-fusion`` command: collect (all processes), train and save (the main one).
    Returns ``output`` in the main process, ``None`` in the others. ``device`` runs the pipeline;
    the fusion itself trains on the CPU (107 k parameters)."""
    config = config or FusionConfig()
    base = Path(checkpoint) if checkpoint is not None else LASE_TINY_DIR
    paths = fusion_sequences(data_dirs)
    processes = Processes.current()
    # refuses a folder that is no saved pipeline, before any work
    pipeline = load_lase_pipeline(base, device=processes.device(device), fusion=False, estimate_mix=0.0,
                                  fusion_estimate=config.second_estimate)
    output = Path(output)
    cache_dir = output.with_name(output.name + ".cache")
    cache_dir.mkdir(parents=True, exist_ok=True)
    files = collect(pipeline, paths, cache_dir, processes)
    if not processes.is_main:
        return None
    fusion = train_fusion(files, config)
    save_fused_pipeline(pipeline, fusion, base, output, config.second_estimate)
    shutil.rmtree(cache_dir)
    return output
