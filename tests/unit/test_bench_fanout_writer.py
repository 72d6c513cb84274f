"""The fan-out benchmark's wait for its writer process (bench/fanout.py): a writer that
dies or goes silent fails the run at once or after the timeout, never hangs `make bench`."""

from __future__ import annotations

import multiprocessing

import pytest

from bench import fanout


def test_a_writer_that_went_away_fails_the_wait_at_once():
    ours, theirs = multiprocessing.Pipe()
    theirs.close()  # as when the writer process dies: no one holds its end
    with pytest.raises(EOFError):
        fanout._receive(ours, 5)


def test_a_silent_writer_fails_the_wait_after_the_timeout():
    ours, theirs = multiprocessing.Pipe()
    with pytest.raises(TimeoutError, match="sent nothing for 0 s"):
        fanout._receive(ours, 0.05)
    theirs.send("ready")
    assert fanout._receive(ours, 1) == "ready"
