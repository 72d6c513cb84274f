"""Runtime code both services share: settings helpers, logging, errors and their gRPC
mapping, interceptors, token verification, the Tarantool client and server bootstrap."""
