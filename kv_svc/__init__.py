"""kv_svc: batch reads and writes of JSON values, for holders of a valid token."""
