"""Peak memory and time of ``lase-e2v reconstruct`` against the length of the recording, per method.

ECD slider_depth (240x180, 3.4 s, 1.08 M events, 87 APS frames) is written to HDF5 (with its APS
frames and caption) once as it is (1x) and once repeated ``--repeats`` times back to back (10x),
each copy's timestamps shifted past the previous one by one frame interval. Every method that runs
without a user checkpoint reconstructs both through the command line (``python -m lase_e2v.cli
reconstruct REC -o OUT.h5 --method M``, APS frame windows, HDF5 output), one subprocess per run;
the peak resident memory of that process (its ``VmHWM``, see :data:`REPORT_PEAK`), its wall time and its
CPU time (user + system, which the other jobs of a shared machine disturb least) are recorded.
Bounded memory means the 10x peak within +10 % of the 1x peak; linear time means no more CPU time
per frame at 10x than at 1x (the start, imports and weights, is paid once, so it is less), and the
"added" column is the CPU time per frame of the frames the longer run adds (the start cancels out).

LaSe-E2V (about 1 s per frame on one core) reconstructs a shorter cut, the first
``--lase-seconds`` (0.8 s: 20 frames) of the recording, repeated as the others, with its default
sampling.

The readers' share: the integrator (the cheapest method, so what reading holds shows most) also
reads both recordings converted to ``--reader-formats`` (an ECD text folder, an EVREAL npy folder).

The naive peer, in the same run: the in-memory API ``lase_e2v.reconstruct`` (every frame kept as
one array) followed by ``write_frames``, what the command line did before it streamed, on the same
recordings for ``--materialised`` methods (FireNet by default).

    OMP_NUM_THREADS=1 python benchmarks/length.py [--methods firenet lase] [--repeats 10]
                                                  [--out benchmarks/results/length.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from lase_e2v.atomic import atomic_path
from lase_e2v.events.formats import convert, open_events
from lase_e2v.events.formats.hdf5 import write_hdf5
from lase_e2v.events.streams import EventStream, Frames
from lase_e2v.pipelines.registry import iter_methods

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA  # noqa: E402

RECORDING = SHARED_DATA / "ecd_slider_depth"
#: the materialised peer: the in-memory API, then the writer (what ``reconstruct`` did before streaming)
MATERIALISED = (
    "import sys, lase_e2v; from lase_e2v.pipelines.writers import write_frames; "
    "out = lase_e2v.reconstruct(sys.argv[1], method=sys.argv[3]); "
    "write_frames(sys.argv[2], out.frames, out.timestamps_us, out.frames_per_second)"
)
#: the streamed run: the command line (``python -m lase_e2v.cli``), its arguments after ``-c``
STREAMED = "import runpy; runpy.run_module('lase_e2v.cli', run_name='__main__')"
#: put before either: at exit, the process prints its own peak resident memory in KiB
#: (:func:`_common.peak_rss_bytes`; ``ru_maxrss`` would hide every peak below this process's size)
REPORT_PEAK = (
    f"import atexit, sys; sys.path.insert(0, {str(Path(__file__).resolve().parent)!r}); "
    "from _common import peak_rss_bytes; "
    "atexit.register(lambda: print('VmHWM', peak_rss_bytes() // 1024, file=sys.stderr)); "
)


def checkpoint_free_methods() -> list[str]:
    """Every registered method that runs on bundled weights or none (not E2VID's user checkpoint)."""
    return [spec.name for spec in iter_methods() if spec.weights != "checkpoint"]


def cut(events: EventStream, frames: Frames, seconds: float | None) -> tuple[EventStream, Frames]:
    """The first ``seconds`` of the recording (all of it for ``None``)."""
    if seconds is None:
        return events, frames
    end = int(min(events.t[0], frames.t_us[0]) + seconds * 1e6)
    keep = frames.t_us < end
    return events[: int(np.searchsorted(events.t, end))], Frames(frames.images[keep], frames.t_us[keep])


def write_repeated(path: Path, events: EventStream, frames: Frames, repeats: int, caption: str | None) -> None:
    """``events`` and ``frames`` ``repeats`` times back to back, each copy shifted by one period."""
    start = min(int(events.t[0]), int(frames.t_us[0]))
    period = max(int(events.t[-1]), int(frames.t_us[-1])) - start + int(np.median(np.diff(frames.t_us)))

    def copies():
        for k in range(repeats):
            yield EventStream(events.x, events.y, events.t + k * period, events.p, events.sensor_size)

    repeated = Frames(np.concatenate([frames.images] * repeats),
                      np.concatenate([frames.t_us + k * period for k in range(repeats)]))
    write_hdf5(path, copies(), repeated, attrs={"caption": caption} if caption else None)


def measure(code: str, arguments: list[str], env: dict[str, str]) -> dict:
    """Wall time, CPU time (user + system: what a shared machine disturbs least) and peak resident
    memory (:data:`REPORT_PEAK`) of ``python -c code arguments...``."""
    command = [sys.executable, "-c", REPORT_PEAK + code, *arguments]
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall_s = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    error = process.stderr.read().decode(errors="replace")
    process.stderr.close()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}): {error[-2000:]}")
    peak_kb = int(next(line.split()[1] for line in reversed(error.splitlines()) if line.startswith("VmHWM ")))
    return {"wall_s": wall_s, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mb": peak_kb / 1024}


def frame_count(path: Path) -> int:
    import h5py

    with h5py.File(path, "r") as file:
        return len(file["images"])


#: where a recording in each format goes, from its HDF5 file (``lase_e2v.convert``'s destinations)
FORMAT_PATHS = {"hdf5": "{stem}.h5", "text": "{stem}_ecd/events.txt", "evreal": "{stem}_evreal"}


def recording_path(workdir: Path, seconds: float | None, length: int, fmt: str, events: EventStream,
                   frames: Frames, caption: str | None) -> Path:
    """The recording (cut, repeated) in format ``fmt``, written on first use."""
    stem = f"slider_depth_{seconds}s_x{length}"
    hdf5 = workdir / FORMAT_PATHS["hdf5"].format(stem=stem)
    if not hdf5.exists():
        write_repeated(hdf5, *cut(events, frames, seconds), length, caption)
    path = workdir / FORMAT_PATHS[fmt].format(stem=stem)
    if not path.exists():
        convert(hdf5, path, progress=False)
    return path.parent if fmt == "text" else path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=checkpoint_free_methods())
    parser.add_argument("--materialised", nargs="*", default=["firenet"],
                        help="methods also run through the in-memory API (the naive peer)")
    parser.add_argument("--reader-formats", nargs="*", default=["text", "evreal"],
                        help="formats the integrator also reads the recordings in (the readers' share)")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--lase-seconds", type=float, default=0.8)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/length.json"))
    args = parser.parse_args()

    reader = open_events(RECORDING)
    events, frames, caption = reader.read(), reader.read_frames(), reader.caption
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    cases = [(method, run, "hdf5") for method in args.methods
             for run in ("streamed", "materialised") if run == "streamed" or method in args.materialised]
    cases += [("integrate", "streamed", fmt) for fmt in args.reader_formats]
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        workdir = Path(workdir)
        for method, run, fmt in cases:
            seconds = args.lase_seconds if method == "lase" else None
            for length in (1, args.repeats):
                recording = recording_path(workdir, seconds, length, fmt, events, frames, caption)
                output = workdir / f"{method}_{run}_{fmt}_x{length}.h5"
                if run == "streamed":
                    run_measured = STREAMED, ["reconstruct", str(recording), "-o", str(output), "--method", method]
                else:
                    run_measured = MATERIALISED, [str(recording), str(output), method]
                row = {"method": method, "run": run, "format": fmt, "length": length, "seconds_cut": seconds,
                       **measure(*run_measured, env), "frames": frame_count(output)}
                output.unlink()
                row["cpu_ms_per_frame"] = 1000 * row["cpu_s"] / row["frames"]
                rows.append(row)
                print(f"{method:13s} {run:12s} {fmt:6s} x{length:<3d} {row['frames']:5d} frames {row['wall_s']:7.1f} s "
                      f"wall {row['cpu_s']:7.1f} s CPU {row['cpu_ms_per_frame']:7.1f} ms/frame "
                      f"{row['peak_rss_mb']:7.0f} MB", flush=True)

    ratios = {}
    for method, run, fmt in cases:
        short, long = [r for r in rows if (r["method"], r["run"], r["format"]) == (method, run, fmt)]
        ratios[f"{method}/{run}" + ("" if fmt == "hdf5" else f" ({fmt})")] = {
            "peak_rss_mb": [short["peak_rss_mb"], long["peak_rss_mb"]],
            "rss_ratio": long["peak_rss_mb"] / short["peak_rss_mb"],
            "cpu_ms_per_frame": [short["cpu_ms_per_frame"], long["cpu_ms_per_frame"]],
            # the cost of the frames the longer run adds: the start (imports, weights) cancels out
            "marginal_cpu_ms_per_frame": 1000 * (long["cpu_s"] - short["cpu_s"]) / (long["frames"] - short["frames"]),
            "frame_ratio": long["frames"] / short["frames"],
        }
    print(f"\n{'method/run':28s} {'MB 1x':>6s} {'MB ' + str(args.repeats) + 'x':>7s} {'ratio':>6s} "
          f"{'ms/frame 1x':>11s} {str(args.repeats) + 'x':>6s} {'added':>6s}  (CPU time)")
    for name, ratio in ratios.items():
        print(f"{name:28s} {ratio['peak_rss_mb'][0]:6.0f} {ratio['peak_rss_mb'][1]:7.0f} {ratio['rss_ratio']:6.3f} "
              f"{ratio['cpu_ms_per_frame'][0]:11.1f} {ratio['cpu_ms_per_frame'][1]:6.1f} "
              f"{ratio['marginal_cpu_ms_per_frame']:6.1f}")
    results = {"recording": "ECD slider_depth (240x180) with APS frames, HDF5 unless the row names another format",
               "repeats": args.repeats, "lase_seconds": args.lase_seconds, "torch_threads": int(env["OMP_NUM_THREADS"]),
               "cpu_count": os.cpu_count(), "load_average_1min": os.getloadavg()[0], "rows": rows, "ratios": ratios}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out) as temporary:
        temporary.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
