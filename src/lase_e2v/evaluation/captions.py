"""Caption sources as benchmark rows: what language adds, and which captioner serves best.

``lase-e2v benchmark --caption stored,empty,other,auto --captioner BLIP --captioner TAGGER`` scores
every text-conditioned method once per caption source (:mod:`lase_e2v.pipelines.captions`):

* ``stored`` — each recording's own caption (the default, the only row without ``--caption``);
* ``empty`` — no text;
* ``other`` — another recording's caption (the next one in evaluation order with a different
  caption, wrapping around; deterministic);
* ``auto`` — generated from a first FireNet+ reconstruction, once per ``--captioner`` (a BLIP-style
  sentence captioner and a RAM-style tagger side by side: the paper's BLIP-vs-RAM comparison).

Rows are named ``<method> [<source>]`` (``LaSe-E2V [auto: blip-base]``, after the captioner's folder).
Methods that read no text get one row whatever the sources, since their frames would not change.
Everything is checked, and the captioners loaded, before any sequence is reconstructed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from lase_e2v.errors import ConfigError
from lase_e2v.evaluation.benchmark import PipelineFactory, method_factories
from lase_e2v.evaluation.datasets import SequenceSpec, load_method_config
from lase_e2v.pipelines.captions import (
    EVALUATION_SOURCES,
    CaptionedPipeline,
    CaptionSource,
    build_caption_source,
    check_caption_source,
    reads_text,
)

#: row label of each source (``auto`` adds the captioner's name)
SOURCE_LABELS = {"stored": "stored caption", "empty": "no caption", "other": "other scene's caption"}
#: ``on_caption(row, stored, text)``: the text a row gave one recording
CaptionLog = Callable[[str, str | None, str | None], None]


def parse_caption_sources(text: str) -> list[str]:
    """``"stored,auto"`` -> ``["stored", "auto"]``; unknown or repeated sources are refused."""
    sources = [s.strip() for s in text.split(",") if s.strip()]
    if not sources:
        raise ConfigError("--caption is empty; give stored, empty, other and/or auto")
    if len(set(sources)) != len(sources):
        raise ConfigError(f"--caption names a source twice: {text}")
    return sources


def stored_captions(sequences: Sequence[SequenceSpec]) -> list[str]:
    """Each sequence's stored caption, in order; a sequence without one is a :class:`ConfigError`."""
    from lase_e2v.events.formats import open_events

    captions = []
    for spec in sequences:
        caption = open_events(spec.path).caption
        if not caption:
            raise ConfigError(f"caption source 'other' needs each sequence's stored caption; {spec.name} has none")
        captions.append(caption)
    return captions


def caption_sources(
    sources: Sequence[str], captioners: Sequence[str | Path], sequences: Sequence[SequenceSpec], device: str = "cpu"
) -> dict[str, CaptionSource]:
    """Row label -> caption source; ``auto`` gives one per captioner (each loaded here, once)."""
    built: dict[str, CaptionSource] = {}
    for source in sources:
        if source == "auto":
            for path in captioners:
                built[f"auto: {Path(path).name}"] = build_caption_source(source, path, device)
        else:
            captions = stored_captions(sequences) if source == "other" else ()
            built[SOURCE_LABELS[source]] = build_caption_source(source, captions=captions)
    return built


def caption_factories(
    methods: Sequence[str],
    sources: Sequence[str],
    captioners: Sequence[str | Path],
    sequences: Sequence[SequenceSpec],
    checkpoints: dict[str, str | Path] | None = None,
    device: str = "cpu",
    on_caption: CaptionLog | None = None,
) -> dict[str, PipelineFactory]:
    """Row name -> pipeline factory: each text-conditioned method once per caption source (module
    docstring), the others once. ``methods`` as for :func:`~lase_e2v.evaluation.benchmark.method_factories`;
    ``sequences``: what will be evaluated (``other`` chooses among their captions)."""
    factories = method_factories(methods, checkpoints, device)
    if list(sources) == ["stored"] and on_caption is None:
        return factories
    configs = [load_method_config(method) for method in methods]
    reading = [reads_text(config.method) for config in configs]
    for source in sources:
        for config in [c for c, r in zip(configs, reading) if r] or configs[:1]:
            check_caption_source(source, config.method, captioners, config.options.get("prompt"),
                                 allowed=EVALUATION_SOURCES)
    built = caption_sources(sources, captioners, sequences, device) if any(reading) else {}
    rows: dict[str, PipelineFactory] = {}
    for reads, (name, factory) in zip(reading, factories.items()):
        if not reads:
            rows[name] = factory
            continue
        for label, source in built.items():
            row = f"{name} [{label}]"
            rows[row] = _captioned(factory, source, row, on_caption)
    return rows


def _captioned(factory: PipelineFactory, source: CaptionSource, row: str, on_caption: CaptionLog | None
               ) -> PipelineFactory:
    def build() -> CaptionedPipeline:
        log = (lambda stored, text: on_caption(row, stored, text)) if on_caption else None
        return CaptionedPipeline(factory(), source, log)

    return build
