"""Recognised actions -> robot behaviour, through a YAML table: a small state machine with hysteresis.

Pure logic, clock passed in, so it is tested without ROS and behaves the same under sim time. The
robot is in the table's *safe* behaviour until the first recognitions of real people, at once when the
recogniser reports an error, and whenever valid input goes stale (the recogniser stopped, its messages
are too old, or its input is invalid): a person may be there unseen.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class Behaviour:
    """What the robot does: a speed scaling in [0, 1] and a command string for the robot program."""

    name: str
    speed_scale: float
    command: str
    priority: int = 0  # among several recognised actions, the highest priority wins
    enter_count: int | None = None  # consecutive confirmations needed to switch to it (None: table's)
    min_score: float | None = None  # minimum recognition score (None: table's)


@dataclass(frozen=True)
class CollaborationTable:
    """The mapping action label -> behaviour plus the thresholds of the state machine."""

    rules: Mapping[str, Behaviour]
    default: Behaviour  # fresh input, nothing mapped recognised
    safe: Behaviour  # before the first input and whenever input is stale
    min_score: float = 0.6
    stale_after_s: float = 1.0
    enter_count: int = 2
    exit_count: int = 3  # consecutive updates without any rule before falling back to default

    @classmethod
    def from_yaml(cls, path: str | Path) -> CollaborationTable:
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ValueError(f"collaboration table {path}: cannot read: {exc}") from exc
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, data: Any, source: str = "<dict>") -> CollaborationTable:
        """Validate and build; every error names the source, the field and the offending value."""
        if not isinstance(data, dict):
            raise ValueError(f"{source}: expected a mapping at top level, got {type(data).__name__}")
        known = {"min_score", "stale_after_s", "enter_count", "exit_count", "default", "safe", "rules"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"{source}: unknown field(s) {sorted(unknown)}; known: {sorted(known)}")
        for key in ("default", "safe", "rules"):
            if key not in data:
                raise ValueError(f"{source}: missing field {key!r}")
        if not isinstance(data["rules"], dict) or not data["rules"]:
            raise ValueError(f"{source}: 'rules' must be a non-empty mapping label -> behaviour")
        table = cls(
            rules={str(k): _behaviour(v, str(k), f"{source}: rules.{k}") for k, v in data["rules"].items()},
            default=_behaviour(data["default"], "default", f"{source}: default"),
            safe=_behaviour(data["safe"], "safe", f"{source}: safe"),
            min_score=_number(data, "min_score", 0.6, source, 0.0, 1.0),
            stale_after_s=_number(data, "stale_after_s", 1.0, source, 1e-3, math.inf),
            enter_count=int(_number(data, "enter_count", 2, source, 1, 1000, integer=True)),
            exit_count=int(_number(data, "exit_count", 3, source, 1, 1000, integer=True)),
        )
        return table


def _number(
    d: Mapping, key: str, default: float, where: str, lo: float, hi: float, integer: bool = False
) -> float:
    value = d.get(key, default)
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or not (lo <= value <= hi):
        kind = "an integer" if integer else "a number"
        raise ValueError(f"{where}: field {key!r} must be {kind} in [{lo}, {hi}], got {value!r}")
    return value


def _behaviour(d: Any, name: str, where: str) -> Behaviour:
    if not isinstance(d, dict):
        raise ValueError(f"{where}: expected a mapping with speed_scale and command, got {d!r}")
    known = {"speed_scale", "command", "priority", "enter_count", "min_score"}
    unknown = set(d) - known
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {sorted(unknown)}; known: {sorted(known)}")
    if "speed_scale" not in d or "command" not in d:
        raise ValueError(f"{where}: needs both 'speed_scale' and 'command', got {sorted(d)}")
    if not isinstance(d["command"], str):
        raise ValueError(f"{where}: field 'command' must be a string, got {d['command']!r}")
    return Behaviour(
        name=name,
        speed_scale=float(_number(d, "speed_scale", 1.0, where, 0.0, 1.0)),
        command=d["command"],
        priority=int(_number(d, "priority", 0, where, -1000, 1000, integer=True)),
        enter_count=int(_number(d, "enter_count", 1, where, 1, 1000, integer=True))
        if "enter_count" in d
        else None,
        min_score=float(_number(d, "min_score", 0.0, where, 0.0, 1.0)) if "min_score" in d else None,
    )


@dataclass
class CollaborationStateMachine:
    """Feed it recogniser updates (`on_actions`) and clock ticks (`tick`); read `state` and `reason`.

    Fail-safe rules. The safe behaviour holds before the first recognition; at once when an update
    says the recogniser is in error (or does not say it is healthy); and whenever no valid, fresh
    update came for `stale_after_s` (the recogniser stopped, its stamps are too old, or its input is
    invalid). Leaving it needs recognitions of real people: `enter_count` confirmations for a rule,
    `exit_count` for the default. Valid updates without recognitions (heartbeats between windows, or
    nobody in view) keep the input fresh but confirm nothing, so the default behaviour is never
    reached on heartbeats alone.
    """

    table: CollaborationTable
    state: Behaviour = field(init=False)
    reason: str = field(init=False, default="no input yet")
    last_input: float | None = field(init=False, default=None)  # arrival of the last valid fresh update
    _fault: str = field(init=False, default="")  # why the last update was not valid input
    _latest: dict[str, tuple[float, Any]] = field(init=False, default_factory=dict)  # person -> recent
    _candidate: Behaviour | None = field(init=False, default=None)
    _candidate_count: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.state = self.table.safe

    def propose(self, actions: Iterable[Any]) -> tuple[Behaviour, str]:
        """The behaviour these recognitions ask for (objects with .label and .score) and why."""
        best: tuple[Behaviour, str] | None = None
        for a in actions:
            rule = self.table.rules.get(str(a.label))
            if rule is None:
                continue
            threshold = self.table.min_score if rule.min_score is None else rule.min_score
            if float(a.score) < threshold:
                continue
            if best is None or rule.priority > best[0].priority:
                best = (rule, f"{a.label} ({float(a.score):.2f}) by person {getattr(a, 'person_id', '?')}")
        return best or (self.table.default, "no mapped action")

    def on_actions(
        self, now: float, stamp: float, actions: Iterable[Any], status: str = "ok", detail: str = ""
    ) -> Behaviour:
        """One recogniser update, stamped with its newest input, received at `now`.

        `status` is the recogniser's health at that update: "ok" (valid input processed),
        "invalid_input" (not fresh input: the safe behaviour follows once nothing valid came for
        `stale_after_s`), anything else ("error", "unknown"): the safe behaviour at once.
        """
        if status not in ("ok", "invalid_input"):
            self._fault = f"recogniser {status}" + (f": {detail}" if detail else "")
            self.last_input = None  # only new recognitions bring the robot out of safe
            return self._go_safe(self._fault)
        age = now - stamp
        if status != "ok":
            self._fault = "invalid input" + (f": {detail}" if detail else "")
            return self.tick(now)
        if not math.isfinite(age) or abs(age) > self.table.stale_after_s:
            # too old, NaN, or from further in the future than clock skew explains: not fresh input
            self._fault = "recognitions too old or from the future"
            return self.tick(now)
        self.last_input, self._fault = now, ""
        actions = list(actions)
        if not actions:  # a heartbeat: fresh, but no evidence about anyone
            return self.state
        for a in actions:
            self._latest[str(getattr(a, "person_id", "?"))] = (now, a)
        self._latest = {p: v for p, v in self._latest.items() if now - v[0] <= self.table.stale_after_s}
        proposed, why = self.propose(a for _, a in self._latest.values())
        if proposed == self.state:
            self._candidate, self._candidate_count = None, 0
            return self.state
        if proposed == self._candidate:
            self._candidate_count += 1
        else:
            self._candidate, self._candidate_count = proposed, 1
        if proposed is self.table.default:
            needed = self.table.exit_count
        else:
            needed = self.table.enter_count if proposed.enter_count is None else proposed.enter_count
        if self._candidate_count >= needed:
            self.state, self.reason = proposed, why
            self._candidate, self._candidate_count = None, 0
        return self.state

    def tick(self, now: float) -> Behaviour:
        """Clock tick: the safe behaviour at once when no valid fresh input came for stale_after_s."""
        if self.last_input is None:
            return self._go_safe(self._fault or "no input yet")
        if now - self.last_input > self.table.stale_after_s:
            why = f" (last update: {self._fault})" if self._fault else ""
            return self._go_safe(f"stale: no fresh valid recogniser update{why}")
        return self.state

    def _go_safe(self, reason: str) -> Behaviour:
        self.state, self.reason = self.table.safe, reason
        self._candidate, self._candidate_count = None, 0
        self._latest.clear()
        return self.state
