"""Importing real datasets: manifest formats (plain manifest, PAD-UFES-20, ISIC) and import jobs.

``images_import`` validates every row first (each bad row reported with its CSV line),
then stores the good ones in one transaction, so an import is all or nothing and a
second run imports nothing twice. ``import_job_run`` is what the ``import_images`` task
runs for an admin-uploaded zip.
"""

from __future__ import annotations

import csv
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from PIL import ImageOps

from turingtest.core.failures import job_failure_notify
from turingtest.images import ImageError, NormalizedImage, normalize, open_image
from turingtest.library.archives import archive_extract, file_copy_sha256
from turingtest.library.models import Image, ImportJob
from turingtest.library.store import ConditionLookup, LibraryError, files_delete, files_write, image_fields
from turingtest.trail.services import Action, event_record

logger = logging.getLogger(__name__)

IMPORT_FORMATS = ("auto", "manifest", "pad-ufes-20", "isic")
_ROMAN = {"i": 1, "ii": 2, "iii": 3, "iv": 4, "v": 5, "vi": 6}
_ISIC_ONE_HOT = ("MEL", "NV", "BCC", "AKIEC", "AK", "BKL", "DF", "VASC", "SCC", "UNK")
_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")


@dataclass
class ImportRow:
    line: int
    image: str
    condition: str
    mask: str = ""
    fitzpatrick: str = ""
    bbox: str = ""
    patient_id: str = ""
    source: str = ""
    licence: str = ""
    extra: dict[str, str] = field(default_factory=dict)


@dataclass
class ImportReport:
    format: str
    n_rows: int = 0
    imported: list[int] = field(default_factory=list)  # Image pks (empty on a dry run)
    n_would_import: int = 0
    n_already: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)  # {"line": n, "reason": "..."}
    is_dry_run: bool = False

    def summary(self) -> str:
        verb = "would import" if self.is_dry_run else "imported"
        n = self.n_would_import if self.is_dry_run else len(self.imported)
        return (
            f"{self.format}: {self.n_rows} rows, {verb} {n}, "
            f"{self.n_already} already in the library, {len(self.errors)} bad rows"
        )


def parse_fitzpatrick(raw: str) -> int | None:
    """``""``, ``"nan"`` → None; ``"2"``, ``"2.0"``, ``"II"`` → 2; anything else is an error."""
    value = str(raw or "").strip()
    if value.lower() in {"", "nan", "na", "n/a", "none", "null", "unknown"}:
        return None
    if value.lower() in _ROMAN:
        return _ROMAN[value.lower()]
    try:
        number = float(value)
    except ValueError:
        raise LibraryError(f"Fitzpatrick type {raw!r} is not a number 1–6") from None
    if not number.is_integer() or not 1 <= number <= 6:
        raise LibraryError(f"Fitzpatrick type {raw!r} is not a whole number 1–6")
    return int(number)


def _detect_format(header: list[str]) -> str:
    cols = {c.strip().lower() for c in header}
    if {"img_id", "diagnostic"} <= cols:
        return "pad-ufes-20"
    if cols & {"condition", "diagnosis_code", "label"} and cols & {"image", "path", "image_path", "file"}:
        return "manifest"
    if cols & {c.lower() for c in _ISIC_ONE_HOT} or {"melanoma", "seborrheic_keratosis"} <= cols:
        return "isic"
    if cols & {"image_id", "image_name", "isic_id"} and cols & {"dx", "diagnosis"}:
        return "isic"
    if cols & {"image", "path", "image_path", "file"}:
        return "manifest"
    raise LibraryError(
        "cannot tell the manifest format from its header "
        f"({', '.join(header)}); pass --format manifest|pad-ufes-20|isic"
    )


def _pick(row: dict[str, str], *names: str) -> str:
    lower = {k.strip().lower(): (v or "") for k, v in row.items() if k is not None}
    for name in names:
        if name in lower and lower[name].strip():
            return lower[name].strip()
    return ""


def _isic_condition(row: dict[str, str]) -> str:
    lower = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k is not None}
    for code in _ISIC_ONE_HOT:
        value = lower.get(code.lower(), "")
        try:
            if value and float(value) >= 0.5:
                return code
        except ValueError:
            pass
    if "melanoma" in lower and "seborrheic_keratosis" in lower:  # ISIC 2016/2017 ground truth
        try:
            melanoma, keratosis = float(lower["melanoma"] or 0), float(lower["seborrheic_keratosis"] or 0)
        except ValueError:  # not scores: no condition, reported as this row's error
            return _pick(row, "dx", "diagnosis")
        if melanoma >= 0.5:
            return "MEL"
        if keratosis >= 0.5:
            return "SEK"
        return "NEV"
    return _pick(row, "dx", "diagnosis")


def _isic_file(root: Path, image_id: str, suffix: str = "") -> str:
    for ext in _IMAGE_EXTENSIONS if not suffix else (".png",):
        for candidate in (root / f"{image_id}{suffix}{ext}", root / "images" / f"{image_id}{suffix}{ext}"):
            if candidate.is_file():
                return str(candidate)
    return "" if suffix else str(root / f"{image_id}.jpg")


def manifest_read(*, manifest: Path, format: str = "auto") -> tuple[str, list[ImportRow]]:
    """Parse a manifest in any supported layout into uniform rows with their CSV line numbers."""
    if format not in IMPORT_FORMATS:
        raise LibraryError(f"--format must be one of {', '.join(IMPORT_FORMATS)}, got {format!r}")
    if not manifest.is_file():
        raise LibraryError(f"manifest not found: {manifest}")
    try:
        return _manifest_parse(manifest, format)
    except UnicodeDecodeError as exc:
        raise LibraryError(f"manifest {manifest.name} is not UTF-8 text (byte {exc.start})") from None
    except csv.Error as exc:  # a NUL byte, an over-long field: the upload is not a CSV
        raise LibraryError(f"manifest {manifest.name} is not a readable CSV: {exc}") from None


def _manifest_parse(manifest: Path, format: str) -> tuple[str, list[ImportRow]]:
    with open(manifest, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        if not header:
            raise LibraryError(f"manifest {manifest} is empty")
        fmt = _detect_format(header) if format == "auto" else format
        rows: list[ImportRow] = []
        for raw in reader:
            line = reader.line_num
            if fmt == "pad-ufes-20":
                image_id = _pick(raw, "img_id")
                rows.append(
                    ImportRow(
                        line=line,
                        image=image_id,
                        condition=_pick(raw, "diagnostic"),
                        fitzpatrick=_pick(raw, "fitspatrick", "fitzpatrick"),
                        patient_id=_pick(raw, "patient_id"),
                        source="PAD-UFES-20",
                        licence="CC BY 4.0",
                        extra={k: _pick(raw, k) for k in ("img_id", "lesion_id", "region") if _pick(raw, k)},
                    )
                )
            elif fmt == "isic":
                image_id = _pick(raw, "image", "image_id", "image_name", "isic_id")
                rows.append(
                    ImportRow(
                        line=line,
                        image=image_id,
                        condition=_isic_condition(raw),
                        fitzpatrick=_pick(raw, "fitzpatrick", "fitzpatrick_skin_type"),
                        patient_id=_pick(raw, "patient_id", "lesion_id"),
                        source="ISIC",
                        licence=_pick(raw, "license", "licence", "attribution") or "CC BY-NC 4.0",
                        extra={"isic_id": image_id},
                    )
                )
            elif fmt == "manifest":
                rows.append(
                    ImportRow(
                        line=line,
                        image=_pick(raw, "image", "image_path", "path", "file"),
                        mask=_pick(raw, "mask", "mask_path", "segmentation"),
                        condition=_pick(raw, "condition", "diagnosis_code", "label", "diagnosis"),
                        fitzpatrick=_pick(raw, "fitzpatrick", "fitzpatrick_type", "skin_type"),
                        bbox=_pick(raw, "bbox", "lesion_box", "box"),
                        patient_id=_pick(raw, "patient_id", "patient"),
                        source=_pick(raw, "source", "dataset"),
                        licence=_pick(raw, "licence", "license"),
                    )
                )
            else:
                raise LibraryError(f"unsupported format {fmt!r}")
    return fmt, rows


def _resolve(root: Path, value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else root / path


def _box_mask(bbox: str, width: int, height: int) -> np.ndarray:
    try:
        x0, y0, x1, y1 = (float(v) for v in re.split(r"[\s,;]+", bbox.strip()) if v)
    except ValueError:
        raise LibraryError(f"lesion box {bbox!r} must be four numbers 'x0 y0 x1 y1' (pixels)") from None
    if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
        raise LibraryError(f"lesion box {bbox!r} lies outside the {width}×{height} image")
    mask = np.zeros((height, width), dtype=bool)
    mask[int(y0) : int(np.ceil(y1)), int(x0) : int(np.ceil(x1))] = True
    return mask


@dataclass
class _Prepared:
    line: int
    normalized: NormalizedImage
    fields: dict[str, Any]
    names: tuple[str, str] = ("", "")


def _prepare_row(
    row: ImportRow, *, fmt: str, root: Path, lookup: ConditionLookup, manifest: Path, confine: bool = False
) -> tuple[NormalizedImage, dict[str, Any]]:
    if not row.image:
        raise LibraryError("no image path in this row")
    condition = lookup.get(row.condition)
    if condition is None:
        raise LibraryError(f"unknown condition {row.condition!r}" if row.condition else "no condition given")
    fitzpatrick = parse_fitzpatrick(row.fitzpatrick)
    if fmt == "isic":
        image_path = Path(_isic_file(root, row.image))
        mask_value = _isic_file(root, row.image, "_segmentation")
        mask_path = Path(mask_value) if mask_value else None
    else:
        image_path = _resolve(root, row.image)
        mask_path = _resolve(root, row.mask) if row.mask else None
    if confine:
        for path in (image_path, mask_path):
            if path is not None and not path.resolve().is_relative_to(root.resolve()):
                raise LibraryError(f"path {path} leaves the uploaded archive")
    if len(row.patient_id) > 64:
        raise LibraryError(f"patient_id {row.patient_id[:20]!r}… is longer than 64 characters")
    if not image_path.is_file():
        raise LibraryError(f"missing file: {image_path}")
    if mask_path is not None and not mask_path.is_file():
        raise LibraryError(f"missing mask file: {mask_path}")
    im = open_image(image_path)
    mask: Any = None
    if mask_path is not None:
        try:
            mask = open_image(mask_path)
        except ImageError as exc:
            raise LibraryError(f"mask: {exc}") from None
    elif row.bbox:
        w, h = ImageOps.exif_transpose(im).size
        mask = _box_mask(row.bbox, w, h)
    normalized = normalize(im, mask=mask)
    provenance = {
        "source": row.source or manifest.name,
        "licence": row.licence,
        "original_name": image_path.name,
        "manifest_line": row.line,
        **row.extra,
    }
    if row.bbox:
        provenance["lesion_box"] = row.bbox
    fields = image_fields(
        normalized=normalized,
        kind=Image.Kind.REAL,
        condition=condition,
        provenance=provenance,
        fitzpatrick=fitzpatrick,
        skin_rgb=None,
        patient_id=row.patient_id,
        batch=None,
        batch_index=None,
    )
    return normalized, fields


def images_import(
    *,
    manifest: Path | str,
    images_root: Path | str | None = None,
    format: str = "auto",
    dry_run: bool = False,
    job: ImportJob | None = None,
    progress: Callable[[int, int], None] | None = None,
    limit: int | None = None,
    confine: bool = False,
    archive_root: Path | None = None,
) -> ImportReport:
    """Import a dataset's real images: validate every row, then store the good ones at once.

    Phase 1 checks and normalizes each row (errors collected with their line numbers;
    pixels already in the library, or repeated in the manifest, are skipped) and writes
    the normalized files. Phase 2 inserts every good row in one transaction; if it
    fails, the files of phase 1 are deleted, so an import is all or nothing.

    ``archive_root`` is where an uploaded zip was extracted: bad rows then name their file
    as it is inside the archive, never the server's temporary folder.
    """
    manifest = Path(manifest)
    fmt, rows = manifest_read(manifest=manifest, format=format)
    if limit is not None:
        rows = rows[: max(0, limit)]
    if images_root is None:
        root = manifest.parent / "images" if fmt == "pad-ufes-20" else manifest.parent
        if fmt == "pad-ufes-20" and not root.is_dir():
            root = manifest.parent
    else:
        root = Path(images_root)
    if not root.is_dir():
        raise LibraryError(f"images root is not a folder: {root}")
    report = ImportReport(format=fmt, n_rows=len(rows), is_dry_run=dry_run)
    lookup = ConditionLookup()
    seen: dict[str, int] = {}
    prepared: list[_Prepared] = []
    if job is not None:
        ImportJob.objects.filter(pk=job.pk).update(n_rows=len(rows), format=fmt)
    try:
        for n, row in enumerate(rows, start=1):
            try:
                normalized, fields = _prepare_row(
                    row, fmt=fmt, root=root, lookup=lookup, manifest=manifest, confine=confine
                )
            except (LibraryError, ImageError) as exc:
                reason = str(exc) if archive_root is None else _in_archive(str(exc), row, root, archive_root)
                report.errors.append({"line": row.line, "reason": reason})
            else:
                if normalized.sha256 in seen or Image.objects.filter(sha256=normalized.sha256).exists():
                    report.n_already += 1
                else:
                    seen[normalized.sha256] = row.line
                    item = _Prepared(line=row.line, normalized=normalized, fields=fields)
                    if not dry_run:
                        item.names = files_write(normalized)
                    item.normalized = None  # type: ignore[assignment]  # free the pixels early
                    prepared.append(item)
            if job is not None and (n % 5 == 0 or n == len(rows)):
                ImportJob.objects.filter(pk=job.pk).update(n_checked=n)
            if progress is not None:
                progress(n, len(rows))
        report.n_would_import = len(prepared)
        if not dry_run and prepared:
            with transaction.atomic():
                created = [
                    Image.objects.create(file=item.names[0], mask=item.names[1], **item.fields)
                    for item in prepared
                ]
            report.imported = [image.pk for image in created]
    except BaseException:
        for item in prepared:
            files_delete(*item.names)
        raise
    return report


def _in_archive(reason: str, row: ImportRow, root: Path, archive_root: Path) -> str:
    """A bad row's reason as the uploader reads it: paths relative to the archive, led by the row's file."""
    for base in {str(archive_root.resolve()), str(archive_root)}:
        reason = reason.replace(base + os.sep, "").replace(base, ".")
    if not row.image:
        return reason
    name = (root / row.image).resolve()
    shown = (
        name.relative_to(archive_root.resolve()).as_posix()
        if name.is_relative_to(archive_root.resolve())
        else row.image
    )
    return reason if shown in reason else f"{shown}: {reason}"


def _find_manifest(folder: Path, name: str) -> Path:
    if name:
        matches = [p for p in folder.rglob(Path(name).name) if p.is_file()]
        if not matches:
            raise LibraryError(f"manifest {name!r} is not in the zip")
        return matches[0]
    csvs = sorted(p for p in folder.rglob("*.csv") if "__MACOSX" not in p.parts)
    if len(csvs) != 1:
        raise LibraryError(
            f"the zip holds {len(csvs)} CSV files; name the manifest ({', '.join(p.name for p in csvs[:5])})"
        )
    return csvs[0]


def import_job_run(*, job: ImportJob) -> ImportJob:
    """Run an admin-uploaded zip import; the job row carries status, progress and every bad row."""
    # RUNNING is claimable too: a worker killed mid-import left it so, and its redelivered task must
    # finish the job (phase 2 is one transaction, and pixels already stored are skipped on the rerun).
    claimed = ImportJob.objects.filter(
        pk=job.pk, status__in=[ImportJob.Status.QUEUED, ImportJob.Status.RUNNING]
    ).update(status=ImportJob.Status.RUNNING)
    if not claimed:
        job.refresh_from_db()
        return job  # already finished: running the task twice does nothing twice
    workdir = Path(tempfile.mkdtemp(prefix="dermgan-import-"))
    try:
        archive = workdir / "upload.zip"
        with job.archive.open("rb") as src, open(archive, "wb") as dst:
            sha256 = file_copy_sha256(src, dst)
        ImportJob.objects.filter(pk=job.pk).update(archive_sha256=sha256)
        extracted = workdir / "x"
        extracted.mkdir()
        archive_extract(
            archive=archive,
            target=extracted,
            max_bytes=settings.IMPORT_MAX_UNCOMPRESSED_BYTES,
            max_ratio=settings.IMPORT_MAX_COMPRESSION_RATIO,
        )
        manifest = _find_manifest(extracted, job.manifest_name)
        # An uploaded manifest may only name files inside its own archive.
        report = images_import(
            manifest=manifest,
            format=job.format,
            dry_run=job.is_dry_run,
            job=job,
            confine=True,
            archive_root=extracted,
        )
        ImportJob.objects.filter(pk=job.pk).update(
            status=ImportJob.Status.SUCCEEDED,
            n_checked=report.n_rows,
            n_imported=report.n_would_import if job.is_dry_run else len(report.imported),
            n_already=report.n_already,
            errors=report.errors,
            finished=timezone.now(),
        )
    except Exception as exc:
        logger.exception("import job %s failed", job.pk)
        ImportJob.objects.filter(pk=job.pk).update(
            status=ImportJob.Status.FAILED, error=str(exc), finished=timezone.now()
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    # Finished (succeeded or failed): the upload is not kept, only its sha256. A worker killed
    # above never gets here, so the redelivered task still finds the archive.
    _archive_delete(job)
    job.refresh_from_db()
    if job.status == ImportJob.Status.FAILED:
        job_failure_notify(job=job)
    event_record(
        action=Action.IMPORT_FINISHED,
        actor=job.created_by,
        obj=job,
        after={
            "status": job.status,
            "n_imported": job.n_imported,
            "n_already": job.n_already,
            "n_errors": len(job.errors or []),
            "error": job.error,
        },
    )
    return job


def _archive_delete(job: ImportJob) -> None:
    if job.archive.name:
        try:
            job.archive.storage.delete(job.archive.name)
        except OSError:
            logger.warning("import job %s: could not delete %s", job.pk, job.archive.name)
    ImportJob.objects.filter(pk=job.pk).update(archive="")
