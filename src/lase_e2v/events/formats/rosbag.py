"""ROS1 and ROS2 bags (ECD, MVSEC, CED are distributed this way): events and APS frames.

Opened with the ``rosbags`` package (Apache-2.0, pure Python): ROS1 ``.bag`` files (v2.0) and ROS2
bags (a folder with ``metadata.yaml``, or one ``.mcap``/``.db3`` storage file).

* **Events**: ``dvs_msgs/EventArray`` (rpg_dvs_ros: ECD, MVSEC, CED) and its copy
  ``prophesee_event_msgs/EventArray`` (same fields). The event topic is the first such topic by
  name (MVSEC's ``/davis/left/events`` before ``/davis/right/events``) unless ``topic=`` names one.
* **Frames**: ``sensor_msgs/Image`` in the event topic's namespace (``/dvs/events`` ->
  ``/dvs/image_raw``; ``image_raw`` preferred when there are several), else the only image topic of
  the bag. ``mono8``/``8UC1`` stay uint8, ``mono16``/``16UC1`` uint16; colour frames stay colour
  (RGB), ``bayer_*`` frames are demosaiced to RGB. A frame's time is its ``header.stamp``.
* **Colour** (CED's Color-DAVIS346): when an image topic in the event topic's namespace carries a
  colour or Bayer encoding, the bag is a colour camera's (:attr:`RosbagReader.color_filter`) and that
  topic gives the frames.
* **Time**: each event's ``ts`` (ROS time, nanoseconds) rounded to the nearest microsecond, kept
  absolute as the bag has it. Sensor size: the messages' ``height``/``width``, else the frames'.

Why events are not decoded with ``rosbags``' own deserializer: it builds one Python object per event,
so reading slider_depth that way runs at 0.09-0.12 M events/s (an MVSEC bag of 10^8 events would
take a quarter of an hour). The ``EventArray`` layout is fixed, so its events are read with numpy
from the message bytes instead: 14.6 M events/s from a ROS1 bag, 6.6 from ROS2 mcap, 69-117x
faster (``benchmarks/ros_bags.py``). The bag's own message definition is checked against the
expected one first, and the tests check both decoders agree. Frames (a few per second) go through
``rosbags``.

``dvs_msgs`` is not a standard ROS type: :func:`event_typestore` registers it from its ``.msg``
definition, for bags that carry no definitions (old ROS2 sqlite bags) and for writing bags.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

import numpy as np

from lase_e2v.errors import EventFormatError, quoted
from lase_e2v.events.color import BAYER_PATTERNS, DEFAULT_PATTERN, SITE_OFFSETS, check_pattern, demosaic
from lase_e2v.events.formats.base import EventReader, check_sensor_size, group_packets
from lase_e2v.events.streams import EventStream, Frames

#: rpg_dvs_ros ``dvs_msgs/msg/Event.msg`` and ``EventArray.msg`` (ROS1 md5 5e8beee5a6c107e504c2e78903c224b8)
EVENT_MSG = "uint16 x\nuint16 y\ntime ts\nbool polarity\n"
EVENT_ARRAY_MSG = "std_msgs/Header header\nuint32 height\nuint32 width\nEvent[] events\n"
EVENT_ARRAY_TYPES = ("dvs_msgs/msg/EventArray", "prophesee_event_msgs/msg/EventArray")
IMAGE_TYPE = "sensor_msgs/msg/Image"

ROS1_MAGIC = b"#ROSBAG V2.0\n"
MCAP_MAGIC = b"\x89MCAP0\r\n"
SQLITE_MAGIC = b"SQLite format 3\x00"

#: one event as ROS1 serializes it: packed, 13 bytes
_ROS1_EVENT = np.dtype([("x", "<u2"), ("y", "<u2"), ("sec", "<u4"), ("nsec", "<u4"), ("polarity", "u1")])
#: CDR aligns each field to its size from the 4-aligned start of the array: the first event is
#: x y sec nsec polarity (14 bytes with the padding before the next x), every later one starts at
#: 2 mod 4 and has 2 padding bytes before ``sec`` (16 bytes).
_CDR_FIRST_EVENT = np.dtype(
    {"names": ["x", "y", "sec", "nsec", "polarity"], "formats": ["<u2", "<u2", "<i4", "<u4", "u1"],
     "offsets": [0, 2, 4, 8, 12], "itemsize": 14}
)
_CDR_EVENT = np.dtype(
    {"names": ["x", "y", "sec", "nsec", "polarity"], "formats": ["<u2", "<u2", "<i4", "<u4", "u1"],
     "offsets": [0, 2, 6, 10, 14], "itemsize": 16}
)
_EXPECTED_EVENT_FIELDS = [
    ("x", "uint16"), ("y", "uint16"), ("ts", "builtin_interfaces/msg/Time"), ("polarity", "bool")
]
_EXPECTED_ARRAY_FIELDS = [
    ("header", "std_msgs/msg/Header"), ("height", "uint32"), ("width", "uint32"), ("events", "[]")
]


def event_typestore(store: str = "ros2_humble"):
    """A ``rosbags`` typestore with the standard types of ``store`` (a ``rosbags.typesys.Stores``
    value such as ``"ros1_noetic"``) plus ``dvs_msgs`` and ``prophesee_event_msgs``."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    typestore = get_typestore(Stores(store))
    types = {}
    for package in ("dvs_msgs", "prophesee_event_msgs"):
        types.update(get_types_from_msg(EVENT_MSG, f"{package}/msg/Event"))
        types.update(get_types_from_msg(EVENT_ARRAY_MSG.replace("Event[]", f"{package}/Event[]"),
                                        f"{package}/msg/EventArray"))
    typestore.register(types)
    return typestore


def _bag_errors() -> tuple[type[BaseException], ...]:
    """What ``rosbags`` and its storage back ends raise on a damaged or foreign file."""
    import apsw
    from rosbags.highlevel import AnyReaderError
    from rosbags.rosbag1 import ReaderError as Ros1Error
    from rosbags.rosbag2 import ReaderError as Ros2Error
    from rosbags.serde import SerdeError
    from rosbags.typesys import TypesysError

    return (AnyReaderError, Ros1Error, Ros2Error, SerdeError, TypesysError, apsw.Error, struct.error,
            EOFError, ValueError)


@contextmanager
def _translated(path: Path, what: str) -> Iterator[None]:
    """Turn whatever a damaged bag makes ``rosbags`` raise into one :class:`EventFormatError`."""
    try:
        yield
    except EventFormatError:
        raise
    except _bag_errors() as error:
        detail = str(error) or type(error).__name__
        raise EventFormatError(f"{path}: {what} ({detail})") from None


def _field_types(typestore, msgtype: str) -> list[tuple[str, str]]:
    """``(name, type)`` of a message's fields; sequences are ``[]``, nested messages their name."""
    fields = []
    for name, (node, detail) in typestore.fielddefs[msgtype][1]:
        kind = getattr(node, "name", str(node))
        if kind == "BASE":
            fields.append((name, detail[0]))
        elif kind == "NAME":
            fields.append((name, detail))
        else:
            fields.append((name, "[]"))
    return fields


def _to_microseconds(sec: np.ndarray, nsec: np.ndarray) -> np.ndarray:
    """ROS time -> int64 microseconds, nanoseconds rounded half up."""
    return sec.astype(np.int64) * 1_000_000 + (nsec.astype(np.int64) + 500) // 1000


def _u32(buffer: bytes | memoryview, offset: int) -> int:
    return int.from_bytes(buffer[offset : offset + 4], "little")


def decode_event_array(
    raw: bytes | memoryview, cdr: bool
) -> tuple[tuple[int, int], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``((height, width), x, y, t_us, polarity)`` of one serialized ``EventArray`` message.

    ``cdr``: ROS2 (CDR, little endian) rather than ROS1 serialization. Raises ``ValueError`` when the
    bytes do not hold what the header says.
    """
    if cdr:
        if bytes(raw[:2]) != b"\x00\x01":
            raise ValueError("only little-endian CDR messages are supported")
        body = bytes(raw[4:]) + b"\x00"  # a copy with the padding the last event lacks
        offset = 8 + 4 + _u32(body, 8)  # stamp, frame_id
        offset += -offset % 4
    else:
        body = memoryview(raw)
        offset = 4 + 8 + 4 + _u32(body, 12)  # seq, stamp, frame_id
    height, width, count = (_u32(body, offset + 4 * i) for i in range(3))
    offset += 12
    if not count:
        events = np.zeros(0, _ROS1_EVENT)
    elif not cdr:
        events = np.frombuffer(body, _ROS1_EVENT, count, offset)
    else:
        events = np.concatenate([
            np.frombuffer(body, _CDR_FIRST_EVENT, 1, offset).astype(_ROS1_EVENT),
            np.frombuffer(body, _CDR_EVENT, count - 1, offset + _CDR_FIRST_EVENT.itemsize)
            .astype(_ROS1_EVENT),
        ])
    t_us = _to_microseconds(events["sec"], events["nsec"])
    return (height, width), events["x"], events["y"], t_us, events["polarity"]


def _starts_with(path: Path, magic: bytes) -> bool:
    with open(path, "rb") as handle:
        return handle.read(len(magic)) == magic


def _namespace(topic: str) -> str:
    return str(PurePosixPath(topic).parent)


def choose_event_topic(topics: dict[str, str | None], topic: str | None, path: Path) -> str:
    """The event topic: ``topic`` if given (checked), else the first ``EventArray`` topic by name."""
    listing = ", ".join(f"{name} ({msgtype})" for name, msgtype in sorted(topics.items())) or "none"
    if topic is not None:
        if topic not in topics:
            raise EventFormatError(f"{path}: no topic {quoted(topic)}; topics: {listing}")
        if topics[topic] not in EVENT_ARRAY_TYPES:
            raise EventFormatError(
                f"{path}: topic '{topic}' has message type {topics[topic]}, which is not an event type "
                f"lase-e2v reads ({', '.join(EVENT_ARRAY_TYPES)})"
            )
        return topic
    events = sorted(name for name, msgtype in topics.items() if msgtype in EVENT_ARRAY_TYPES)
    if not events:
        raise EventFormatError(
            f"{path}: no event topic (message type {' or '.join(EVENT_ARRAY_TYPES)}); topics: {listing}"
        )
    return events[0]


def choose_frame_topic(topics: dict[str, str | None], event_topic: str) -> str | None:
    """The APS frame topic for ``event_topic`` (see the module docstring), or ``None``."""
    images = sorted(name for name, msgtype in topics.items() if msgtype == IMAGE_TYPE)
    near = [name for name in images if _namespace(name) == _namespace(event_topic)]
    if len(near) > 1:
        near = [name for name in near if PurePosixPath(name).name == "image_raw"] or near[:1]
    if near:
        return near[0]
    return images[0] if len(images) == 1 else None


#: ``sensor_msgs/Image`` encodings read: (item type, channels)
IMAGE_ENCODINGS = {"mono8": ("u1", 1), "8uc1": ("u1", 1), "mono16": ("u2", 1), "16uc1": ("u2", 1),
                   "rgb8": ("u1", 3), "bgr8": ("u1", 3), "rgba8": ("u1", 4), "bgra8": ("u1", 4),
                   **{f"bayer_{p.lower()}{bits}": ("u1" if bits == 8 else "u2", 1)
                      for p in BAYER_PATTERNS for bits in (8, 16)}}


def encoding_color_filter(encoding: str) -> str | None:
    """The camera's Bayer pattern an image encoding tells: its own for ``bayer_*``, the default
    (:data:`~lase_e2v.events.color.DEFAULT_PATTERN`, the Color-DAVIS346 as E2VID splits CED) for
    colour encodings, ``None`` for gray ones."""
    encoding = encoding.lower()
    if encoding.startswith("bayer_"):
        return check_pattern(encoding[6:10])
    return DEFAULT_PATTERN if encoding[:3] in ("rgb", "bgr") else None


def image_pixels(image, path: Path) -> np.ndarray:
    """A ``sensor_msgs/Image`` as gray ``(H, W)`` or RGB ``(H, W, 3)`` uint8/uint16 pixels: gray kept,
    colour as RGB (alpha dropped), ``bayer_*`` demosaiced bilinearly (:func:`~lase_e2v.events.color.demosaic`)."""
    encoding = image.encoding.lower()
    if encoding not in IMAGE_ENCODINGS:
        raise EventFormatError(
            f"{path}: APS image encoding '{image.encoding}' is not supported "
            f"(use one of {', '.join(IMAGE_ENCODINGS)})"
        )
    kind, channels = IMAGE_ENCODINGS[encoding]
    dtype = np.dtype(kind).newbyteorder(">" if image.is_bigendian else "<")
    row_items = image.width * channels
    rows = np.frombuffer(bytes(image.data), np.uint8).reshape(image.height, image.step)
    pixels = rows[:, : row_items * dtype.itemsize].copy().view(dtype).astype(dtype.newbyteorder("="))
    pixels = pixels.reshape(image.height, image.width, channels)
    if encoding.startswith("bgr"):
        pixels = pixels[..., [2, 1, 0, 3][:channels]]
    if encoding.startswith("bayer_"):
        raw = pixels[..., 0]
        sites = [raw[dy::2, dx::2] for dy, dx in SITE_OFFSETS]
        rgb = demosaic(sites, encoding_color_filter(encoding), raw.shape)
        return np.rint(rgb).astype(raw.dtype)
    return pixels[..., 0] if channels == 1 else pixels[..., :3]


class RosbagReader(EventReader):
    """Reader of ROS1/ROS2 bags: chunks of whole ``EventArray`` messages, plus the APS frames.

    Args:
        path: a ``.bag`` file, a ROS2 bag folder, or a ``.mcap``/``.db3`` file.
        sensor_size: ``(height, width)`` overriding the messages'.
        topic: the event topic; default: the first ``EventArray`` topic by name.
    """

    format_name = "rosbag"
    extensions = (".bag", ".mcap", ".db3")

    def __init__(
        self, path: str | Path, sensor_size: tuple[int, int] | None = None, topic: str | None = None
    ) -> None:
        super().__init__(path, sensor_size)
        with self._open() as bag, _translated(self.path, "cannot read the bag's index"):
            self.topics = {name: info.msgtype for name, info in bag.topics.items()}
            self.event_topic = choose_event_topic(self.topics, topic, self.path)
            self.frame_topic = choose_frame_topic(self.topics, self.event_topic)
            self._color_filter = None
            self._check_definition(bag)
            self._find_color(bag)
            self._stated_size = self._first_size(bag)

    @classmethod
    def sniff(cls, path: Path, head: bytes) -> bool:
        if path.is_dir():
            return (path / "metadata.yaml").is_file()
        is_sqlite_bag = head.startswith(SQLITE_MAGIC) and path.suffix.lower() == ".db3"
        return head.startswith(ROS1_MAGIC) or head.startswith(MCAP_MAGIC) or is_sqlite_bag

    @contextmanager
    def _open(self):
        from rosbags.highlevel import AnyReader

        if self.path.is_file() and self.path.suffix != ".bag" and _starts_with(self.path, ROS1_MAGIC):
            raise EventFormatError(f"{self.path}: a ROS1 bag must be named *.bag (rosbags goes by the name)")
        with _translated(self.path, "not a readable ROS bag: truncated or damaged?"):
            reader = AnyReader([self.path], default_typestore=event_typestore())
            reader.open()
        try:
            yield reader
        finally:
            reader.close()

    def _check_definition(self, bag) -> None:
        """Refuse an event type whose definition in the bag is not the ``EventArray`` layout decoded here."""
        msgtype = self.topics[self.event_topic]
        element = msgtype.replace("EventArray", "Event")
        if (_field_types(bag.typestore, msgtype) != _EXPECTED_ARRAY_FIELDS
                or _field_types(bag.typestore, element) != _EXPECTED_EVENT_FIELDS):
            raise EventFormatError(
                f"{self.path}: {msgtype} on {self.event_topic} is defined differently from rpg_dvs_ros's "
                f"(x, y, ts, polarity); cannot decode it"
            )

    @staticmethod
    def _messages(bag, topic: str | None) -> Iterator[tuple]:
        """``(connection, bag time, raw bytes)`` of ``topic``'s messages (none for ``None``)."""
        connections = [c for c in bag.connections if c.topic == topic]
        if connections:  # rosbags reads every topic when given none
            yield from bag.messages(connections)

    def _find_color(self, bag) -> None:
        """A colour camera's bag: an image topic in the event topic's namespace with a colour or Bayer
        encoding (its first message). That topic then gives the frames, and its encoding the pattern."""
        near = sorted(name for name, msgtype in self.topics.items()
                      if msgtype == IMAGE_TYPE and _namespace(name) == _namespace(self.event_topic))
        if self.frame_topic in near:  # the chosen topic first
            near.remove(self.frame_topic)
            near.insert(0, self.frame_topic)
        for topic in near:
            for connection, _, raw in self._messages(bag, topic):
                pattern = encoding_color_filter(bag.deserialize(raw, connection.msgtype).encoding)
                if pattern is not None:
                    self.frame_topic, self._color_filter = topic, pattern
                    return
                break

    @property
    def color_filter(self) -> str | None:
        """The Bayer pattern when an image topic next to the events is colour (``bayer_*``: its pattern;
        ``rgb8``/``bgr8``...: the Color-DAVIS346's as E2VID splits CED, ``RGGB``), else ``None``."""
        return self._color_filter

    def _first_size(self, bag) -> tuple[int, int] | None:
        for connection, _, raw in self._messages(bag, self.event_topic):
            size = decode_event_array(raw, bag.is2)[0]
            if size[0] > 0 and size[1] > 0:
                return size
            break
        for connection, _, raw in self._messages(bag, self.frame_topic):
            image = bag.deserialize(raw, connection.msgtype)
            return int(image.height), int(image.width)
        return None

    @property
    def streams(self) -> dict[str, str]:
        return {"event_topic": self.event_topic, "frame_topic": self.frame_topic or "none"}

    @property
    def sensor_size(self) -> tuple[int, int]:
        if self._sensor_size_override is not None:
            return self._sensor_size_override
        return check_sensor_size(self._stated_size, self.path)

    def _iter_raw(self, chunk_events: int) -> Iterator[EventStream]:
        size = self.sensor_size
        with self._open() as bag, _translated(self.path, f"corrupt message on {self.event_topic}"):
            raws = (raw for _, _, raw in self._messages(bag, self.event_topic))
            messages = (decode_event_array(raw, bag.is2)[1:] for raw in raws)
            for group in group_packets(messages, chunk_events, lambda columns: len(columns[0])):
                yield self._to_stream(group, size)

    @staticmethod
    def _to_stream(messages: list[tuple], sensor_size: tuple[int, int]) -> EventStream:
        x, y, t, p = (np.concatenate(column) for column in zip(*messages))
        return EventStream(x, y, t, p, sensor_size)

    def read_frames(self) -> Frames | None:
        images, stamps = [], []
        with self._open() as bag, _translated(self.path, f"corrupt message on {self.frame_topic}"):
            for connection, _, raw in self._messages(bag, self.frame_topic):
                image = bag.deserialize(raw, connection.msgtype)
                images.append(image_pixels(image, self.path))
                stamps.append(_stamp_us(image))
        if not images:
            return None
        if len({image.shape for image in images}) > 1:
            raise EventFormatError(f"{self.path}: APS frames on {self.frame_topic} differ in size")
        return Frames(np.stack(images), np.array(stamps, dtype=np.int64))

    def read_frame_times(self) -> np.ndarray | None:
        """The image headers' stamps alone: each message is decoded, no image is kept."""
        stamps = []
        with self._open() as bag, _translated(self.path, f"corrupt message on {self.frame_topic}"):
            for connection, _, raw in self._messages(bag, self.frame_topic):
                stamps.append(_stamp_us(bag.deserialize(raw, connection.msgtype)))
        return np.array(stamps, dtype=np.int64) if stamps else None


def _stamp_us(message) -> int:
    """A stamped message's header time in microseconds."""
    stamp = message.header.stamp
    return int(_to_microseconds(np.int64(stamp.sec), np.int64(stamp.nanosec)))


def _ros_time(typestore, t_us: int):
    seconds, micros = divmod(int(t_us), 1_000_000)
    return typestore.types["builtin_interfaces/msg/Time"](sec=seconds, nanosec=micros * 1000)


def _header(typestore, ros2: bool, t_us: int, frame_id: str, seq: int):
    fields = {"stamp": _ros_time(typestore, t_us), "frame_id": frame_id}
    if not ros2:
        fields["seq"] = seq  # ROS1 headers count their messages
    return typestore.types["std_msgs/msg/Header"](**fields)


def write_rosbag(
    path: str | Path,
    events: EventStream,
    frames: Frames | None = None,
    ros2: bool = False,
    storage: str = "sqlite3",
    event_topic: str = "/dvs/events",
    frame_topic: str = "/dvs/image_raw",
    message_us: int = 33_333,
    frame_encoding: str | None = None,
) -> None:
    """Write ``events`` (as ``dvs_msgs/EventArray`` of ``message_us`` each) and ``frames`` (``mono8``,
    ``mono16`` or, for RGB frames, ``rgb8`` ``sensor_msgs/Image``; ``frame_encoding`` names another
    one of the same pixel layout, e.g. ``bayer_rggb8`` for raw gray frames) to a new bag with
    ``rosbags``' own serializer and writer.

    For tests and for handing a recording to ROS tools from Python; slow (a Python object per event,
    about 3 us each). ``ros2``: a ROS2 bag folder in ``storage`` ``"sqlite3"`` or ``"mcap"``, else a
    ROS1 ``.bag``. Each message is stamped (bag time) with its last event's time, as drivers publish.
    """
    from rosbags.rosbag1 import Writer as Ros1Writer
    from rosbags.rosbag2 import StoragePlugin, Writer as Ros2Writer

    typestore = event_typestore("ros2_humble" if ros2 else "ros1_noetic")
    serialize = typestore.serialize_cdr if ros2 else typestore.serialize_ros1
    Event = typestore.types["dvs_msgs/msg/Event"]
    EventArray = typestore.types["dvs_msgs/msg/EventArray"]
    Image = typestore.types["sensor_msgs/msg/Image"]
    messages: list[tuple[str, int, object, str]] = []  # (topic, bag time ns, message, type)
    if len(events):
        bounds = np.arange(int(events.t[0]), int(events.t[-1]) + message_us, message_us)
        cuts = np.searchsorted(events.t, bounds[1:], side="left")
        for seq, (a, b) in enumerate(zip(np.r_[0, cuts[:-1]], cuts)):
            if a == b:
                continue
            items = [Event(x=int(x), y=int(y), ts=_ros_time(typestore, t), polarity=bool(p > 0))
                     for x, y, t, p in zip(events.x[a:b], events.y[a:b], events.t[a:b], events.p[a:b])]
            last_t = int(events.t[b - 1])
            message = EventArray(header=_header(typestore, ros2, last_t, "dvs", seq), height=events.height,
                                 width=events.width, events=items)
            messages.append((event_topic, last_t * 1000, message, "dvs_msgs/msg/EventArray"))
    if frames is not None:
        sixteen = frames.images.dtype == np.uint16
        encoding = frame_encoding or ("rgb8" if frames.is_color else "mono16" if sixteen else "mono8")
        for seq, (image, t_us) in enumerate(zip(frames.images, frames.t_us)):
            data = np.ascontiguousarray(image.astype("<u2" if sixteen else np.uint8)).view(np.uint8).ravel()
            step = image.shape[1] * (2 if sixteen else 1) * (3 if frames.is_color else 1)
            message = Image(header=_header(typestore, ros2, int(t_us), "dvs", seq), height=image.shape[0],
                            width=image.shape[1], encoding=encoding, is_bigendian=0, step=step, data=data)
            messages.append((frame_topic, int(t_us) * 1000, message, IMAGE_TYPE))
    messages.sort(key=lambda item: item[1])

    if ros2:
        plugin = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}[storage]
        writer = Ros2Writer(path, version=9, storage_plugin=plugin)
    else:
        writer = Ros1Writer(path)
    with writer:
        topics = dict.fromkeys((topic, msgtype) for topic, _, _, msgtype in messages)
        connections = {
            topic: writer.add_connection(topic, msgtype, typestore=typestore) for topic, msgtype in topics
        }
        for topic, stamp_ns, message, msgtype in messages:
            writer.write(connections[topic], stamp_ns, serialize(message, msgtype))
