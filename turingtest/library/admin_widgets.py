"""Small pieces of admin HTML shared by the library's admin modules."""

from __future__ import annotations

from django.utils.html import format_html


def progress_bar(*, url: str, done: int, total: int, label: str) -> str:
    # ``label`` is the status as a person reads it ("Succeeded", "Finished with 2 errors").
    # <progress> needs no inline style (the site's CSP forbids it); static/js/batch-progress.js polls ``url``.
    return format_html(
        '<progress class="library-progress" data-progress-url="{}" value="{}" max="{}"></progress> '
        '<span class="library-progress-label" data-progress-label="{}">{} / {} · {}</span>',
        url,
        done,
        max(total, 1),
        url,
        done,
        total,
        label,
    )
