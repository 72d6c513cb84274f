"""A planned switchover's demoted leader keeps its synchronous queue, and says it is settled
only once every transaction in it is decided (tarantool/tkv/ha.lua demote): the agent hands
leadership over on that word (tkv_ha/agent.py), so a word given early lets the target lead
while the old leader may still write a CONFIRM or ROLLBACK the target never gets.

One real Tarantool started from tarantool/init.lua, driven through its admin console: a
write to a synchronous space waits for a quorum of 2 that no replica can give, and the node
is demoted with the queue kept."""

from __future__ import annotations

import pytest

from tests.stack import Stack, tarantool, wait_until

pytestmark = pytest.mark.slow

# Long enough that the first look after the demotion comes well before the waiting write
# times out, on a loaded machine too.
SYNCHRO_TIMEOUT_S = 5


@pytest.fixture
def node(tmp_path):
    stack = Stack(tmp_path)
    process = tarantool(stack).start()
    stack.console(
        "(function() box.schema.space.create('kept_queue_probe', {is_sync = true}):create_index('pk') "
        f"box.cfg({{replication_synchro_quorum = 2, replication_synchro_timeout = {SYNCHRO_TIMEOUT_S}}}) "
        "return true end)()"
    )
    # The write's outcome, kept in a global the console can read.
    stack.console(
        "(function() rawset(_G, 'probe_write', 'waiting') require('fiber').create(function() "
        "local ok = pcall(box.space.kept_queue_probe.insert, box.space.kept_queue_probe, {1}) "
        "rawset(_G, 'probe_write', ok and 'committed' or 'rolled back') end) return true end)()"
    )
    assert stack.console("probe_write") == "waiting"
    assert stack.console("require('tkv.ha').demote('a planned switchover (test)', true)") == "true"
    yield stack
    process.stop()


def settled(node) -> str:
    return node.console("require('tkv.ha').state().queue_settled")


def test_the_queue_is_settled_only_once_the_waiting_write_is_rolled_back(node):
    assert (settled(node), node.console("probe_write")) == ("false", "waiting")
    wait_until(lambda: settled(node) == "true", "the kept queue settled", timeout=SYNCHRO_TIMEOUT_S + 10)
    assert node.console("probe_write") == "rolled back"


def test_the_queue_is_settled_once_the_waiting_write_is_confirmed(node):
    assert (settled(node), node.console("probe_write")) == ("false", "waiting")
    # The quorum the write waits for is reached: it is confirmed, and the queue is empty.
    node.console("(function() box.cfg({replication_synchro_quorum = 1}) return true end)()")
    wait_until(lambda: settled(node) == "true", "the kept queue settled", timeout=SYNCHRO_TIMEOUT_S)
    assert node.console("probe_write") == "committed"
