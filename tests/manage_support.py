"""Run ``manage.py`` in a fresh process, so settings are read from a chosen environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION_ENV = {
    "DJANGO_SECRET_KEY": "x" * 20 + "a-long-random-production-secret-value-0123456789",
    "DJANGO_ALLOWED_HOSTS": "example.org",
}


def run_manage(args: list[str], env_overrides: dict[str, str]) -> subprocess.CompletedProcess:
    """``manage.py ARGS`` with no ``DJANGO_*`` or broker variable inherited from the test run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.pop("CELERY_BROKER_URL", None)
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
