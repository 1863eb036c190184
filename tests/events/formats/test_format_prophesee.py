"""Prophesee RAW EVT 2.0 / 3.0 against the reference decodings in shared/data/prophesee."""

from __future__ import annotations

import numpy as np
import pytest

from lase_e2v.errors import EventFormatError
from lase_e2v.events.formats import open_events
from lase_e2v.events.formats.prophesee import Evt2Reader, Evt3Reader, read_raw_header


@pytest.mark.parametrize(
    "raw, reference, reader_type, count, size",
    [
        ("evt2_sample.raw", "evt2_sample_decoded.npy", Evt2Reader, 539_481, (480, 640)),
        ("evt3_sample.raw", "evt3_sample_openeb_decoded.npy", Evt3Reader, 219_596, (720, 1280)),
    ],
)
def test_matches_reference_decoding(shared_dir, raw, reference, reader_type, count, size):
    folder = shared_dir / "data" / "prophesee"
    reader = open_events(folder / raw)
    assert isinstance(reader, reader_type)
    events = reader.read()
    expected = np.load(folder / reference)
    assert len(events) == count and reader.sensor_size == size
    np.testing.assert_array_equal(events.t, expected["t"])
    np.testing.assert_array_equal(events.x, expected["x"])
    np.testing.assert_array_equal(events.y, expected["y"])
    np.testing.assert_array_equal(events.p, np.where(expected["p"] > 0, 1, -1))


def test_header_geometry_and_version():
    header = read_raw_header(b"% evt 3.0\n% format EVT3;height=720;width=1280\n% end\n\x00\x01")
    assert header == {"evt": "3.0", "format": "EVT3;height=720;width=1280"}


def test_forcing_the_wrong_version_is_a_format_error(shared_dir):
    with pytest.raises(EventFormatError, match="header says EVT 3.0; expected EVT 2.0"):
        open_events(shared_dir / "data" / "prophesee" / "evt3_sample.raw", format="evt2")


def test_geometry_line_sets_sensor_size(tmp_path, shared_dir):
    data = (shared_dir / "data" / "prophesee" / "evt3_sample.raw").read_bytes()
    (tmp_path / "g.raw").write_bytes(b"% geometry 1280x800\n" + data)
    assert open_events(tmp_path / "g.raw").sensor_size == (800, 1280)
