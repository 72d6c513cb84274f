"""Automatic failover of a Tarantool replica set, decided by etcd (docs/high-availability.md)."""
