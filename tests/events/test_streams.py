"""EventStream / Frames: dtypes, validation messages, slicing, concatenation."""

from __future__ import annotations

import numpy as np
import pytest

from lase_e2v.errors import EventDataError
from lase_e2v.events.streams import EVENT_DTYPE, EventStream, Frames, concatenate, polarity_to_signed


def _stream(t=(1, 2, 3, 5), size=(4, 6)):
    n = len(t)
    return EventStream(
        np.arange(n) % size[1], np.arange(n) % size[0], t, [1, 0] * (n // 2) + [1] * (n % 2), size
    )


def test_dtypes_and_polarity():
    stream = _stream()
    assert (stream.x.dtype, stream.y.dtype, stream.t.dtype, stream.p.dtype) == (
        np.uint16,
        np.uint16,
        np.int64,
        np.int8,
    )
    assert stream.p.tolist() == [1, -1, 1, -1]
    assert polarity_to_signed(np.array([True, False])).tolist() == [1, -1]
    signed = np.array([1, -1], np.int8)
    assert polarity_to_signed(signed) is signed  # already right: not copied


def test_lengths_must_agree():
    with pytest.raises(EventDataError, match="differ in length"):
        EventStream([1, 2], [1], [1, 2], [1, 1], (4, 4))


@pytest.mark.parametrize(
    "t, x, message",
    [
        ((1, 3, 2), (0, 0, 0), "timestamps decrease at event 12 \\(3 -> 2 us\\)"),
        ((-5, 1, 2), (0, 0, 0), "negative timestamp -5 us at event 10"),
        ((1, 2, 3), (0, 6, 0), "x=6 at event 11 is outside the 6x4 sensor"),
    ],
)
def test_validate_messages(t, x, message):
    stream = EventStream(x, [0, 0, 0], t, [1, 1, 1], (4, 6))
    with pytest.raises(EventDataError, match=message):
        stream.validate("f.txt", index_offset=10)


def test_time_slice_is_half_open_view():
    stream = _stream((1, 2, 3, 5, 8, 13))
    part = stream.time_slice(2, 8)
    assert part.t.tolist() == [2, 3, 5]
    assert np.shares_memory(part.t, stream.t)
    assert stream.duration_us == 12 and len(EventStream.empty((2, 2))) == 0


def test_structured_roundtrip():
    stream = _stream()
    structured = stream.to_structured()
    assert structured.dtype == EVENT_DTYPE
    back = EventStream.from_structured(structured, stream.sensor_size)
    assert back.t.tolist() == stream.t.tolist() and back.p.tolist() == stream.p.tolist()
    with pytest.raises(EventDataError, match="lack field"):
        EventStream.from_structured(np.zeros(2, [("t", "i8")]), (2, 2))


def test_concatenate():
    joined = concatenate([_stream((1, 2)), _stream((3, 4))])
    assert joined.t.tolist() == [1, 2, 3, 4]
    with pytest.raises(EventDataError, match="different sensor sizes"):
        concatenate([_stream((1, 2)), _stream((3, 4), size=(5, 5))])
    with pytest.raises(EventDataError, match="nothing to concatenate"):
        concatenate([])


def test_frames():
    frames = Frames(np.full((2, 2, 3), 255, np.uint8), [10, 20])
    assert frames.as_float().max() == 1.0 and frames.as_float().dtype == np.float32
    with pytest.raises(EventDataError, match="timestamps decrease"):
        Frames(np.zeros((2, 2, 3)), [20, 10])
    with pytest.raises(EventDataError, match="expected images"):
        Frames(np.zeros((2, 3)), [1, 2])
