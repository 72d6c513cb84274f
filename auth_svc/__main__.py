"""Run auth_svc: `python -m auth_svc` (settings from TKV_* environment variables)."""

from tkv_common.server import run_main

from .config import AuthSettings
from .server import create_service

if __name__ == "__main__":
    run_main("auth_svc", AuthSettings.from_env, create_service)
