"""System checks for a production deployment (``manage.py check --deploy``)."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import CheckMessage, Info, Tags, register

from turingtest.core.health import check_static_files


@register(Tags.staticfiles, deploy=True)
def static_manifest_check(app_configs=None, **kwargs) -> list[CheckMessage]:
    """Without ``collectstatic`` the manifest storage cannot name any static file: every page is a 500.

    Level INFO, not WARNING: the check is only meaningful after ``collectstatic``, and the
    deployment order runs ``check --deploy --fail-level WARNING`` where there may be no
    static files yet (CI does, from a fresh checkout). INFO still prints the message, and
    ``/readyz`` answers 503 with the same message while the manifest is missing.
    ``deploy=True`` keeps it out of ``collectstatic``'s own checks (tag ``staticfiles``),
    which must run before the manifest exists.
    """
    if settings.DEBUG:
        return []
    result = check_static_files()
    if result["ok"]:
        return []
    return [
        Info(
            f"Static files are not collected: {result['error']}.",
            hint="Until then every page fails with a 500 (missing staticfiles manifest entry). Order: "
            "migrate, collectstatic, check --deploy, then start the web server.",
            id="core.I001",
        )
    ]
