"""The collaboration table's state machine: mapping, priorities, min score, hysteresis, and failing safe on
stale, invalid or missing input and on a recogniser in error."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from masksem_ros.collaboration import CollaborationStateMachine, CollaborationTable

TABLE = Path(__file__).resolve().parents[1] / "config" / "collaboration_table.yaml"


def act(label: str, score: float = 0.9, pid: str = "1") -> SimpleNamespace:
    return SimpleNamespace(label=label, score=score, person_id=pid)


@pytest.fixture
def sm() -> CollaborationStateMachine:
    return CollaborationStateMachine(CollaborationTable.from_yaml(TABLE))


def test_shipped_table_loads():
    t = CollaborationTable.from_yaml(TABLE)
    assert set(t.rules) == {"stop_palm", "handover_reach", "wave"}
    assert t.safe.speed_scale == 0.0 and t.default.speed_scale == 1.0
    assert t.rules["handover_reach"].speed_scale == 0.3 and t.rules["stop_palm"].enter_count == 1


def idle(sm, times) -> list[str]:
    """A person seen doing nothing mapped (the background class `no_action`) at each time."""
    return [sm.on_actions(t, t, [act("no_action")]).name for t in times]


def test_safe_until_first_recognitions_then_hysteresis_to_default(sm):
    assert sm.tick(0.0).name == "safe" and sm.reason == "no input yet"
    # default needs exit_count (3) consecutive recognitions of real people, e.g. no_action
    assert idle(sm, (0.1, 0.2, 0.3)) == ["safe", "safe", "default"]
    assert sm.state.command == "resume"


def test_heartbeats_alone_never_leave_safe(sm):
    """Valid updates without recognitions (between windows, nobody in view) keep the input fresh but
    are no evidence: the robot stays safe however many arrive."""
    assert [sm.on_actions(t / 30, t / 30, []).name for t in range(300)] == ["safe"] * 300
    assert sm.tick(10.0).name == "safe" and sm.last_input == pytest.approx(299 / 30)


def test_heartbeats_between_windows_do_not_break_hysteresis(sm):
    """Recognitions come once a stride (here every 5th update), empty heartbeats in between: the
    confirmations still add up (they used to be reset by every heartbeat)."""
    idle(sm, (0.1, 0.2, 0.3))
    names = []
    for k in range(12):
        t = 0.4 + k / 30
        names.append(sm.on_actions(t, t, [act("wave")] if k % 5 == 0 else []).name)
    assert names[:5] == ["default"] * 5 and names[5:] == ["wave"] * 7


def test_recogniser_error_is_safe_at_once_and_needs_new_recognitions(sm):
    idle(sm, (0.1, 0.2, 0.3))
    assert sm.state.name == "default"
    assert sm.on_actions(0.4, 0.4, [], "error", "cannot load model bundle '/x'").name == "safe"
    assert sm.reason == "recogniser error: cannot load model bundle '/x'"
    # heartbeats after the error are not enough; recognitions of a person bring it back with hysteresis
    assert [sm.on_actions(t, t, []).name for t in (0.5, 0.6, 0.7)] == ["safe"] * 3
    assert sm.tick(0.8).name == "safe"
    assert idle(sm, (0.9, 1.0, 1.1)) == ["safe", "safe", "default"]


@pytest.mark.parametrize("status", ["unknown", "error", "something_new"])
def test_an_update_that_does_not_say_ok_is_safe_even_with_actions(sm, status):
    idle(sm, (0.1, 0.2, 0.3))
    assert sm.on_actions(0.4, 0.4, [act("wave")] * 3, status).name == "safe"


def test_malformed_only_input_goes_safe_within_stale_after_s(sm):
    idle(sm, (0.1, 0.2, 0.3))
    # occasional invalid frames among valid ones change nothing
    assert sm.on_actions(0.35, 0.35, [], "invalid_input", "non_finite 1").name == "default"
    # then only invalid frames: safe once no valid input came for stale_after_s (1 s)
    names = {t: sm.on_actions(t, t, [], "invalid_input", "non_finite 1").name for t in (0.6, 1.2, 1.31, 2.0)}
    assert names == {0.6: "default", 1.2: "default", 1.31: "safe", 2.0: "safe"}
    assert sm.reason == "stale: no fresh valid recogniser update (last update: invalid input: non_finite 1)"
    # invalid input with stamps and actions claimed is still not evidence
    assert sm.on_actions(2.1, 2.1, [act("no_action")] * 5, "invalid_input").name == "safe"


def test_highest_priority_wins_between_people_recognised_at_different_updates(sm):
    """Person 2's windows fall between person 1's: the stop of person 2 holds while person 1 idles."""
    idle(sm, (0.1, 0.2, 0.3))
    for k in range(6):
        t = 0.4 + 0.1 * k
        who = act("stop_palm", 0.9, "2") if k % 2 else act("no_action", 0.9, "1")
        sm.on_actions(t, t, [who])
    assert sm.state.name == "stop_palm" and "person 2" in sm.reason
    # person 2 leaves: their last recognition ages out after stale_after_s, person 1 idles on
    names = idle(sm, [1.0 + 0.3 * k for k in range(8)])
    assert names[0] == "stop_palm" and names[-1] == "default"


def test_enter_count_min_score_and_priority(sm):
    idle(sm, (0.1, 0.2, 0.3))
    # below the table's min score: ignored; one confident wave is not enough (enter_count 2)
    assert sm.on_actions(0.4, 0.4, [act("wave", 0.59)]).name == "default"
    assert sm.on_actions(0.5, 0.5, [act("wave")]).name == "default"
    assert sm.on_actions(0.6, 0.6, [act("wave")]).name == "wave"
    assert sm.state.command == "greet" and "wave" in sm.reason
    # unknown labels are ignored; a stop from another person wins by priority, immediately (enter_count 1)
    assert (
        sm.on_actions(0.7, 0.7, [act("wave"), act("dance"), act("stop_palm", 0.7, "2")]).name == "stop_palm"
    )
    assert sm.state.speed_scale == 0.0 and "person 2" in sm.reason


def test_flicker_does_not_switch(sm):
    idle(sm, (0.1, 0.2, 0.3))
    reach, idle_ = [act("handover_reach")], [act("no_action")]
    seq = [reach, idle_, reach, idle_, reach]
    names = [sm.on_actions(0.4 + 0.1 * i, 0.4 + 0.1 * i, a).name for i, a in enumerate(seq)]
    assert names == ["default"] * 5
    sm.on_actions(1.0, 1.0, reach)
    assert sm.state.name == "handover_reach" and sm.state.speed_scale == 0.3
    # leaving needs exit_count updates without it; an interruption restarts the count
    names = [sm.on_actions(t, t, a).name for t, a in [(1.1, idle_), (1.2, idle_), (1.3, reach)]]
    assert names == ["handover_reach"] * 3
    assert idle(sm, (1.4, 1.5, 1.6)) == ["handover_reach", "handover_reach", "default"]


def test_stale_input_goes_safe_at_once_and_recovers_with_hysteresis(sm):
    idle(sm, (0.1, 0.2, 0.3))
    assert sm.tick(1.2).name == "default"  # 0.9 s since the last input: still fresh
    assert sm.tick(1.31).name == "safe" and sm.reason.startswith("stale")
    # old messages (stamp more than stale_after_s before now) do not count as fresh input
    assert sm.on_actions(5.0, 3.5, [act("no_action")]).name == "safe"
    assert sm.last_input == 0.3
    assert [sm.on_actions(t, t, [act("wave")]).name for t in (5.1, 5.2)] == ["safe", "wave"]


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"min_score": 1.5}, r"'min_score' must be a number in \[0.0, 1.0\], got 1.5"),
        ({"rules": {"wave": {"speed_scale": 2, "command": "greet"}}}, "rules.wave: field 'speed_scale'"),
        ({"rules": {"wave": {"command": "greet"}}}, "rules.wave: needs both"),
        ({"enter_count": 0}, "'enter_count' must be an integer"),
        ({"safety": {}}, r"unknown field\(s\) \['safety'\]"),
        ({"rules": {}}, "'rules' must be a non-empty mapping"),
    ],
)
def test_bad_tables_name_the_field(tmp_path, patch, message):
    data = yaml.safe_load(TABLE.read_text())
    data.update(patch)
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match=message) as err:
        CollaborationTable.from_yaml(path)
    assert str(path) in str(err.value)


def test_nan_and_far_future_stamps_are_not_fresh_input() -> None:
    """A broken clock must not keep the robot out of its safe state."""
    import math

    from masksem_ros.collaboration import CollaborationStateMachine, CollaborationTable

    table = CollaborationTable.from_dict(
        {
            "stale_after_s": 1.0,
            "enter_count": 1,
            "exit_count": 1,
            "safe": {"speed_scale": 0.0, "command": "pause"},
            "default": {"speed_scale": 1.0, "command": "resume"},
            "rules": {"stop_palm": {"speed_scale": 0.0, "command": "pause"}},
        }
    )
    sm = CollaborationStateMachine(table)
    assert sm.on_actions(10.0, math.nan, []) is table.safe
    assert sm.last_input is None
    assert sm.on_actions(10.0, 10.0 + 60.0, []) is table.safe  # a minute in the future
    assert sm.last_input is None
    sm.on_actions(10.0, 9.9, [])  # a sane stamp is fresh input
    assert sm.last_input == 10.0
