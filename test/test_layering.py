"""The core library never depends on the ROS package: masksem_ros builds on masksem_core, not back."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parent.parent / "masksem_core"


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_core_module_imports_masksem_ros() -> None:
    offenders = {
        str(p.relative_to(CORE.parent)): sorted(
            m for m in _imported_modules(p) if m.split(".")[0] == "masksem_ros"
        )
        for p in sorted(CORE.rglob("*.py"))
    }
    offenders = {k: v for k, v in offenders.items() if v}
    assert not offenders, f"masksem_core imports masksem_ros: {offenders}"


def test_core_replay_and_messages_import_with_masksem_ros_blocked() -> None:
    """Import the bag/replay side of the core with `masksem_ros` made unimportable."""
    code = (
        "import sys; sys.modules['masksem_ros'] = None\n"
        "import masksem_core.rosmsg.bag_io, masksem_core.replay.engine, masksem_core.replay.cli\n"
        "import masksem_core.replay.salvage, masksem_core.replay.ground_truth\n"
        "import masksem_core.synthetic.recording\n"
        "from masksem_core.rosmsg.messages import rosbags_kit; rosbags_kit()\n"
        "print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
