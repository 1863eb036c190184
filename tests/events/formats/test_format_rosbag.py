"""ROS1/ROS2 bags: exact round trips of slider_depth through bags written by rosbags, the numpy
decoder against rosbags' own deserializer, topic choice, and one clear error for bad bags."""

from __future__ import annotations

import numpy as np
import pytest

from lase_e2v.errors import ConfigError, EventFormatError
from lase_e2v.events.formats import convert, describe, detect_format, open_events
from lase_e2v.events.formats.rosbag import (
    EVENT_ARRAY_MSG,
    RosbagReader,
    decode_event_array,
    event_typestore,
    write_rosbag,
)
from lase_e2v.events.streams import EventStream, Frames

BAG_KINDS = {"ros1": {}, "ros2_sqlite3": {"ros2": True}, "ros2_mcap": {"ros2": True, "storage": "mcap"}}


def bag_name(kind: str) -> str:
    return "slider.bag" if kind == "ros1" else f"slider_{kind}"


@pytest.fixture(scope="module")
def slider_part(slider_depth_dir):
    """The first 0.3 s of slider_depth (88,504 events, 8 APS frames)."""
    reader = open_events(slider_depth_dir)
    events, frames = reader.read(), reader.read_frames()
    end_us = int(events.t[0]) + 300_000
    keep = frames.t_us < end_us
    return events.time_slice(int(events.t[0]), end_us), Frames(frames.images[keep], frames.t_us[keep])


@pytest.fixture(scope="module")
def bags(tmp_path_factory, slider_part):
    """slider_part as a ROS1 bag and ROS2 bags (sqlite3 and mcap), written by rosbags."""
    folder = tmp_path_factory.mktemp("bags")
    events, frames = slider_part
    for kind, options in BAG_KINDS.items():
        write_rosbag(folder / bag_name(kind), events, frames, **options)
    return folder


def write_messages(path, messages, ros2=False, typestore=None):
    """A bag of ``(topic, msgtype, t_ns, message)`` written with rosbags' writer."""
    from rosbags.rosbag1 import Writer as Ros1Writer
    from rosbags.rosbag2 import Writer as Ros2Writer

    typestore = typestore or event_typestore("ros2_humble" if ros2 else "ros1_noetic")
    serialize = typestore.serialize_cdr if ros2 else typestore.serialize_ros1
    with Ros2Writer(path, version=9) if ros2 else Ros1Writer(path) as writer:
        connections = {}
        for topic, msgtype, _, _ in messages:
            if topic not in connections:
                connections[topic] = writer.add_connection(topic, msgtype, typestore=typestore)
        for topic, msgtype, t_ns, message in messages:
            writer.write(connections[topic], t_ns, serialize(message, msgtype))
    return path


def event_array(typestore, n, frame_id="dvs", seed=0, ros2=False, size=(180, 240)):
    rng = np.random.default_rng(seed)
    Time = typestore.types["builtin_interfaces/msg/Time"]
    Event = typestore.types["dvs_msgs/msg/Event"]
    stamps = np.sort(rng.integers(0, 2**31 - 1, n))
    events = [
        Event(x=int(rng.integers(0, size[1])), y=int(rng.integers(0, size[0])),
              ts=Time(sec=int(s), nanosec=int(rng.integers(0, 10**9))), polarity=bool(rng.integers(0, 2)))
        for s in stamps
    ]
    header_fields = {"stamp": Time(sec=1, nanosec=2), "frame_id": frame_id}
    if not ros2:
        header_fields["seq"] = 7
    header = typestore.types["std_msgs/msg/Header"](**header_fields)
    return typestore.types["dvs_msgs/msg/EventArray"](header=header, height=size[0], width=size[1], events=events)


def image_message(typestore, pixels, encoding, t_s, ros2=False):
    Time = typestore.types["builtin_interfaces/msg/Time"]
    header_fields = {"stamp": Time(sec=t_s, nanosec=0), "frame_id": "dvs"}
    if not ros2:
        header_fields["seq"] = 0
    data = np.ascontiguousarray(pixels).view(np.uint8).ravel()
    return typestore.types["sensor_msgs/msg/Image"](
        header=typestore.types["std_msgs/msg/Header"](**header_fields), height=pixels.shape[0],
        width=pixels.shape[1], encoding=encoding, is_bigendian=0, step=data.size // pixels.shape[0], data=data)


# -- round trips -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(BAG_KINDS))
def test_slider_depth_round_trip_is_exact(bags, slider_part, kind):
    events, frames = slider_part
    reader = open_events(bags / bag_name(kind))
    assert isinstance(reader, RosbagReader)
    assert reader.sensor_size == (180, 240)
    assert reader.streams == {"event_topic": "/dvs/events", "frame_topic": "/dvs/image_raw"}
    read = reader.read()
    for column in "txyp":
        np.testing.assert_array_equal(getattr(read, column), getattr(events, column))
    read_frames = reader.read_frames()
    np.testing.assert_array_equal(read_frames.images, frames.images)
    np.testing.assert_array_equal(read_frames.t_us, frames.t_us)
    np.testing.assert_array_equal(reader.read_frame_times(), frames.t_us)
    chunks = list(reader.iter_chunks(chunk_events=20_000))
    assert len(chunks) > 3 and all(len(c) < 20_000 + 10_000 for c in chunks)
    np.testing.assert_array_equal(np.concatenate([c.t for c in chunks]), events.t)


@pytest.mark.parametrize("kind", ["ros1", "ros2_mcap"])
def test_convert_bag_to_hdf5_keeps_everything(bags, slider_part, tmp_path, kind):
    events, frames = slider_part
    assert convert(bags / bag_name(kind), tmp_path / "out.h5", progress=False) == len(events)
    back = open_events(tmp_path / "out.h5")
    np.testing.assert_array_equal(back.read().t, events.t)
    np.testing.assert_array_equal(back.read_frames().images, frames.images)


def test_detection_by_content(bags):
    assert detect_format(bags / "slider.bag")[0] == "rosbag"
    assert detect_format(bags / "slider_ros2_sqlite3")[0] == "rosbag"
    mcap_file = bags / "slider_ros2_mcap" / "slider_ros2_mcap.mcap"
    assert detect_format(mcap_file)[0] == "rosbag"
    assert len(open_events(mcap_file).read()) == 88_504


# -- the numpy decoder -------------------------------------------------------------------------


@pytest.mark.parametrize("ros2", [False, True])
@pytest.mark.parametrize("n, frame_id", [(0, "dvs"), (1, ""), (2, "a"), (3, "ab"), (257, "abc"), (1000, "davis_left")])
def test_decoder_equals_rosbags_deserializer(ros2, n, frame_id):
    typestore = event_typestore("ros2_humble" if ros2 else "ros1_noetic")
    message = event_array(typestore, n, frame_id, seed=n, ros2=ros2)
    raw = (typestore.serialize_cdr if ros2 else typestore.serialize_ros1)(message, "dvs_msgs/msg/EventArray")
    reference = (typestore.deserialize_cdr if ros2 else typestore.deserialize_ros1)(raw, "dvs_msgs/msg/EventArray")
    size, x, y, t_us, polarity = decode_event_array(raw, cdr=ros2)
    assert size == (180, 240)
    assert x.tolist() == [e.x for e in reference.events]
    assert y.tolist() == [e.y for e in reference.events]
    assert t_us.tolist() == [e.ts.sec * 1_000_000 + (e.ts.nanosec + 500) // 1000 for e in reference.events]
    assert polarity.astype(bool).tolist() == [e.polarity for e in reference.events]


def test_nanoseconds_round_to_the_nearest_microsecond():
    typestore = event_typestore("ros1_noetic")
    message = event_array(typestore, 3)
    for event, nanosec in zip(message.events, (1_499, 1_500, 999_999_999)):
        event.ts.sec, event.ts.nanosec = 5, nanosec
    _, _, _, t_us, _ = decode_event_array(typestore.serialize_ros1(message, "dvs_msgs/msg/EventArray"), cdr=False)
    assert t_us.tolist() == [5_000_001, 5_000_002, 6_000_000]


# -- topics and frames -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stereo_bag(tmp_path_factory):
    """MVSEC-like: left and right event and image topics, plus a depth image topic."""
    typestore = event_typestore("ros1_noetic")
    messages = []
    for index, side in enumerate(("left", "right")):
        message = event_array(typestore, 50, seed=index, size=(4, 6))
        messages.append((f"/davis/{side}/events", "dvs_msgs/msg/EventArray", 1, message))
        pixels = np.full((4, 6), 10 + index, np.uint8)
        messages.append((f"/davis/{side}/image_raw", "sensor_msgs/msg/Image", 2, image_message(typestore, pixels, "mono8", 3)))
        depth = np.zeros((4, 6), np.float32)
        messages.append((f"/davis/{side}/depth_image_raw", "sensor_msgs/msg/Image", 3,
                         image_message(typestore, depth, "32FC1", 3)))
    return write_messages(tmp_path_factory.mktemp("stereo") / "stereo.bag", messages)


def test_first_event_topic_and_its_frames_by_default(stereo_bag):
    reader = open_events(stereo_bag)
    assert reader.streams == {"event_topic": "/davis/left/events", "frame_topic": "/davis/left/image_raw"}
    assert reader.sensor_size == (4, 6)
    assert reader.read_frames().images[0, 0, 0] == 10
    assert len(reader.read()) == 50


def test_topic_chooses_the_events_and_their_frames(stereo_bag):
    reader = open_events(stereo_bag, topic="/davis/right/events")
    assert reader.streams["frame_topic"] == "/davis/right/image_raw"
    assert reader.read_frames().images[0, 0, 0] == 11
    info = describe(stereo_bag, topic="/davis/right/events", progress=False)
    assert info["event_topic"] == "/davis/right/events" and info["events"] == "50"


COLOURS = np.array([[[255, 0, 0], [0, 0, 255]], [[0, 255, 0], [10, 10, 10]]], np.uint8)


@pytest.mark.parametrize(
    "encoding, pixels, expected, color_filter",
    [
        ("mono16", np.array([[0, 1000], [65535, 7]], np.uint16), [[0, 1000], [65535, 7]], None),
        ("bgr8", COLOURS, COLOURS[..., ::-1].tolist(), "RGGB"),  # a colour camera: frames stay RGB
        ("rgb8", COLOURS, COLOURS.tolist(), "RGGB"),
        # raw Bayer frames are demosaiced (one sample per site: constant colour) and give the pattern
        ("bayer_gbrg8", np.array([[100, 20], [200, 50]], np.uint8), [[[200, 75, 20]] * 2] * 2, "GBRG"),
    ],
)
def test_frame_encodings(tmp_path, encoding, pixels, expected, color_filter):
    typestore = event_typestore("ros1_noetic")
    messages = [("/dvs/events", "dvs_msgs/msg/EventArray", 1, event_array(typestore, 5, size=(2, 2))),
                ("/dvs/image_raw", "sensor_msgs/msg/Image", 2, image_message(typestore, pixels, encoding, 4))]
    reader = open_events(write_messages(tmp_path / "frames.bag", messages))
    frames = reader.read_frames()
    assert frames.images.dtype == pixels.dtype
    assert frames.images[0].tolist() == expected and frames.t_us.tolist() == [4_000_000]
    assert reader.color_filter == color_filter


def test_a_colour_topic_beside_a_gray_one_gives_the_frames_and_the_colour(tmp_path):
    """CED-like: gray image_raw and colour image_color next to the events."""
    typestore = event_typestore("ros1_noetic")
    messages = [("/dvs/events", "dvs_msgs/msg/EventArray", 1, event_array(typestore, 5, size=(2, 2))),
                ("/dvs/image_raw", "sensor_msgs/msg/Image", 2, image_message(typestore, COLOURS[..., 0], "mono8", 4)),
                ("/dvs/image_color", "sensor_msgs/msg/Image", 3, image_message(typestore, COLOURS, "rgb8", 4))]
    reader = open_events(write_messages(tmp_path / "ced.bag", messages))
    assert reader.color_filter == "RGGB" and reader.streams["frame_topic"] == "/dvs/image_color"
    assert reader.read_frames().images[0].tolist() == COLOURS.tolist()
    assert describe(reader.path, progress=False)["color_filter"] == "RGGB (colour camera)"


def test_unsupported_frame_encoding_is_named(stereo_bag, tmp_path):
    typestore = event_typestore("ros1_noetic")
    messages = [("/dvs/events", "dvs_msgs/msg/EventArray", 1, event_array(typestore, 5, size=(2, 2))),
                ("/dvs/image_raw", "sensor_msgs/msg/Image", 2,
                 image_message(typestore, np.zeros((2, 2), np.float32), "32FC1", 4))]
    with pytest.raises(EventFormatError, match="encoding '32FC1' is not supported"):
        open_events(write_messages(tmp_path / "depth.bag", messages)).read_frames()


# -- one clear error each ----------------------------------------------------------------------


def test_bag_without_event_topic(tmp_path):
    typestore = event_typestore("ros1_noetic")
    messages = [("/dvs/image_raw", "sensor_msgs/msg/Image", 2, image_message(typestore, np.zeros((2, 2), np.uint8), "mono8", 4))]
    with pytest.raises(EventFormatError, match=r"no event topic .*/dvs/image_raw \(sensor_msgs/msg/Image\)"):
        open_events(write_messages(tmp_path / "images.bag", messages))


def test_unknown_event_message_type(tmp_path):
    """event_camera_msgs/EventPacket (the ROS2 driver's encoded packets) is not read: the error names it."""
    from rosbags.typesys import get_types_from_msg

    typestore = event_typestore("ros2_humble")
    typestore.register(get_types_from_msg(
        "std_msgs/Header header\nuint16 height\nuint16 width\nuint64 seq\nuint64 time_base\nstring encoding\n"
        "bool is_bigendian\nuint8[] events\n", "event_camera_msgs/msg/EventPacket"))
    EventPacket = typestore.types["event_camera_msgs/msg/EventPacket"]
    Header, Time = typestore.types["std_msgs/msg/Header"], typestore.types["builtin_interfaces/msg/Time"]
    packet = EventPacket(header=Header(stamp=Time(sec=0, nanosec=0), frame_id=""), height=2, width=2, seq=0,
                         time_base=0, encoding="evt3", is_bigendian=False, events=np.zeros(4, np.uint8))
    path = write_messages(tmp_path / "packets", [("/events", "event_camera_msgs/msg/EventPacket", 1, packet)],
                          ros2=True, typestore=typestore)
    with pytest.raises(EventFormatError, match=r"no event topic .*/events \(event_camera_msgs/msg/EventPacket\)"):
        open_events(path)
    with pytest.raises(EventFormatError, match="message type event_camera_msgs/msg/EventPacket, which is not an event type"):
        open_events(path, topic="/events")


def test_missing_topic_lists_the_topics(stereo_bag):
    with pytest.raises(EventFormatError, match="no topic '/dvs/events'; topics: /davis/left/depth_image_raw"):
        open_events(stereo_bag, topic="/dvs/events")
    with pytest.raises(EventFormatError, match=r"no topic '/a\\nb'; topics"):  # input quoted, escaped
        open_events(stereo_bag, topic="/a\nb")


def test_event_type_defined_differently(tmp_path):
    """A bag whose own dvs_msgs/EventArray definition is not rpg_dvs_ros's is refused, not misread."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    typestore = get_typestore(Stores.ROS1_NOETIC)
    typestore.register(get_types_from_msg("uint16 x\nuint16 y\nuint64 t\nint8 p\n", "dvs_msgs/msg/Event"))
    typestore.register(get_types_from_msg(EVENT_ARRAY_MSG.replace("Event[]", "dvs_msgs/Event[]"),
                                          "dvs_msgs/msg/EventArray"))
    header = typestore.types["std_msgs/msg/Header"](
        seq=0, stamp=typestore.types["builtin_interfaces/msg/Time"](sec=0, nanosec=0), frame_id="")
    message = typestore.types["dvs_msgs/msg/EventArray"](header=header, height=2, width=2, events=[])
    path = write_messages(tmp_path / "other.bag", [("/dvs/events", "dvs_msgs/msg/EventArray", 1, message)],
                          typestore=typestore)
    with pytest.raises(EventFormatError, match="defined differently"):
        open_events(path)


@pytest.mark.parametrize("kind, file", [("ros1", None), ("ros2_sqlite3", "slider_ros2_sqlite3.db3"),
                                        ("ros2_mcap", "slider_ros2_mcap.mcap")])
@pytest.mark.parametrize("fraction", [0.02, 0.6])
def test_truncated_bag(bags, tmp_path, kind, file, fraction):
    import shutil

    target = tmp_path / bag_name(kind)
    (shutil.copytree if file else shutil.copy)(bags / bag_name(kind), target)
    damaged = target / file if file else target
    with open(damaged, "r+b") as handle:
        handle.truncate(int(damaged.stat().st_size * fraction))
    with pytest.raises(EventFormatError, match="not a readable ROS bag: truncated or damaged"):
        open_events(target).read()


def test_ros1_bag_needs_its_extension(bags, tmp_path):
    import shutil

    shutil.copy(bags / "slider.bag", tmp_path / "slider.dat")
    with pytest.raises(EventFormatError, match=r"must be named \*\.bag"):
        open_events(tmp_path / "slider.dat")


def test_topic_for_another_format(tmp_path):
    from lase_e2v.events.formats import write_events

    write_events(tmp_path / "e.h5", EventStream([0], [0], [1], [1], (2, 2)))
    with pytest.raises(ConfigError, match="topic applies to ROS bags only"):
        open_events(tmp_path / "e.h5", topic="/dvs/events")


# -- through the command line ------------------------------------------------------------------


def test_cli_info_convert_reconstruct_evaluate_on_a_bag(run_cli, bags, tmp_path):
    import json

    bag = bags / "slider_ros2_mcap"
    code, out, _ = run_cli("info", bag)
    assert code == 0 and "event_topic: /dvs/events" in out and "events: 88,504" in out and "aps_frames: 8 (240x180" in out

    code, _, _ = run_cli("convert", bag, tmp_path / "slider.h5", "--topic", "/dvs/events")
    assert code == 0
    for source, name in ((bag, "from_bag"), (tmp_path / "slider.h5", "from_h5")):
        code, out, _ = run_cli("reconstruct", source, "-o", tmp_path / name, "--method", "integrate")
        assert code == 0 and "wrote 7 frames" in out
    for index in range(7):
        frame = f"frame_{index:06d}.png"
        assert (tmp_path / "from_bag" / frame).read_bytes() == (tmp_path / "from_h5" / frame).read_bytes()

    scores = {}
    for source, name in ((bag, "eval_bag"), (tmp_path / "slider.h5", "eval_h5")):
        code, _, _ = run_cli("evaluate", "--method", "integrate", "--data", source, "-o", tmp_path / name)
        assert code == 0
        result = json.loads((tmp_path / name / "aggregate.json").read_text())["scores"]["Integrator"]["custom"]
        scores[name] = {key: result[key] for key in ("num_frames", "mse", "ssim", "lpips")}
    assert scores["eval_bag"]["num_frames"] == 7 and scores["eval_bag"] == scores["eval_h5"]


def test_cli_errors_on_bags(cli_error, bags, stereo_bag, tmp_path):
    typestore = event_typestore("ros1_noetic")
    images_only = write_messages(tmp_path / "images.bag", [
        ("/dvs/image_raw", "sensor_msgs/msg/Image", 2, image_message(typestore, np.zeros((2, 2), np.uint8), "mono8", 4))])
    assert "no event topic" in cli_error("info", images_only)
    assert "no topic '/nope'" in cli_error("reconstruct", stereo_bag, "-o", tmp_path / "o.mp4", "--method", "integrate",
                                           "--topic", "/nope")
    assert "not an event type" in cli_error("convert", stereo_bag, tmp_path / "o.h5", "--topic", "/davis/left/image_raw")
    truncated = tmp_path / "cut.bag"
    truncated.write_bytes((bags / "slider.bag").read_bytes()[:50_000])
    assert "truncated or damaged" in cli_error("info", truncated)
    assert not (tmp_path / "o.mp4").exists() and not (tmp_path / "o.h5").exists()
