"""`python -m tkv_ha` (or `tkv-ha`): the failover agent, and the operator's one command.

    tkv-ha agent                       run the agent beside one node (supervised)
    tkv-ha status [-o json]            leader, lease, maintenance, each node's role and lag
    tkv-ha switchover NODE             planned: hand leadership to NODE, losing nothing
    tkv-ha maintenance on|off          pause / resume automatic failover

Settings come from the environment (docs/high-availability.md); the operator's commands
need TKV_ETCD_ENDPOINTS and TKV_HA_PEERS (every node's agent, name=host:port,...).
"""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    main()
