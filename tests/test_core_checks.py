"""The deploy check that says what to run when static files were never collected."""

from __future__ import annotations

import json

from django.test import override_settings

from tests.manage_support import PRODUCTION_ENV, run_manage
from turingtest.core.checks import static_manifest_check

MANIFEST_STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "turingtest.core.staticfiles.ModuleManifestStaticFilesStorage"},
}


def _write_manifest(static_root) -> None:
    static_root.mkdir(parents=True, exist_ok=True)
    manifest = {"version": "1.1", "hash": "abc", "paths": {"css/site.css": "css/site.0123abcd.css"}}
    (static_root / "staticfiles.json").write_text(json.dumps(manifest))


def test_without_a_manifest_the_check_names_the_file_and_collectstatic(tmp_path):
    with override_settings(DEBUG=False, STATIC_ROOT=tmp_path, STORAGES=MANIFEST_STORAGES):
        (message,) = static_manifest_check()
    assert message.id == "core.I001"
    assert str(tmp_path / "staticfiles.json") in message.msg
    assert "manage.py collectstatic --noinput" in message.msg


def test_with_a_manifest_or_in_development_the_check_is_silent(tmp_path):
    _write_manifest(tmp_path)
    with override_settings(DEBUG=False, STATIC_ROOT=tmp_path, STORAGES=MANIFEST_STORAGES):
        assert static_manifest_check() == []
    with override_settings(DEBUG=True, STATIC_ROOT=tmp_path / "empty", STORAGES=MANIFEST_STORAGES):
        assert static_manifest_check() == []


def test_check_deploy_prints_the_missing_manifest_but_passes_ci_fail_level_warning(tmp_path):
    # CI runs `check --deploy --fail-level WARNING` from a fresh checkout, before any collectstatic:
    # the message shows there, the exit status stays 0; `--fail-level INFO` makes it fatal.
    env = {**PRODUCTION_ENV, "STATIC_ROOT": str(tmp_path / "static")}
    result = run_manage(["check", "--deploy", "--fail-level", "WARNING"], env)
    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert "core.I001" in output and "manage.py collectstatic" in output
    strict = run_manage(["check", "--deploy", "--fail-level", "INFO"], env)
    assert strict.returncode != 0 and "core.I001" in strict.stderr + strict.stdout


def test_collectstatic_itself_is_not_stopped_by_the_missing_manifest(tmp_path):
    result = run_manage(
        ["collectstatic", "--noinput", "-v", "0"], {**PRODUCTION_ENV, "STATIC_ROOT": str(tmp_path)}
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "staticfiles.json").exists()
