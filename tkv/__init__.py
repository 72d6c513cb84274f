"""Generated protobuf and gRPC code for protos/tkv (tkv.auth.v1, tkv.kv.v1, tkv.internal.v1).

Everything below this file is written by `scripts/gen_protos.py` (`make gen`) and is not
committed; never edit it by hand.
"""
