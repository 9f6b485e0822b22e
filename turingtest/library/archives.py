"""Unpacking an uploaded import zip without letting it fill the disk (zip bombs).

A 2 MB upload once inflated to 2 GiB in the worker's temporary folder. Before anything is
written, ``archive_extract`` reads the central directory and refuses an archive whose
members add up to more than ``max_bytes`` (``IMPORT_MAX_UNCOMPRESSED_BYTES``) or whose
member inflates more than ``max_ratio`` times its compressed size
(``IMPORT_MAX_COMPRESSION_RATIO``); headers can lie, so it also counts the bytes it really
writes and stops at the first one past either limit. Paths may not leave the target folder.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path
from typing import IO

from turingtest.library.store import LibraryError

# A member smaller than this is not ratio-checked: small files (a mostly-black BMP mask, a
# CSV) compress very well, and the total cap already bounds what many of them can add up to.
RATIO_MIN_BYTES = 1 << 20
_CHUNK = 1 << 20


def _check_declared(infos: list[zipfile.ZipInfo], *, max_bytes: int, max_ratio: int) -> None:
    total = sum(info.file_size for info in infos)
    if total > max_bytes:
        raise LibraryError(
            f"the zip would inflate to {total} bytes, more than the limit of {max_bytes} bytes "
            "(IMPORT_MAX_UNCOMPRESSED_BYTES); split the dataset into smaller archives"
        )
    for info in infos:
        if info.file_size >= RATIO_MIN_BYTES and info.file_size > max_ratio * max(info.compress_size, 1):
            ratio = info.file_size // max(info.compress_size, 1)
            raise LibraryError(
                f"zip member {info.filename!r} inflates {ratio}:1 ({info.compress_size} → {info.file_size} "
                f"bytes), more than the {max_ratio}:1 limit (IMPORT_MAX_COMPRESSION_RATIO): refused as a "
                "possible zip bomb"
            )


def _dest(target: Path, name: str) -> Path:
    root = target.resolve()
    dest = (root / name).resolve()
    if dest != root and not dest.is_relative_to(root):
        raise LibraryError(f"unsafe path in zip: {name!r}")
    return dest


def _copy_counted(
    src: IO[bytes], dst: IO[bytes], *, info: zipfile.ZipInfo, budget: int, max_ratio: int
) -> int:
    """Copy one member, stopping as soon as it writes more than its header, ratio or budget allow."""
    allowed = min(info.file_size, budget)
    if info.file_size >= RATIO_MIN_BYTES:
        allowed = min(allowed, max_ratio * max(info.compress_size, 1))
    written = 0
    while chunk := src.read(_CHUNK):
        written += len(chunk)
        if written > allowed:
            raise LibraryError(
                f"zip member {info.filename!r} inflates past the {allowed} bytes its header and the "
                "limits allow: refused as a possible zip bomb"
            )
        dst.write(chunk)
    return written


def archive_extract(*, archive: Path, target: Path, max_bytes: int, max_ratio: int) -> int:
    """Extract ``archive`` into ``target`` within the limits above; returns the bytes written.

    ``LibraryError`` says which limit an archive broke (nothing is extracted when the
    central directory already shows it; a lying header stops the extraction midway, and the
    caller removes ``target``).
    """
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile:
        raise LibraryError("the upload is not a zip archive") from None
    with zf:
        infos = zf.infolist()
        _check_declared(infos, max_bytes=max_bytes, max_ratio=max_ratio)
        dests = [(info, _dest(target, info.filename)) for info in infos]
        total = 0
        for info, dest in dests:
            if info.is_dir():
                dest.mkdir(parents=True, exist_ok=True)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                with zf.open(info) as src, open(dest, "wb") as dst:
                    total += _copy_counted(src, dst, info=info, budget=max_bytes - total, max_ratio=max_ratio)
            except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
                raise LibraryError(f"zip member {info.filename!r} is damaged: {exc}") from None
    return total


def file_copy_sha256(src: IO[bytes], dst: IO[bytes]) -> str:
    """Copy ``src`` to ``dst`` and return the sha256 of the bytes copied (one pass)."""
    digest = hashlib.sha256()
    while chunk := src.read(_CHUNK):
        digest.update(chunk)
        dst.write(chunk)
    return digest.hexdigest()
