"""ROS bag read speed on one core: lase-e2v's reader against rosbags' own message deserializer.

slider_depth (1,078,541 events, 87 APS frames) is written once as a ROS1 bag and a ROS2 (mcap) bag
with ``write_rosbag`` (rosbags' serializer and writer, messages of 33 ms); then every event is read
back by ``open_events(bag).read()`` (lase-e2v's numpy decoder of ``dvs_msgs/EventArray``) and by
rosbags' ``AnyReader.deserialize`` turned into numpy columns (the naive way, one Python object per
event). Both give the same events (the tests check the decoders agree message by message).

    python benchmarks/ros_bags.py [--repeat 3] [--out benchmarks/results/ros_bags.json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import numpy as np
from _common import SHARED_DATA, best_seconds

from lase_e2v.atomic import atomic_path
from lase_e2v.events.formats import open_events
from lase_e2v.events.formats.rosbag import event_typestore, write_rosbag


def rosbags_deserialize(path: Path) -> int:
    """Events of a bag's ``/dvs/events`` read with rosbags' deserializer into numpy columns."""
    from rosbags.highlevel import AnyReader

    columns: list[np.ndarray] = []
    with AnyReader([path], default_typestore=event_typestore()) as bag:
        for connection, _, raw in bag.messages([c for c in bag.connections if c.topic == "/dvs/events"]):
            events = bag.deserialize(raw, connection.msgtype).events
            columns.append(np.array([(e.ts.sec * 1_000_000 + (e.ts.nanosec + 500) // 1000, e.x, e.y, e.polarity)
                                     for e in events], dtype=np.int64).reshape(-1, 4))
    return len(np.concatenate(columns))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "ros_bags.json")
    args = parser.parse_args()
    reader = open_events(SHARED_DATA / "ecd_slider_depth")
    events, frames = reader.read(), reader.read_frames()
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        for name, path, options in (("ROS1 bag", Path(workdir) / "slider.bag", {}),
                                    ("ROS2 mcap bag", Path(workdir) / "slider_mcap", {"ros2": True, "storage": "mcap"})):
            write_rosbag(path, events, frames, **options)
            assert len(open_events(path).read()) == rosbags_deserialize(path) == len(events)
            ours = best_seconds(lambda path=path: open_events(path).read(), args.repeat)
            naive = best_seconds(lambda path=path: rosbags_deserialize(path), 1)
            rows.append({"what": f"read {name} (slider_depth)", "events": len(events),
                         "lase_e2v_events_per_s": len(events) / ours, "rosbags_events_per_s": len(events) / naive,
                         "ratio": naive / ours})
    print(f"{'what':32s} {'events':>10s} {'lase-e2v M ev/s':>16s} {'rosbags M ev/s':>15s} {'ratio':>7s}")
    for row in rows:
        print(f"{row['what']:32s} {row['events']:>10,d} {row['lase_e2v_events_per_s'] / 1e6:>16.2f} "
              f"{row['rosbags_events_per_s'] / 1e6:>15.2f} {row['ratio']:>6.0f}x")
    with atomic_path(args.out) as temporary:
        temporary.write_text(json.dumps({"rows": rows, "cpu_count": os.cpu_count(),
                                         "load_average_1min": os.getloadavg()[0]}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
