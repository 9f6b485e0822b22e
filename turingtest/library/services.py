"""Library operations: store images, import datasets, register checkpoints, run batches.

Every image enters through ``image_store`` (which calls ``turingtest.images.normalize``);
generation batches are rendered chunk by chunk by ``chunk_render``, which Celery calls
from ``turingtest.library.tasks.render_chunk`` and which is safe to run twice.
The generator library is imported lazily: the web process and the Celery parent
never load torch unless they render (a preview) themselves.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
import re
import secrets
import shutil
import tempfile
import time
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile, File
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from PIL import Image as PILImage

from turingtest.images import ImageError, NormalizedImage, normalize, open_image
from turingtest.library.models import (
    Condition,
    GenerationBatch,
    GenerationChunk,
    GeneratorCheckpoint,
    Image,
    ImportJob,
)

logger = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 16
DEMO_CHECKPOINT = Path(settings.BASE_DIR) / "fixtures" / "dermgan-demo.pt"


class LibraryError(ValueError):
    """A request the library refuses; the message is meant for the admin who made it."""


class DuplicateImage(LibraryError):
    def __init__(self, existing: Image) -> None:
        super().__init__(f"identical pixels are already stored as image {existing.pk}")
        self.existing = existing


class BrokerUnavailable(LibraryError):
    """The task broker could not be reached: nothing was (or will be) rendered."""


# ---------------------------------------------------------------------------
# Conditions
# ---------------------------------------------------------------------------


class ConditionLookup:
    """Resolves dataset labels (codes, names, synonyms, any case) to ``Condition`` rows."""

    def __init__(self) -> None:
        self._by_key: dict[str, Condition] = {}
        for condition in Condition.objects.all():
            for key in [condition.code, condition.name, *(condition.synonyms or [])]:
                self._by_key.setdefault(self._key(key), condition)

    @staticmethod
    def _key(value: str) -> str:
        return re.sub(r"[\s_\-]+", " ", str(value)).strip().lower()

    def get(self, value: str) -> Condition | None:
        return self._by_key.get(self._key(value)) if value and str(value).strip() else None


def condition_get(value: Condition | str) -> Condition:
    if isinstance(value, Condition):
        return value
    found = ConditionLookup().get(value)
    if found is None:
        raise LibraryError(f"unknown condition {value!r}")
    return found


# ---------------------------------------------------------------------------
# Storing images
# ---------------------------------------------------------------------------


def _storage_name() -> str:
    """Opaque, kind-independent name: the same folder and extension for every file."""
    return f"library/{secrets.token_hex(16)}.png"


def _skin(normalized: NormalizedImage) -> Any:
    from generator.semantic_map import estimate_skin_colour

    try:
        return estimate_skin_colour(normalized.pixels, normalized.mask)
    except ValueError:
        # e.g. a mask covering the whole image leaves no healthy skin to look at
        return None


def _image_fields(
    *,
    normalized: NormalizedImage,
    kind: str,
    condition: Condition,
    provenance: dict,
    fitzpatrick: int | None,
    skin_rgb: tuple[int, int, int] | None,
    patient_id: str,
    batch: GenerationBatch | None,
    batch_index: int | None,
) -> dict[str, Any]:
    provenance = dict(provenance)
    estimate = _skin(normalized)
    source = Image.FitzpatrickSource.LABEL if fitzpatrick is not None else Image.FitzpatrickSource.NONE
    if fitzpatrick is None and estimate is not None:
        fitzpatrick = int(estimate.fitzpatrick)
        source = Image.FitzpatrickSource.ESTIMATE
    if skin_rgb is None and estimate is not None:
        skin_rgb = tuple(int(v) for v in estimate.rgb)
    return {
        "kind": kind,
        "condition": condition,
        "fitzpatrick": fitzpatrick,
        "fitzpatrick_source": source,
        "skin_rgb": list(skin_rgb) if skin_rgb is not None else None,
        "ita_degrees": round(float(estimate.ita_degrees), 3) if estimate is not None else None,
        "lesion_area_fraction": normalized.lesion_area_fraction(),
        "lesion_bbox": normalized.lesion_bbox(),
        "sha256": normalized.sha256,
        "width": normalized.size,
        "height": normalized.size,
        "native_width": normalized.native_size[0] if normalized.native_size else None,
        "native_height": normalized.native_size[1] if normalized.native_size else None,
        "provenance": provenance,
        "patient_id": patient_id or "",
        "batch": batch,
        "batch_index": batch_index,
    }


def _write_files(normalized: NormalizedImage) -> tuple[str, str]:
    name = default_storage.save(_storage_name(), ContentFile(normalized.data))
    mask_name = ""
    if normalized.mask_data is not None:
        mask_name = default_storage.save(_storage_name(), ContentFile(normalized.mask_data))
    return name, mask_name


def _delete_files(*names: str) -> None:
    for name in names:
        if name:
            try:
                default_storage.delete(name)
            except OSError:
                logger.warning("could not delete orphan file %s", name)


def image_store(
    *,
    pil_image: PILImage.Image | bytes | str | Path,
    kind: str,
    condition: Condition | str,
    provenance: dict,
    mask: np.ndarray | PILImage.Image | str | Path | None = None,
    fitzpatrick: int | None = None,
    skin_rgb: tuple[int, int, int] | None = None,
    patient_id: str = "",
    batch: GenerationBatch | None = None,
    batch_index: int | None = None,
    if_duplicate: str = "raise",
) -> Image:
    """Normalize an image and add it to the library; the one way the platform adds images.

    Without ``fitzpatrick`` the skin type comes from ``generator.semantic_map.
    estimate_skin_colour`` on the healthy skin (outside ``mask``, or a border ring).
    Identical pixels are stored once: ``if_duplicate="raise"`` raises ``DuplicateImage``,
    ``"existing"`` returns the stored image. The file is removed again if the row
    cannot be written, so a failure leaves nothing behind.
    """
    if kind not in Image.Kind.values:
        raise LibraryError(f"kind must be one of {Image.Kind.values}, got {kind!r}")
    if fitzpatrick is not None and not 1 <= int(fitzpatrick) <= 6:
        raise LibraryError(f"fitzpatrick must be 1–6, got {fitzpatrick!r}")
    normalized = normalize(pil_image, mask=mask)
    existing = Image.objects.filter(sha256=normalized.sha256).first()
    if existing is not None:
        if if_duplicate == "existing":
            return existing
        raise DuplicateImage(existing)
    fields = _image_fields(
        normalized=normalized,
        kind=kind,
        condition=condition_get(condition),
        provenance=provenance,
        fitzpatrick=int(fitzpatrick) if fitzpatrick is not None else None,
        skin_rgb=skin_rgb,
        patient_id=patient_id,
        batch=batch,
        batch_index=batch_index,
    )
    name, mask_name = _write_files(normalized)
    try:
        with transaction.atomic():
            return Image.objects.create(file=name, mask=mask_name, **fields)
    except BaseException:
        _delete_files(name, mask_name)
        raise


# ---------------------------------------------------------------------------
# Importing real datasets
# ---------------------------------------------------------------------------

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
        if float(lower["melanoma"] or 0) >= 0.5:
            return "MEL"
        if float(lower["seborrheic_keratosis"] or 0) >= 0.5:
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
        from PIL import ImageOps

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
    fields = _image_fields(
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
) -> ImportReport:
    """Import a dataset's real images: validate every row, then store the good ones at once.

    Phase 1 checks and normalizes each row (errors collected with their line numbers;
    pixels already in the library, or repeated in the manifest, are skipped) and writes
    the normalized files. Phase 2 inserts every good row in one transaction; if it
    fails, the files of phase 1 are deleted, so an import is all or nothing.
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
                report.errors.append({"line": row.line, "reason": str(exc)})
            else:
                if normalized.sha256 in seen or Image.objects.filter(sha256=normalized.sha256).exists():
                    report.n_already += 1
                else:
                    seen[normalized.sha256] = row.line
                    item = _Prepared(line=row.line, normalized=normalized, fields=fields)
                    if not dry_run:
                        item.names = _write_files(normalized)
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
            _delete_files(*item.names)
        raise
    return report


def _safe_extract(archive: Path, target: Path, *, max_bytes: int = 20 * 1024**3) -> None:
    """Extract a zip refusing absolute/parent paths and archives that inflate past ``max_bytes``."""
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile:
        raise LibraryError("the upload is not a zip archive") from None
    with zf:
        total = sum(info.file_size for info in zf.infolist())
        if total > max_bytes:
            raise LibraryError(f"the zip inflates to {total} bytes, more than the {max_bytes}-byte cap")
        for info in zf.infolist():
            dest = (target / info.filename).resolve()
            if not str(dest).startswith(str(target.resolve()) + os.sep) and dest != target.resolve():
                raise LibraryError(f"unsafe path in zip: {info.filename!r}")
        zf.extractall(target)


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
            shutil.copyfileobj(src, dst)
        extracted = workdir / "x"
        extracted.mkdir()
        _safe_extract(archive, extracted)
        manifest = _find_manifest(extracted, job.manifest_name)
        # An uploaded manifest may only name files inside its own archive.
        report = images_import(
            manifest=manifest, format=job.format, dry_run=job.is_dry_run, job=job, confine=True
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
    job.refresh_from_db()
    return job


def import_job_create(
    *, archive, format: str = "auto", manifest_name: str = "", dry_run: bool = False, user=None
):
    """Store an uploaded zip and enqueue its import (queue ``default``) after commit."""
    from turingtest.library import tasks

    if format not in IMPORT_FORMATS:
        raise LibraryError(f"format must be one of {', '.join(IMPORT_FORMATS)}")
    broker_check()
    with transaction.atomic():
        job = ImportJob.objects.create(
            format=format, manifest_name=manifest_name, is_dry_run=dry_run, created_by=user
        )
        job.archive.save(f"{secrets.token_hex(16)}.zip", archive, save=True)
        transaction.on_commit(partial(_enqueue_import, job.pk, tasks))
    job.refresh_from_db()
    if job.status == ImportJob.Status.FAILED and job.error.startswith("could not enqueue"):
        raise BrokerUnavailable(job.error)
    return job


def _enqueue_import(job_pk: int, tasks) -> None:
    try:
        tasks.import_images.apply_async(kwargs={"job_pk": job_pk})
    except _broker_errors() as exc:
        ImportJob.objects.filter(pk=job_pk).update(
            status=ImportJob.Status.FAILED, error=f"could not enqueue the import: {exc}"
        )


# ---------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checkpoint_register(*, path: Path | str, name: str = "") -> GeneratorCheckpoint:
    """Validate a checkpoint file with the generator's own loader and add it to the library.

    A file that does not load raises ``LibraryError`` with the loader's message; the
    same file registered twice returns the existing row.
    """
    from generator.checkpoint import CheckpointError, load

    path = Path(path)
    if not path.is_file():
        raise LibraryError(f"checkpoint file not found: {path}")
    sha256 = _sha256_file(path)
    existing = GeneratorCheckpoint.objects.filter(sha256=sha256).first()
    if existing is not None:
        if not existing.file.storage.exists(existing.file.name):
            # The row outlived its file (media moved or wiped): the same bytes restore it.
            with open(path, "rb") as fh:
                existing.file.save(f"{sha256}.pt", File(fh), save=True)
        return existing
    try:
        ckpt = load(path)
    except CheckpointError as exc:
        raise LibraryError(str(exc)) from None
    except Exception as exc:  # anything torch raises on a bad file is a bad file
        raise LibraryError(f"not a DermGAN checkpoint: {exc}") from None
    checkpoint = GeneratorCheckpoint(
        name=name or path.stem,
        sha256=sha256,
        size_bytes=path.stat().st_size,
        config=ckpt.config.to_dict(),
        metadata=_json_safe(ckpt.metadata),
    )
    with open(path, "rb") as fh:
        checkpoint.file.save(path.name, File(fh), save=False)  # streamed: checkpoints can be large
    try:
        checkpoint.save()
    except IntegrityError:
        _delete_files(checkpoint.file.name)
        return GeneratorCheckpoint.objects.get(sha256=sha256)
    return checkpoint


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def checkpoint_local_path(checkpoint: GeneratorCheckpoint) -> Path:
    """A local file for the checkpoint (object storage is copied once into a cache folder)."""
    try:
        return Path(checkpoint.file.path)
    except NotImplementedError:
        cache = Path(settings.VAR_DIR) / "checkpoint-cache"
        cache.mkdir(parents=True, exist_ok=True)
        local = cache / f"{checkpoint.sha256}.pt"
        if not local.exists():
            tmp = local.with_suffix(".part")
            with checkpoint.file.open("rb") as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst)
            tmp.replace(local)
        return local


# Worker-lifetime cache: loading a checkpoint (and warming the device) once per
# process, not once per chunk. Keyed by content hash, so a re-uploaded file is reused.
_RENDERERS: OrderedDict[str, Any] = OrderedDict()
_RENDERER_CACHE_SIZE = 2


def renderer_get(checkpoint: GeneratorCheckpoint) -> Any:
    from generator.render import Renderer

    renderer = _RENDERERS.get(checkpoint.sha256)
    if renderer is None:
        device = os.environ.get("DERMGAN_DEVICE", "auto")
        renderer = Renderer(checkpoint_local_path(checkpoint), device=device)
        logger.info(
            "renderer loaded: checkpoint %s on %s (pid %s)",
            checkpoint.sha256[:12],
            renderer.device,
            os.getpid(),
        )
        _RENDERERS[checkpoint.sha256] = renderer
        while len(_RENDERERS) > _RENDERER_CACHE_SIZE:
            _RENDERERS.popitem(last=False)
    _RENDERERS.move_to_end(checkpoint.sha256)
    return renderer


# ---------------------------------------------------------------------------
# Generation batches
# ---------------------------------------------------------------------------


def _broker_errors() -> tuple[type[BaseException], ...]:
    from kombu.exceptions import OperationalError

    errors: list[type[BaseException]] = [OperationalError, ConnectionError, OSError, TimeoutError]
    try:
        import redis.exceptions

        errors.append(redis.exceptions.ConnectionError)
    except ImportError:  # pragma: no cover
        pass
    return tuple(errors)


def broker_check() -> None:
    """Fail fast, before any row is written, when tasks cannot be sent."""
    from turingtest.celery import app

    if app.conf.task_always_eager:
        return
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=3)
    except Exception as exc:
        raise BrokerUnavailable(
            f"the task broker is unreachable ({_redact(app.conf.broker_url)}): {exc}. "
            "Nothing was scheduled; start Redis or fix CELERY_BROKER_URL and try again."
        ) from None


def _redact(url: str) -> str:
    return re.sub(r"//[^@/]*@", "//***@", url or "")


def distribution_validate(*, checkpoint: GeneratorCheckpoint, distribution: Any) -> Any:
    """A ``SpecDistribution`` whose conditions the checkpoint knows and the library has."""
    from generator.sampling import SpecDistribution

    try:
        dist = (
            distribution
            if isinstance(distribution, SpecDistribution)
            else SpecDistribution.from_dict(distribution)
        )
        dist.validate()
    except (ValueError, TypeError, KeyError) as exc:
        raise LibraryError(f"invalid spec distribution: {exc}") from None
    unknown = sorted(set(dist.condition_weights) - set(checkpoint.conditions))
    if unknown:
        raise LibraryError(
            f"condition(s) {', '.join(unknown)} are not in the checkpoint's conditions "
            f"({', '.join(checkpoint.conditions)})"
        )
    missing = sorted(set(dist.condition_weights) - set(Condition.objects.values_list("code", flat=True)))
    if missing:
        raise LibraryError(f"condition(s) {', '.join(missing)} are not in the library's taxonomy")
    return dist


def batch_schedule(
    *,
    checkpoint: GeneratorCheckpoint,
    count: int,
    seed: int,
    distribution: Any,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    start_at: datetime | None = None,
    priority: int = 0,
    created_by=None,
    check_broker: bool = True,
) -> GenerationBatch:
    """Create a batch and its chunks, and enqueue one ``render_chunk`` task per chunk after commit.

    A broker that cannot be reached raises ``BrokerUnavailable`` before anything is
    written. If the enqueue itself fails after commit, the batch is marked failed with
    the broker's message and ``BrokerUnavailable`` is raised too: never a batch that
    says queued while nothing will render it. In the embedded default (no broker)
    the chunks render eagerly before this returns.
    """
    if count < 1:
        raise LibraryError(f"count must be at least 1, got {count}")
    if not 1 <= chunk_size <= 1024:
        raise LibraryError(f"chunk size must be 1–1024, got {chunk_size}")
    if not 0 <= priority <= 9:
        raise LibraryError(f"priority must be 0–9, got {priority}")
    dist = distribution_validate(checkpoint=checkpoint, distribution=distribution)
    for other in GenerationBatch.objects.filter(checkpoint=checkpoint, seed=seed):
        if other.distribution == dist.to_dict() and (other.n_done or not other.is_finished):
            raise LibraryError(
                f"batch {other.pk} already renders this checkpoint, seed and distribution: "
                "its images would be identical; choose another seed"
            )
    if check_broker:
        broker_check()
    with transaction.atomic():
        batch = GenerationBatch.objects.create(
            checkpoint=checkpoint,
            count=count,
            seed=seed,
            image_size=checkpoint.image_size,
            distribution=dist.to_dict(),
            chunk_size=chunk_size,
            start_at=start_at,
            priority=priority,
            created_by=created_by,
        )
        GenerationChunk.objects.bulk_create(
            GenerationChunk(batch=batch, number=n, start=start, stop=min(start + chunk_size, count))
            for n, start in enumerate(range(0, count, chunk_size))
        )
        transaction.on_commit(partial(_batch_enqueue, batch.pk))
    batch.refresh_from_db()
    if batch.status == GenerationBatch.Status.FAILED and batch.error.startswith("could not enqueue"):
        raise BrokerUnavailable(batch.error)
    return batch


def _batch_enqueue(batch_pk: int) -> None:
    from turingtest.celery import app
    from turingtest.library.tasks import render_chunk

    # Eagerly (embedded default) apply_async runs the chunk here; its own errors are
    # recorded on the chunk and batch by the task, never mistaken for a broker failure.
    sending_errors = () if app.conf.task_always_eager else _broker_errors()
    batch = GenerationBatch.objects.get(pk=batch_pk)
    chunk_pks = list(batch.chunks.filter(status=GenerationChunk.Status.QUEUED).values_list("pk", flat=True))
    for chunk_pk in chunk_pks:
        options: dict[str, Any] = {
            "queue": "gpu",
            "priority": _broker_priority(batch.priority, app.conf.broker_url),
        }
        if batch.start_at and batch.start_at > timezone.now():
            options["eta"] = batch.start_at
        try:
            result = render_chunk.apply_async(kwargs={"chunk_pk": chunk_pk}, **options)
        except sending_errors as exc:
            GenerationBatch.objects.filter(pk=batch_pk).update(
                status=GenerationBatch.Status.FAILED,
                error=f"could not enqueue the batch (task broker unreachable): {exc}",
                finished=timezone.now(),
            )
            batch.chunks.filter(status=GenerationChunk.Status.QUEUED).update(
                status=GenerationChunk.Status.CANCELLED
            )
            return
        GenerationChunk.objects.filter(pk=chunk_pk).update(task_id=result.id or "")


def _broker_priority(priority: int, broker_url: str) -> int:
    """Our priority is 0–9, higher first. Redis (kombu's emulation) serves *lower* numbers first."""
    return 9 - priority if str(broker_url).startswith(("redis", "rediss")) else priority


def batch_cancel(*, batch: GenerationBatch) -> int:
    """Stop a batch: unstarted chunks are cancelled and their tasks revoked.

    A chunk already rendering finishes and stores its images (each one complete,
    with provenance), so what was rendered stays consistent. Returns the number of
    chunks cancelled; cancelling a finished batch is a no-op returning 0.
    """
    updated = GenerationBatch.objects.filter(
        pk=batch.pk, status__in=[GenerationBatch.Status.QUEUED, GenerationBatch.Status.RUNNING]
    ).update(status=GenerationBatch.Status.CANCELLED, finished=timezone.now())
    if not updated:
        return 0
    queued = batch.chunks.filter(status=GenerationChunk.Status.QUEUED)
    task_ids = [t for t in queued.values_list("task_id", flat=True) if t]
    n = queued.update(status=GenerationChunk.Status.CANCELLED)
    if task_ids:
        from turingtest.celery import app

        try:
            app.control.revoke(task_ids)
        except _broker_errors():
            # The chunk task re-checks the batch status first, so an unrevoked task is harmless.
            logger.warning("could not revoke tasks of batch %s", batch.pk)
    batch.refresh_from_db()
    return n


def spec_for(batch: GenerationBatch, index: int) -> Any:
    from generator.sampling import SpecDistribution, spec_for_index

    dist = SpecDistribution.from_dict(batch.distribution)
    return spec_for_index(dist, size=batch.image_size, batch_seed=batch.seed, index=index)


def spec_mask(spec: Any) -> np.ndarray:
    """The union of a spec's lesion regions at its render size (the synthetic image's mask)."""
    mask = np.zeros((spec.size, spec.size), dtype=bool)
    for lesion in spec.lesions:
        mask |= lesion.region(spec.size)
    return mask


def synthetic_provenance(*, batch: GenerationBatch, index: int, seed: int, spec: Any) -> dict[str, Any]:
    return {
        "batch": batch.pk,
        "index": index,
        "seed": seed,
        "batch_seed": batch.seed,
        "checkpoint_sha256": batch.checkpoint.sha256,
        "spec": spec.to_dict(),
        "generator_version": batch.checkpoint.generator_version or _generator_version(),
    }


def _generator_version() -> str:
    import generator

    return str(getattr(generator, "__version__", ""))


def image_rerender(*, image: Image) -> PILImage.Image:
    """Render a synthetic image again from its provenance alone (same pixels, same device)."""
    from generator.semantic_map import MapSpec

    prov = image.provenance
    checkpoint = GeneratorCheckpoint.objects.get(sha256=prov["checkpoint_sha256"])
    spec = MapSpec.from_dict(prov["spec"])
    return renderer_get(checkpoint).render([spec], [int(prov["seed"])])[0]


def chunk_render(*, chunk_pk: int) -> str:
    """Render and store the missing images of one chunk; running it twice changes nothing.

    Indexes already stored are skipped, and ``unique(batch, batch_index)`` stops a
    concurrent duplicate, so a redelivered chunk (worker killed) finishes the work
    without duplicating or losing images. Returns a short outcome for logs.
    """
    from generator.sampling import image_seed

    chunk = GenerationChunk.objects.select_related("batch__checkpoint").get(pk=chunk_pk)
    batch = chunk.batch
    if chunk.status == GenerationChunk.Status.DONE:
        return "already done"
    if batch.status in {GenerationBatch.Status.CANCELLED, GenerationBatch.Status.FAILED}:
        GenerationChunk.objects.filter(
            pk=chunk_pk, status__in=[GenerationChunk.Status.QUEUED, GenerationChunk.Status.RUNNING]
        ).update(status=GenerationChunk.Status.CANCELLED)
        return f"batch {batch.status}"
    now = timezone.now()
    GenerationChunk.objects.filter(pk=chunk_pk).update(
        status=GenerationChunk.Status.RUNNING, attempts=F("attempts") + 1, started=now, error=""
    )
    GenerationBatch.objects.filter(pk=batch.pk, status=GenerationBatch.Status.QUEUED).update(
        status=GenerationBatch.Status.RUNNING, started=now
    )
    stored = set(
        Image.objects.filter(
            batch=batch, batch_index__gte=chunk.start, batch_index__lt=chunk.stop
        ).values_list("batch_index", flat=True)
    )
    todo = [i for i in range(chunk.start, chunk.stop) if i not in stored]
    render_seconds = 0.0
    if todo:
        renderer = renderer_get(batch.checkpoint)
        specs = [spec_for(batch, i) for i in todo]
        seeds = [image_seed(batch.seed, i) for i in todo]
        t0 = time.perf_counter()
        images = renderer.render(specs, seeds)
        render_seconds = time.perf_counter() - t0
        for index, spec, seed, pil in zip(todo, specs, seeds, images):
            condition = spec.lesions[0].condition
            try:
                image_store(
                    pil_image=pil,
                    kind=Image.Kind.SYNTHETIC,
                    condition=condition,
                    provenance=synthetic_provenance(batch=batch, index=index, seed=seed, spec=spec),
                    mask=spec_mask(spec),
                    fitzpatrick=spec.fitzpatrick,
                    skin_rgb=spec.resolved_skin_rgb(),
                    batch=batch,
                    batch_index=index,
                )
            except DuplicateImage as exc:
                if (exc.existing.batch_id, exc.existing.batch_index) != (batch.pk, index):
                    raise
                # another delivery of this chunk stored it first: exactly what idempotency means
            except IntegrityError:
                if not Image.objects.filter(batch=batch, batch_index=index).exists():
                    raise
                # the same, when both deliveries passed the duplicate check at the same moment
    GenerationChunk.objects.filter(pk=chunk_pk).update(
        status=GenerationChunk.Status.DONE, finished=timezone.now()
    )
    batch_progress_update(batch_pk=batch.pk, render_seconds=render_seconds)
    return f"rendered {len(todo)} of {chunk.stop - chunk.start}"


def batch_progress_update(*, batch_pk: int, render_seconds: float = 0.0) -> GenerationBatch:
    """Recount stored images and finish the batch when every chunk is done."""
    with transaction.atomic():
        batch = GenerationBatch.objects.select_for_update().get(pk=batch_pk)
        batch.n_done = batch.images.count()
        batch.render_seconds += render_seconds
        fields = ["n_done", "render_seconds"]
        pending = batch.chunks.exclude(status=GenerationChunk.Status.DONE).exists()
        if not pending and batch.status in {GenerationBatch.Status.QUEUED, GenerationBatch.Status.RUNNING}:
            if batch.n_done == batch.count:
                batch.status = GenerationBatch.Status.SUCCEEDED
            else:
                batch.status = GenerationBatch.Status.FAILED
                batch.error = f"all chunks finished but {batch.n_done} of {batch.count} images are stored"
                fields.append("error")
            batch.finished = timezone.now()
            fields += ["status", "finished"]
        batch.save(update_fields=fields)
    return batch


def chunk_fail(*, chunk_pk: int, error: str) -> None:
    """A chunk failed for good: the batch fails with that error (other chunks then stop)."""
    chunk = GenerationChunk.objects.get(pk=chunk_pk)
    GenerationChunk.objects.filter(pk=chunk_pk).update(
        status=GenerationChunk.Status.FAILED, error=error[:5000], finished=timezone.now()
    )
    GenerationBatch.objects.filter(
        pk=chunk.batch_id, status__in=[GenerationBatch.Status.QUEUED, GenerationBatch.Status.RUNNING]
    ).update(
        status=GenerationBatch.Status.FAILED,
        error=f"chunk {chunk.number} [{chunk.start}, {chunk.stop}): {error}"[:5000],
        finished=timezone.now(),
    )
    batch_progress_update(batch_pk=chunk.batch_id)


def batch_preview(
    *, checkpoint: GeneratorCheckpoint, distribution: Any, seed: int, n: int = 4
) -> list[bytes]:
    """PNG bytes of the first ``n`` images a batch with these settings would render.

    Rendered in this process, exactly as the worker will (same specs and seeds), and
    normalized, so the admin sees what raters will see before committing a batch.
    """
    from generator.sampling import image_seed, spec_for_index

    dist = distribution_validate(checkpoint=checkpoint, distribution=distribution)
    specs = [spec_for_index(dist, size=checkpoint.image_size, batch_seed=seed, index=i) for i in range(n)]
    images = renderer_get(checkpoint).render(specs, [image_seed(seed, i) for i in range(n)])
    return [normalize(im).data for im in images]


def batch_wait(
    *, batch: GenerationBatch, timeout: float | None = None, poll: float = 0.5, on_progress=None
) -> GenerationBatch:
    """Block until the batch finishes (or ``timeout`` seconds pass); returns the fresh row."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        batch.refresh_from_db()
        if on_progress is not None:
            on_progress(batch)
        if batch.is_finished or (deadline is not None and time.monotonic() > deadline):
            return batch
        time.sleep(poll)


def demo_batch_render(
    *, count: int = 32, seed: int = 2024, checkpoint_path: Path | str | None = None, chunk_size: int = 16
) -> GenerationBatch:
    """The demo's synthetic images: register the demo checkpoint and run one batch through
    ``batch_schedule`` (eagerly in the embedded default; via the workers when a broker is set).

    Conditions are those of the checkpoint that the taxonomy knows, equally weighted;
    skin types 1–6 equally mixed. Re-running it returns the existing batch with the
    same checkpoint and seed instead of rendering a second copy.
    """
    path = Path(checkpoint_path) if checkpoint_path else DEMO_CHECKPOINT
    checkpoint = checkpoint_register(path=path, name="DermGAN demo" if path == DEMO_CHECKPOINT else "")
    existing = (
        GenerationBatch.objects.filter(checkpoint=checkpoint, seed=seed, count=count)
        .exclude(status__in=[GenerationBatch.Status.FAILED, GenerationBatch.Status.CANCELLED])
        .first()
    )
    if existing is not None:
        return existing
    known = set(Condition.objects.values_list("code", flat=True))
    codes = [c for c in checkpoint.conditions if c in known]
    if not codes:
        raise LibraryError(
            "none of the checkpoint's conditions are in the taxonomy (load fixtures/conditions.json)"
        )
    distribution = {
        "condition_weights": {c: 1.0 for c in codes},
        "fitzpatrick_weights": {k: 1.0 for k in range(1, 7)},
    }
    return batch_schedule(
        checkpoint=checkpoint, count=count, seed=seed, distribution=distribution, chunk_size=chunk_size
    )


def images_of(batch: GenerationBatch) -> Iterable[Image]:
    return batch.images.order_by("batch_index")
