"""Rosbag replay evaluation: run the streaming recogniser over a recorded bag on bag time and score it.

`masksem replay BAG --bundle DIR [--labels FILE]`; see docs/replay.md. Modules: `metrics` (pure numpy
scores), `ground_truth` (CSV / label topic), `engine` (bag in, recogniser, bag out), `report` (table,
report.json, plots), `cli`.
"""
