"""Benchmark definitions (EVREAL's three axes as packaged JSON) and sequence resolution.

``configs/datasets/*.json`` name a dataset's sequences and each one's evaluation cut
(``start_time_s``/``end_time_s``, seconds from the recording's start), or name the split folders
(``sequence_folders``) whose every sequence is evaluated whole; ``configs/eval/*.json``
give the protocol (windowing, voxel bins, timestamp tolerance, warm-up, metrics). Either can also be
a path to a JSON file. Methods are the names of :mod:`lase_e2v.pipelines.registry`, or a JSON file
holding only what differs from a registered method's defaults (:func:`load_method_config`).

Data roots are always given by the user; a sequence ``name`` under ``root`` is found as, in order,
``root/name`` (an ECD or EVREAL folder, or any file :func:`~lase_e2v.events.formats.open_events`
reads), ``root/name.h5``, ``root/name.hdf5`` and the same for each alias of the name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from lase_e2v.errors import ConfigError, quoted
from lase_e2v.jsonfile import read_json_object
from lase_e2v.pipelines.registry import get_method, method_names
from lase_e2v.simulate.scenes import lighting_kind

SEQUENCE_SUFFIXES = ("", ".h5", ".hdf5", ".aedat4", ".bag", ".txt", ".zip")
_KINDS = ("datasets", "eval")


def _packaged(kind: str) -> dict[str, Path]:
    folder = resources.files("lase_e2v") / "evaluation" / "configs" / kind
    return {Path(str(item)).stem: Path(str(item)) for item in folder.iterdir() if item.name.endswith(".json")}


def available(kind: str) -> list[str]:
    """Names of the packaged definitions of ``kind`` ("datasets", "eval"), or the registered "methods"."""
    if kind == "methods":
        return method_names()
    if kind not in _KINDS:
        raise ConfigError(f"unknown definition kind {quoted(kind)}; use one of {', '.join(_KINDS)}, methods")
    return sorted(_packaged(kind))


def _read_definition(kind: str, name_or_path: str | Path) -> tuple[str, dict[str, Any]]:
    """``(key, JSON content)`` of a packaged definition (case-insensitive name) or a JSON file."""
    packaged = _packaged(kind)
    key = str(name_or_path).lower()
    if key in packaged:
        path = packaged[key]
    elif str(name_or_path).endswith(".json") and Path(name_or_path).is_file():
        path, key = Path(name_or_path), Path(name_or_path).stem
    else:
        raise ConfigError(
            f"{kind[:-1] if kind != 'eval' else 'eval'} definition {quoted(str(name_or_path))} not found; "
            f"packaged: {', '.join(sorted(packaged))} (or give a .json path)"
        )
    return key, read_json_object(path, f"{kind} definition")


#: ``--dataset`` name of a make-dataset folder (its manifest lists the sequences and their split)
SYNTHETIC = "synthetic"


@dataclass(frozen=True)
class SequenceSpec:
    """One sequence to evaluate: where it is and its evaluation cut (seconds from the recording start).

    ``group``: a label the report breaks its dataset down by (make-dataset folders: the scene's
    lighting kind, "normal", "dark", "bright" or "hdr"), so a change that wins on one kind of scene and
    loses on another shows as such instead of as one mean that depends on the folder's mix.
    """

    name: str
    path: Path
    dataset: str | None = None
    cut_s: tuple[float, float] | None = None
    group: str | None = None


@dataclass(frozen=True)
class DatasetDefinition:
    """A dataset's sequences: ``sequences[name] = (cut_s or None, aliases)``, or ``sequence_folders``:
    folders under the root whose every sequence (a file or folder, named by its stem) is evaluated whole."""

    key: str
    name: str
    sequences: dict[str, tuple[tuple[float, float] | None, tuple[str, ...]]]
    description: str = ""
    sequence_folders: tuple[str, ...] = ()

    def resolve(self, root: str | Path, names: list[str] | None = None) -> list[SequenceSpec]:
        """The sequences ``names`` (default: all) found under ``root``; raises listing any not found."""
        root = Path(root)
        if not root.is_dir():
            raise ConfigError(f"{root}: {self.name} data root is not a folder")
        if self.sequence_folders:
            return self._discover(root, names)
        names = list(self.sequences) if names is None else names
        unknown = [n for n in names if n not in self.sequences]
        if unknown:
            raise ConfigError(f"{self.name} has no sequence(s) {unknown}; known: {', '.join(self.sequences)}")
        specs, missing = [], []
        for name in names:
            cut, aliases = self.sequences[name]
            path = find_sequence(root, (name, *aliases))
            if path is None:
                missing.append(name)
            else:
                specs.append(SequenceSpec(name, path, self.name, cut))
        if missing:
            raise ConfigError(
                f"{root}: {self.name} sequence(s) not found: {', '.join(missing)} "
                f"(expected <root>/<name> as a folder or <name>.h5/.hdf5)"
            )
        return specs

    def _discover(self, root: Path, names: list[str] | None) -> list[SequenceSpec]:
        """Every sequence (a folder, or a file with an event suffix) in each ``root/<sequence folder>``,
        sorted by name, evaluated whole; ``names`` selects among them."""
        found: dict[str, Path] = {}
        for folder in self.sequence_folders:
            if not (root / folder).is_dir():
                raise ConfigError(f"{root}: {self.name} needs the folder {folder}/ holding its sequences")
            for path in sorted((root / folder).iterdir()):
                if path.name.startswith(".") or not (path.is_dir() or path.suffix in SEQUENCE_SUFFIXES[1:]):
                    continue
                stem = path.name if path.is_dir() else path.stem
                if stem in found:
                    raise ConfigError(f"{root}: {self.name} sequence {quoted(stem)} found twice: {found[stem]}, {path}")
                found[stem] = path
        if not found:
            raise ConfigError(f"{root}: no {self.name} sequences in {', '.join(self.sequence_folders)}")
        unknown = [n for n in names or [] if n not in found]
        if unknown:
            raise ConfigError(f"{root}: {self.name} has no sequence(s) {unknown}; found: {', '.join(found)}")
        return [SequenceSpec(name, found[name], self.name) for name in (names or found)]


def find_sequence(root: Path, names: tuple[str, ...]) -> Path | None:
    """First existing ``root/<name><suffix>`` over ``names`` x :data:`SEQUENCE_SUFFIXES`."""
    for name in names:
        for suffix in SEQUENCE_SUFFIXES:
            candidate = root / f"{name}{suffix}"
            if candidate.exists():
                return candidate
    return None


def load_dataset(name_or_path: str | Path) -> DatasetDefinition:
    """A dataset definition by packaged name (``ecd``, ``mvsec``, ``hqf``; any case) or JSON path."""
    key, content = _read_definition("datasets", name_or_path)
    sequences = content.get("sequences", {})
    folders = content.get("sequence_folders", [])
    valid_folders = isinstance(folders, list) and all(isinstance(f, str) and f for f in folders)
    if not isinstance(sequences, dict) or not valid_folders or bool(sequences) == bool(folders):
        raise ConfigError(f"dataset definition {quoted(str(name_or_path))}: give either 'sequences' (a non-empty "
                          "object) or 'sequence_folders' (a list of folders under the root)")
    parsed = {}
    for name, entry in sequences.items():
        start, end = entry.get("start_time_s"), entry.get("end_time_s")
        if (start is None) != (end is None) or (start is not None and not 0 <= start < end):
            raise ConfigError(
                f"dataset '{key}', sequence '{name}': need both start_time_s < end_time_s (>= 0) or neither"
            )
        cut = (float(start), float(end)) if start is not None else None
        parsed[name] = (cut, tuple(entry.get("aliases", ())))
    return DatasetDefinition(key, content.get("name", key), parsed, content.get("description", ""), tuple(folders))


def parse_dataset_spec(spec: str) -> tuple[DatasetDefinition, list[str] | None]:
    """``"ecd"`` -> all ECD sequences; ``"ecd/slider_depth,boxes_6dof"`` -> those sequences."""
    dataset_name, _, names = spec.partition("/")
    definition = load_dataset(dataset_name)
    selected = [n.strip() for n in names.split(",") if n.strip()] if names else None
    return definition, selected


def resolve_data(data: str | Path, dataset: str | None = None) -> list[SequenceSpec]:
    """What to evaluate, from the CLI's ``--data`` and ``--dataset``.

    * no ``dataset``: ``data`` is one sequence, evaluated whole;
    * ``dataset="ecd"`` (or ``"ecd/a,b"``): ``data`` is the dataset root holding the sequences;
    * ``dataset="ecd/slider_depth"`` and ``data`` *is* that sequence (not a root holding it):
      ``data`` is evaluated with that sequence's cut;
    * ``dataset="synthetic"`` (or ``"synthetic/train"``): ``data`` is a ``make-dataset`` folder; its
      held-out ``val`` (or ``train``) sequences are evaluated whole.
    """
    data = Path(data)
    if not data.exists():
        raise ConfigError(f"{data}: no such file or folder")
    if dataset is None:
        return [SequenceSpec(default_sequence_name(data), data)]
    if dataset.partition("/")[0] == SYNTHETIC:
        return synthetic_split(data, dataset.partition("/")[2] or "val")
    definition, selected = parse_dataset_spec(dataset)
    if selected is not None and len(selected) == 1 and selected[0] in definition.sequences:
        cut, aliases = definition.sequences[selected[0]]
        if not data.is_dir() or find_sequence(data, (selected[0], *aliases)) is None:
            return [SequenceSpec(selected[0], data, definition.name, cut)]
    return definition.resolve(data, selected)


#: seconds at the start of a synthetic sequence reconstructed but not scored (a third of shorter ones)
SYNTHETIC_WARMUP_S = 1.0


def synthetic_split(folder: Path, split: str) -> list[SequenceSpec]:
    """The ``split`` sequences listed in a ``make-dataset`` folder's ``manifest.json``, grouped by their
    scenes' lighting (:attr:`SequenceSpec.group`).

    Each is scored from ``min(SYNTHETIC_WARMUP_S, duration / 3)`` to its end: recurrent methods start
    from an empty state, and EVREAL's cuts of real recordings likewise leave them a second or more
    to settle before the first scored frame.
    """
    manifest = read_json_object(folder / "manifest.json", "make-dataset manifest")
    try:
        records = [record for record in manifest["sequences"] if record["split"] == split]
        files = [record["file"] for record in records]
        duration_s = float(manifest["duration_s"])
    except (KeyError, TypeError, ValueError) as error:
        raise ConfigError(f"{folder / 'manifest.json'}: needs duration_s and sequences with 'file' and 'split' "
                          f"({error})") from None
    if not files:
        raise ConfigError(f"{folder / 'manifest.json'}: no {quoted(split)} sequences")
    cut = (min(SYNTHETIC_WARMUP_S, duration_s / 3), duration_s)
    return [SequenceSpec(Path(name).stem, folder / name, SYNTHETIC, cut, lighting_kind(record))
            for name, record in zip(files, records)]


def default_sequence_name(path: Path) -> str:
    """A name for a sequence given by path: the folder or file stem (``x/events.txt`` -> ``x``)."""
    if path.is_dir():
        return path.name
    return path.parent.name if path.stem in ("events", "") else path.stem


#: how colour frames are scored (our convention): as gray (BT.601 luma, then the gray metrics) or in RGB
COLOR_SCORING = ("luma", "rgb")


@dataclass(frozen=True)
class EvalConfig:
    """The protocol: EVREAL's ``between_frames`` windows, voxel bins, time tolerance, warm-up, metrics,
    and how colour frames are scored (``color_scoring``, :data:`COLOR_SCORING`)."""

    name: str = "std"
    num_bins: int = 5
    ts_tol_ms: float = 1.0
    warmup_s: float = 10.0
    metrics: tuple[str, ...] = ("mse", "ssim", "lpips")
    window: str = "between_frames"
    color_scoring: str = "luma"

    def __post_init__(self) -> None:
        if self.color_scoring not in COLOR_SCORING:
            raise ConfigError(f"eval config '{self.name}': color_scoring '{self.color_scoring}' unknown; "
                              f"use one of {', '.join(COLOR_SCORING)}")
        if self.window != "between_frames":
            raise ConfigError(
                f"eval config '{self.name}': window '{self.window}' unsupported; use between_frames"
            )
        if self.num_bins < 1 or self.ts_tol_ms < 0 or self.warmup_s < 0:
            raise ConfigError(f"eval config '{self.name}': need num_bins >= 1, ts_tol_ms >= 0, warmup_s >= 0")


def load_eval_config(name_or_path: str | Path = "std") -> EvalConfig:
    key, content = _read_definition("eval", name_or_path)
    known = {"name", "description", "window", "num_bins", "ts_tol_ms", "warmup_s", "metrics", "color_scoring"}
    unknown = sorted(set(content) - known)
    if unknown:
        raise ConfigError(f"eval config '{key}': unknown key(s) {unknown}")
    content = {k: v for k, v in content.items() if k != "description"}
    content.setdefault("name", key)
    if "metrics" in content:
        content["metrics"] = tuple(content["metrics"])
    return EvalConfig(**content)


@dataclass(frozen=True)
class MethodConfig:
    """A method to benchmark: ``name`` (display), ``method`` (a registered name), its ``options`` and
    ``checkpoint`` (``None``: the method's default weights)."""

    name: str
    method: str
    options: dict[str, Any] = field(default_factory=dict)
    checkpoint: str | None = None


#: keys of a method JSON; all but ``method`` default to the registered method's values
METHOD_KEYS = ("name", "method", "options", "checkpoint")


def load_method_config(name_or_path: str | Path) -> MethodConfig:
    """A registered method by name (``firenet``...) or a JSON file holding only what differs from it.

    A method JSON names the registered ``method`` and any of ``name`` (display name, default the
    method's), ``options`` (checked against the method's options now, before any work) and
    ``checkpoint``, e.g. ``{"method": "lase", "name": "LaSe-E2V 1 sample", "options": {"num_samples": 1}}``.
    """
    if not str(name_or_path).endswith(".json"):
        spec = get_method(str(name_or_path))
        return MethodConfig(name=spec.display_name, method=spec.name)
    path = Path(name_or_path)
    content = read_json_object(path, "method definition")
    unknown = sorted(set(content) - set(METHOD_KEYS))
    if unknown or "method" not in content:
        raise ConfigError(
            f"{path}: a method definition needs 'method' (a registered name) and may set name, options, "
            "checkpoint" + (f"; unknown key(s) {unknown}" if unknown else "")
        )
    spec = get_method(content["method"])
    options = content.get("options", {})
    if not isinstance(options, dict):
        raise ConfigError(f"{path}: 'options' must be a JSON object")
    spec.check_options(options)
    return MethodConfig(
        name=content.get("name", spec.display_name),
        method=spec.name,
        options=dict(options),
        checkpoint=content.get("checkpoint"),
    )
