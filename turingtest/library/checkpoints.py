"""Generator checkpoints: register a file (validated by the generator's own loader), find a
local copy of it, and keep a worker's renderers loaded.

The generator is imported inside the functions that need it: it loads torch, which the
web process and the Celery parent should only pay for when they render themselves.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.files.base import File
from django.db import IntegrityError

from turingtest.jsonsafe import json_safe
from turingtest.library.models import GeneratorCheckpoint
from turingtest.library.store import LibraryError, files_delete
from turingtest.trail.services import Action, event_record

if TYPE_CHECKING:
    from generator.render import Renderer

logger = logging.getLogger(__name__)


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
        metadata=json_safe(ckpt.metadata),
    )
    with open(path, "rb") as fh:
        checkpoint.file.save(path.name, File(fh), save=False)  # streamed: checkpoints can be large
    try:
        checkpoint.save()
    except IntegrityError:
        files_delete(checkpoint.file.name)
        return GeneratorCheckpoint.objects.get(sha256=sha256)
    event_record(
        action=Action.CHECKPOINT_UPLOADED, obj=checkpoint, after={"name": checkpoint.name, "sha256": sha256}
    )
    return checkpoint


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
_RENDERERS: OrderedDict[str, Renderer] = OrderedDict()
_RENDERER_CACHE_SIZE = 2


def renderer_get(checkpoint: GeneratorCheckpoint) -> Renderer:
    """The process's renderer for this checkpoint, loaded on first use (at most two kept)."""
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


def renderers_clear() -> None:
    """Forget the loaded renderers, as a fresh worker process would have none."""
    _RENDERERS.clear()
