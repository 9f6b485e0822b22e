"""What an admin page says after it started a long job (a batch, an import, a run, a training job).

Without a broker (the embedded default) tasks run eagerly, so by the time the page answers
the job may already have finished or failed: the message says which, with the time it took,
and links to the job's page, instead of a "queued" that is no longer true.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest
from django.utils.html import format_html

FINISHED_OK = {"succeeded"}
NOT_STARTED = {"queued", "running"}


def _took(job) -> str:
    start = getattr(job, "started", None) or getattr(job, "created", None)
    end = getattr(job, "finished", None)
    if start is None or end is None:
        return ""
    return f" in {max((end - start).total_seconds(), 0.0):.1f} s"


def job_message(request: HttpRequest, *, job, label: str, url: str, summary: str = "") -> None:
    """Tell the admin what became of ``job`` (a row with ``status``, ``error`` and times), linked to ``url``.

    ``summary`` is a short result to add when it finished (e.g. "2 images imported").
    """
    # An eager task ran to the end when the transaction that created the row committed, so the
    # caller's copy of the row may still say "queued": read what the task wrote.
    job.refresh_from_db()
    name = format_html('<a href="{}">{} {}</a>', url, label, job.pk)
    outcome = getattr(job, "outcome", None) or job.get_status_display()
    status = job.status
    if status == "failed":
        messages.error(request, format_html("{} failed{}: {}", name, _took(job), job.error or "see its page"))
    elif status in NOT_STARTED:
        where = "is running" if status == "running" else "is queued"
        messages.success(request, format_html("{} {}: its page shows the progress.", name, where))
    elif status in FINISHED_OK and outcome == job.get_status_display():
        tail = f": {summary}" if summary else "."
        messages.success(request, format_html("{} finished{}{}", name, _took(job), tail))
    else:  # cancelled, or finished with rejected rows: done, but not simply a success
        tail = f" ({summary})" if summary else ""
        messages.warning(request, format_html("{}: {}{}{}.", name, outcome.lower(), _took(job), tail))
