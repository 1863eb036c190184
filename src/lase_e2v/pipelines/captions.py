"""Where the text of a text-conditioned reconstruction comes from: ``--caption stored | auto | empty | other``.

A recording's caption reaches a pipeline as the ``caption`` argument of
:meth:`~lase_e2v.pipelines.output.ReconstructionPipeline.iter_frames`; by default it is the
recording's *stored* caption (HDF5 ``caption`` attribute, ECD ``caption.txt``).
:class:`CaptionedPipeline` wraps any pipeline and replaces that argument, recording by recording,
with what a caption source gives:

* :class:`AutoCaption` (``auto``): the LaSe-E2V paper captions scenes with an off-the-shelf model;
  here a fast peer (FireNet+ by default, with display post-processing, so the frame looks like a
  photo) reconstructs the recording's first ``duration_s`` (1 s) of windows and a local captioner
  (:func:`~lase_e2v.models.captioner.load_captioner`: BLIP-style sentences or RAM-style tags)
  describes the *last* of those frames: a recurrent peer starts from an empty state and its frames
  fill in as events arrive, so the last frame of the first second is the most complete;
* :class:`EmptyCaption` (``empty``): no text (the unconditional branch, as the caption dropout of
  training), what the model does from events alone;
* :class:`OtherCaption` (``other``): a wrong caption, another recording's, for ablations: each
  recording gets the caption of the next one in a given list (wrapping around) whose caption
  differs from its own, so the choice is deterministic.

The wrapped pipeline's own prompt option still wins over the caption (LaSe-E2V's ``prompt``), as
with a stored caption; the command line refuses ``--prompt`` together with another caption source.
The text given to each recording is reported to ``on_caption(stored, used)`` (the API returns it
and writes it into the output's metadata).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from lase_e2v.errors import ConfigError, quoted
from lase_e2v.events.windows import Window
from lase_e2v.pipelines.output import ReconstructedFrame, ReconstructionPipeline

if TYPE_CHECKING:
    from lase_e2v.models.captioner import Captioner

#: ``--caption`` of one recording: its own caption, a generated one, none
RECORDING_SOURCES = ("stored", "auto", "empty")
#: ``--caption`` of an evaluation over several recordings adds another recording's caption
EVALUATION_SOURCES = (*RECORDING_SOURCES, "other")
#: the peer that makes the frames ``auto`` captions: among the fastest bundled ones, with good frames
DEFAULT_CAPTION_PEER = "firenet_plus"
#: seconds of a recording's start reconstructed for its automatic caption
AUTO_CAPTION_SECONDS = 1.0


class CaptionSource(Protocol):
    """Gives a recording's text from its stored caption and its first ``lookahead_s`` of windows."""

    #: seconds of windows from the recording's start the source needs (0: none)
    lookahead_s: float

    def __call__(self, stored: str | None, first_windows: Sequence[Window]) -> str | None: ...


class StoredCaption:
    """The recording's own caption (``None`` when it has none)."""

    lookahead_s = 0.0

    def __call__(self, stored: str | None, first_windows: Sequence[Window]) -> str | None:
        return stored


class EmptyCaption:
    """No text: the unconditional branch."""

    lookahead_s = 0.0

    def __call__(self, stored: str | None, first_windows: Sequence[Window]) -> str:
        return ""


class OtherCaption:
    """Another recording's caption: the next caption in ``captions`` (wrapping around) that differs
    from the recording's own. ``captions`` lists the stored captions of the evaluated recordings in
    evaluation order; at least two must differ."""

    lookahead_s = 0.0

    def __init__(self, captions: Sequence[str]) -> None:
        distinct = list(dict.fromkeys(captions))
        if len(distinct) < 2:
            raise ConfigError("caption source 'other' needs at least two recordings with different stored captions")
        self.others = {caption: distinct[(i + 1) % len(distinct)] for i, caption in enumerate(distinct)}

    def __call__(self, stored: str | None, first_windows: Sequence[Window]) -> str:
        if stored not in self.others:
            raise ConfigError(f"caption source 'other': the stored caption {quoted(stored)} is not among the "
                              "recordings it was built for")
        return self.others[stored]


class AutoCaption:
    """Captions the last frame ``peer`` reconstructs from the first ``duration_s`` of windows."""

    def __init__(self, captioner: Captioner, peer: ReconstructionPipeline,
                 duration_s: float = AUTO_CAPTION_SECONDS) -> None:
        if duration_s <= 0:
            raise ConfigError(f"automatic caption duration must be > 0 s, got {duration_s}")
        self.captioner = captioner
        self.peer = peer
        self.lookahead_s = duration_s

    def __call__(self, stored: str | None, first_windows: Sequence[Window]) -> str:
        if not first_windows:
            raise ConfigError("automatic caption: the recording has no windows to reconstruct")
        self.peer.reset()
        last = deque(self.peer.iter_frames(first_windows), maxlen=1)[0]
        self.peer.reset()
        return self.captioner([last.image])[0]


def first_windows(windows: Iterator[Window], duration_s: float) -> list[Window]:
    """Windows from ``windows`` until one ends ``duration_s`` or more after the first one starts
    (at least one window when there is any); the rest stay in the iterator."""
    taken: list[Window] = []
    for window in windows:
        taken.append(window)
        if window.t_end_us - taken[0].t_start_us >= duration_s * 1e6:
            break
    return taken


class CaptionedPipeline(ReconstructionPipeline):
    """``pipeline`` with each recording's caption replaced by what ``source`` gives.

    Holds at most ``source.lookahead_s`` of windows (the automatic caption's first second), then
    streams, so memory stays bounded in the recording's length.

    Args:
        pipeline: any :class:`ReconstructionPipeline`.
        source: a :class:`CaptionSource` (:class:`AutoCaption`, :class:`EmptyCaption`, :class:`OtherCaption`).
        on_caption: called once per recording with ``(stored caption, text given to the pipeline)``.
    """

    def __init__(self, pipeline: ReconstructionPipeline, source: CaptionSource,
                 on_caption: Callable[[str | None, str | None], None] | None = None) -> None:
        self.pipeline = pipeline
        self.source = source
        self.on_caption = on_caption
        self.name = pipeline.name

    @property
    def num_bins(self) -> int | None:
        return self.pipeline.num_bins

    def reset(self) -> None:
        self.pipeline.reset()

    def iter_frames(
        self, windows: Iterable[Window], caption: str | None = None, progress: bool = False
    ) -> Iterator[ReconstructedFrame]:
        """The wrapped pipeline's frames, given ``source``'s text instead of ``caption``."""
        windows = iter(windows)
        ahead = first_windows(windows, self.source.lookahead_s) if self.source.lookahead_s > 0 else []
        text = self.source(caption, ahead)
        if self.on_caption is not None:
            self.on_caption(caption, text)
        yield from self.pipeline.iter_frames(chain(ahead, windows), caption=text, progress=progress)


def reads_text(method: str) -> bool:
    """Whether the registered ``method`` is conditioned on text (its options include a ``prompt``)."""
    from lase_e2v.pipelines.registry import get_method

    return "prompt" in get_method(method).defaults()


def check_caption_source(source: str, method: str, captioners: Sequence[str | Path] = (),
                         prompt: str | None = None, allowed: Sequence[str] = RECORDING_SOURCES) -> None:
    """Refuse, before any work, a caption source that is unknown, that ``method`` cannot use (it reads
    no text), that a ``prompt`` would override, or that lacks what it needs (``auto``: a captioner)."""
    from lase_e2v.pipelines.registry import method_names

    if source not in allowed:
        raise ConfigError(f"unknown caption source {quoted(source)}; choose from {', '.join(allowed)}")
    if source == "stored":
        return
    if not reads_text(method):
        readers = ", ".join(name for name in method_names() if reads_text(name))
        raise ConfigError(f"--caption {source}: method '{method}' reads no text (text-conditioned: {readers})")
    if prompt:
        raise ConfigError(f"--prompt and --caption {source} both give the text; use one of them")
    if source == "auto" and not captioners:
        raise ConfigError("--caption auto needs --captioner PATH: a local image-captioning model folder "
                          "(a BLIP-style transformers snapshot, or an image tagger)")


def build_caption_source(source: str, captioner: str | Path | None = None, device: str = "cpu",
                         captions: Sequence[str] = ()) -> CaptionSource:
    """The :class:`CaptionSource` named ``source`` (checked by :func:`check_caption_source`).
    ``captioner``: the model folder of ``auto``; ``captions``: the stored captions ``other`` chooses from."""
    if source == "stored":
        return StoredCaption()
    if source == "empty":
        return EmptyCaption()
    if source == "other":
        return OtherCaption(captions)
    return auto_caption(captioner, device)


def auto_caption(captioner: str | Path, device: str = "cpu", peer: str = DEFAULT_CAPTION_PEER,
                 duration_s: float = AUTO_CAPTION_SECONDS) -> AutoCaption:
    """An :class:`AutoCaption` from a captioner folder and a registered peer method name."""
    from lase_e2v.models.captioner import load_captioner
    from lase_e2v.pipelines.registry import load_method

    return AutoCaption(load_captioner(captioner, device), load_method(peer, None, device, postprocess=True),
                       duration_s)
