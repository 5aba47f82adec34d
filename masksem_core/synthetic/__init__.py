"""Built-in synthetic human-robot-collaboration action set (NTU 25-joint skeletons), no downloads needed.

`generate_dataset` / `write_dataset` give labelled clips in the prepared-data form; `make_recording`
gives a continuous multi-action stream with ground-truth intervals; `write_recording_bag` stores it as
a rosbag2 recording of the project's skeleton messages.
"""

from masksem_core.synthetic.actions import ACTION_NAMES, ACTIONS, get_action
from masksem_core.synthetic.corruption import NoiseSettings
from masksem_core.synthetic.generator import FPS, SyntheticDataset, generate_dataset, write_dataset
from masksem_core.synthetic.recording import Recording, TruthInterval, make_recording, write_recording_bag

__all__ = [
    "ACTIONS",
    "ACTION_NAMES",
    "FPS",
    "NoiseSettings",
    "Recording",
    "SyntheticDataset",
    "TruthInterval",
    "generate_dataset",
    "get_action",
    "make_recording",
    "write_dataset",
    "write_recording_bag",
]
