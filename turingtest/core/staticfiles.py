"""Production static files storage: hashed, compressed names that ES modules follow too.

The rating page is a handful of ES modules (``static/js/rate/``) that load each other by
relative URL (``import { createView } from "./view.js";``). Django's manifest storage
gives every file a content-hashed name, but it rewrites such module references only when
``support_js_module_import_aggregation`` is on. Without it, ``main.<hash>.js`` would ask
for the unhashed ``view.js``: served as well, but cached briefly and not pinned to a
version, so a browser could run one release's entry module with another release's view.

Django's patterns need each module reference to end with a semicolon (the modules in
``static/js/rate/`` keep to that); ``collectstatic`` fails on a reference to a file that
does not exist, so a broken one shows at deploy time (tests/test_static_modules.py).
"""

from __future__ import annotations

from whitenoise.storage import CompressedManifestStaticFilesStorage


class ModuleManifestStaticFilesStorage(CompressedManifestStaticFilesStorage):
    """WhiteNoise's compressed manifest storage, rewriting ES module references to hashed names."""

    support_js_module_import_aggregation = True
