"""`masksem layouts`: every known joint layout with its joint count, joint names, axes and source."""

from __future__ import annotations

import argparse
import json

from masksem_core.layouts import LAYOUTS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", help="only these layouts (default: all)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def describe() -> list[dict]:
    """One entry a layout: name, joints, joint names, up axis, centre joint, description and source."""
    from masksem_core.data.joint_order import KNOWN_ORDERS

    out = []
    for lay in LAYOUTS.values():
        axis, sign = lay.up
        out.append(
            {
                "name": lay.name,
                "num_joints": lay.num_joints,
                "joint_names": list(lay.joint_names),
                "up": ("+" if sign > 0 else "-") + "xyz"[axis],
                "centre_joint": lay.joint_names[lay.centre_joint],
                "description": lay.description,
                "source": lay.source,
                "other_orders": [n for n, (base, _) in KNOWN_ORDERS.items() if base == lay.name],
            }
        )
    return out


def run(args: argparse.Namespace) -> int:
    entries = describe()
    if args.names:
        unknown = sorted(set(args.names) - {e["name"] for e in entries})
        if unknown:
            print(f"masksem layouts: unknown layout {unknown[0]!r}; known: {', '.join(LAYOUTS)}")
            return 2
        entries = [e for e in entries if e["name"] in args.names]
    if args.json:
        print(json.dumps(entries, indent=1))
        return 0
    for e in entries:
        print(f"{e['name']}  {e['num_joints']} joints  up {e['up']}  centre {e['centre_joint']}")
        print(f"  {e['description']}")
        print(f"  source: {e['source']}")
        if e["other_orders"]:
            print(f"  other joint orders (--joint-order): {', '.join(e['other_orders'])}")
        print("  joints: " + ", ".join(f"{i}:{n}" for i, n in enumerate(e["joint_names"])))
    return 0
