"""The history checker (tests/ha/history.py) catches the faults it exists for, on
histories made by hand: each rule fails on its fault and passes without it."""

from tests.ha.history import (
    ACKED,
    UNKNOWN,
    History,
    Op,
    ProbeRound,
    acked_writes_survive,
    check,
    no_stale_reads,
    old_master_after_new,
    one_writer_at_a_time,
    reads_going_back,
    versions_increase,
)


def write(key, value, version, start, end, outcome=ACKED):
    return Op("c", "write", key, value, version, start, end, outcome)


def read(key, value, version, start, end):
    return Op("c", "read", key, value, version, start, end, ACKED)


def test_a_clean_history_passes():
    history = History([write("k", 1, 10, 0, 1), read("k", 1, 10, 2, 3), write("k", 2, 11, 4, 5)])
    history.rounds = [ProbeRound(0, 0.1, ["n1"]), ProbeRound(1, 1.1, []), ProbeRound(2, 2.1, ["n2"])]
    assert check(history, {"k": 2}) == []


def test_a_version_going_back_is_caught():
    assert versions_increase(History([write("k", 1, 10, 0, 1), write("k", 2, 9, 2, 3)]))
    assert versions_increase(History([write("a", 1, 10, 0, 1), write("b", 2, 10, 2, 3)]))  # one revision twice
    # Concurrent writes may land in either order.
    assert not versions_increase(History([write("k", 1, 10, 0, 2), write("k", 2, 9, 1, 3)]))


def test_a_lost_acknowledged_write_is_caught():
    history = History([write("k", 1, 10, 0, 1)])
    assert acked_writes_survive(history, {})
    assert acked_writes_survive(history, {"k": 0})
    assert not acked_writes_survive(history, {"k": 1})
    # A later write whose outcome is unknown may be what is stored.
    history.ops.append(write("k", 2, None, 2, 3, outcome=UNKNOWN))
    assert not acked_writes_survive(history, {"k": 2})


def test_a_stale_read_is_caught():
    assert no_stale_reads(History([write("k", 2, 11, 0, 1), read("k", 1, 10, 2, 3)]))
    assert no_stale_reads(History([write("k", 2, 11, 0, 1), read("k", None, None, 2, 3)]))
    assert not no_stale_reads(History([write("k", 2, 11, 0, 2), read("k", 1, 10, 1, 3)]))


def test_two_writable_nodes_at_once_are_caught():
    assert one_writer_at_a_time(History(rounds=[ProbeRound(0, 0.1, ["n1", "n2"])]))
    history = History(rounds=[ProbeRound(0, 0.1, ["n2"]), ProbeRound(1, 1.1, ["n1"])])
    assert old_master_after_new(history, old="n1", new="n2")
    assert not old_master_after_new(history, old="n2", new="n1")


def test_a_read_going_back_is_reported():
    assert reads_going_back(History([read("k", 2, 11, 0, 1), read("k", 1, 10, 2, 3)]))
    assert not reads_going_back(History([read("k", 1, 10, 0, 1), read("k", 2, 11, 2, 3)]))
