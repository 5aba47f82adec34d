"""Joint-order check on real NW-UCLA: false alarms as recorded, detection with the trunk swapped and with
random joint orders, and the time it takes. Run: PYTHONPATH=. python bench/joint_check_nwucla.py"""

import json
import pathlib
import time

import numpy as np

from masksem_core.data.joint_check import check_clips
from masksem_core.layouts import KINECT_V1_20

files = sorted(
    (pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "nw-ucla" / "all_sqe").glob("*.json")
)
clips = [(f.stem, np.asarray(json.loads(f.read_text())["skeletons"], np.float32)) for f in files]
t = time.perf_counter()
r = check_clips(clips, KINECT_V1_20)
dt = time.perf_counter() - t
print(f"NW-UCLA as recorded: {len(r.bad)}/{r.clips} clips flagged alone, set ok={r.ok}, {dt:.1f} s")
sw = check_clips([(n, c[:, [3, 2, 1, 0, *range(4, 20)]]) for n, c in clips], KINECT_V1_20)
print(f"trunk swapped: {len(sw.bad)}/{sw.clips} flagged, set ok={sw.ok}, suggestions={sw.suggestions}")
rng = np.random.default_rng(0)
refused = 0
for _ in range(20):
    p = rng.permutation(20)
    refused += not check_clips([(n, c[:, p]) for n, c in clips[::30]], KINECT_V1_20, suggest=False).ok
print(f"random joint orders refused: {refused}/20 (50 clips each)")
