"""The rating page's ES modules after ``collectstatic`` with the production storage.

In production every static file gets a content-hashed name. The entry module is found
through the manifest ({% static %}), but the modules find each other by relative URL, so
those references must be rewritten to the hashed names too
(turingtest/core/staticfiles.py), or a browser could mix two releases' modules.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.test import override_settings

SOURCE = Path(settings.BASE_DIR) / "turingtest" / "static"
MODULE_REFERENCE = re.compile(r'^import .* from "\./([^"]+)";$', re.MULTILINE)


def test_hashed_rating_modules_refer_to_each_other_by_their_hashed_names(tmp_path: Path) -> None:
    storages = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "turingtest.core.staticfiles.ModuleManifestStaticFilesStorage"},
    }
    with override_settings(STATIC_ROOT=tmp_path, STORAGES=storages):
        call_command("collectstatic", interactive=False, verbosity=0)

    manifest = json.loads((tmp_path / "staticfiles.json").read_text())["paths"]
    modules = {name: hashed for name, hashed in manifest.items() if name.startswith("js/rate/")}
    assert "js/rate/main.js" in modules
    n_references = 0
    for name, hashed in modules.items():
        wanted = [modules[f"js/rate/{ref}"] for ref in MODULE_REFERENCE.findall((SOURCE / name).read_text())]
        found = [f"js/rate/{ref}" for ref in MODULE_REFERENCE.findall((tmp_path / hashed).read_text())]
        assert found == wanted, name
        n_references += len(found)
    assert n_references >= 4, "main.js alone refers to four modules"
