"""Run kv_svc: `python -m kv_svc` (settings from TKV_* environment variables)."""

from tkv_common.server import run_main

from .config import KvSettings
from .server import create_service

if __name__ == "__main__":
    run_main("kv_svc", KvSettings.from_env, create_service)
