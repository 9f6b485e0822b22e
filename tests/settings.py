"""Test settings: the real settings with a few overrides.

The database and broker still come from the environment (``DATABASE_URL``,
``CELERY_BROKER_URL``) so CI runs the suite against PostgreSQL and Redis. Tasks
run eagerly unless a test uses the ``live_worker`` fixture (tests/conftest.py),
which sends them through the real broker to a real worker process.
"""

import os

os.environ.setdefault("DJANGO_DEBUG", "1")
os.environ.setdefault("DERMGAN_VAR_DIR", os.path.join(os.path.dirname(__file__), "..", "var", "test"))

from turingtest.settings import *  # noqa: E402,F403
from turingtest.settings import VAR_DIR  # noqa: E402

# The worker process started by tests sets TEST_CELERY_EAGER=0 so it consumes for real.
CELERY_TASK_ALWAYS_EAGER = os.environ.get("TEST_CELERY_EAGER", "1") == "1"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MEDIA_ROOT = VAR_DIR / "media"
AXES_ENABLED = False
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}  # noqa: F405
