"""The thin Celery task of training jobs (queue ``gpu``): run one segment, retry while busy.

Only ``services`` imports this module (and the task re-sends itself for the next segment).
Acknowledged late and rejected when the worker dies, so a killed worker's segment comes
back and resumes from the last stored checkpoint once the dead one's lease has expired.
"""

from __future__ import annotations

from celery import shared_task

from turingtest import queue
from turingtest.training.runs import segment_run

QUEUE = "gpu"


def segment_send(job_pk: int, segment: int):
    return train_segment.apply_async(kwargs={"job_pk": job_pk, "segment": segment}, queue=QUEUE)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def train_segment(self, *, job_pk: int, segment: int) -> str:
    if self.request.is_eager or queue.is_eager():
        # No broker to chain through (the embedded default, tests): run the segments here, in turn.
        outcome = segment_run(job_pk=job_pk, segment=segment)
        while outcome.next_segment is not None:
            outcome = segment_run(job_pk=job_pk, segment=outcome.next_segment)
        return outcome.status
    outcome = segment_run(job_pk=job_pk, segment=segment, send_next=lambda n: segment_send(job_pk, n))
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in)
    return outcome.status
