"""Check a restored database and media store against each other, after a backup is restored.

A restore can look healthy (pages answer) while a study's frozen design or the files behind
it were not restored with it: a media sync older than the database dump, a bucket version
rolled back, a half-copied file. This checks what a study's results depend on:

* every opened study (open, paused, closed) still hashes to the design it was opened with
  (``study_verify_frozen``), so its items, anchors and settings are the ones raters saw;
* every library image's file exists in storage and its bytes match the stored ``sha256``;
  an image's mask, when it has one, exists.

Exits non-zero (``CommandError``) listing every problem found; prints one line per check.
"""

from __future__ import annotations

import hashlib

from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand, CommandError

from turingtest.library.models import Image
from turingtest.studies.models import Study
from turingtest.studies.services import study_verify_frozen


def _file_sha256(name: str) -> str:
    digest = hashlib.sha256()
    with default_storage.open(name, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def studies_problems() -> tuple[int, list[str]]:
    studies = Study.objects.exclude(status=Study.Status.DRAFT).order_by("pk")
    problems = [
        f"study {study.pk} ({study.title!r}, {study.status}): design no longer matches its frozen hash"
        for study in studies
        if not study_verify_frozen(study=study)
    ]
    return studies.count(), problems


def images_problems() -> tuple[int, list[str]]:
    problems: list[str] = []
    n = 0
    for image in Image.objects.order_by("pk").only("pk", "file", "mask", "sha256").iterator():
        n += 1
        name = image.file.name
        if not name or not default_storage.exists(name):
            problems.append(f"image {image.pk}: file {name!r} missing from storage")
        elif _file_sha256(name) != image.sha256:
            problems.append(f"image {image.pk}: file {name!r} does not match its sha256")
        if image.mask and not default_storage.exists(image.mask.name):
            problems.append(f"image {image.pk}: mask {image.mask.name!r} missing from storage")
    return n, problems


class Command(BaseCommand):
    help = "After restoring a backup: check opened studies' frozen designs and every image file's sha256."

    def handle(self, *args, **options):
        n_studies, study_problems = studies_problems()
        self.stdout.write(f"studies: {n_studies} opened, {len(study_problems)} with a changed design")
        n_images, image_problems = images_problems()
        self.stdout.write(f"images: {n_images} checked, {len(image_problems)} missing or altered")
        problems = study_problems + image_problems
        if problems:
            raise CommandError("restore verification failed:\n" + "\n".join(problems))
        self.stdout.write("restore verified")
