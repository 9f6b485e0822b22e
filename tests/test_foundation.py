from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from tests.manage_support import PRODUCTION_ENV, run_manage
from turingtest.library.models import Condition

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.django_db
def test_the_taxonomy_fixture_covers_common_and_rare_conditions():
    call_command("loaddata", "fixtures/conditions.json", verbosity=0)
    codes = set(Condition.objects.values_list("code", flat=True))
    assert {"MEL", "BCC", "SCC", "AK", "SEK", "NEV", "ECZ", "PSO", "ACN", "TIN", "URT", "VIT", "OTH"} <= codes
    assert Condition.objects.get(code="MEL").is_malignant
    assert Condition.objects.filter(is_rare=True).exists()


def test_production_mode_refuses_to_start_without_a_secret_key():
    result = run_manage(["check"], {"DJANGO_ALLOWED_HOSTS": "example.org"})
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is required" in result.stderr


def test_check_deploy_is_clean_in_production_mode_after_collectstatic(tmp_path):
    (tmp_path / "staticfiles.json").write_text('{"version": "1.1", "paths": {"a.css": "a.0123.css"}}')
    result = run_manage(
        ["check", "--deploy", "--fail-level", "WARNING"], {**PRODUCTION_ENV, "STATIC_ROOT": str(tmp_path)}
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_without_a_broker_tasks_run_eagerly_and_never_fall_back_to_amqp():
    result = run_manage(
        [
            "shell",
            "-c",
            "from turingtest.celery import app; print(app.conf.task_always_eager, app.conf.broker_url)",
        ],
        {"DJANGO_DEBUG": "1"},
    )
    assert result.returncode == 0, result.stderr
    assert "True memory://" in result.stdout


def test_the_generator_package_never_imports_django():
    source = "\n".join(p.read_text() for p in (ROOT / "generator").rglob("*.py"))
    for forbidden in ("import django", "from django", "import celery", "from celery", "turingtest"):
        assert forbidden not in source
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, generator; import generator.__init__; "
            "print(any(m.split('.')[0] in {'django','celery','turingtest'} for m in sys.modules))",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == "False"
