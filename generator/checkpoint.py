"""DermGAN checkpoints: one file holding the generator weights and JSON metadata.

The file is a ``torch.save`` archive of a plain dict::

    {"format": "dermgan-checkpoint", "format_version": 1,
     "state_dict": {name: tensor, ...},
     "metadata_json": "<JSON text>"}

Only tensors, strings and ints, so ``torch.load(weights_only=True)`` reads it: a
checkpoint can never run code when loaded (a malicious pickle is refused, not executed).
The metadata is stored as one JSON string rather than nested Python objects so it stays
readable by any tool and survives ``weights_only``. It carries the architecture config
(``GeneratorConfig``), the condition list and map encoding, the image size, the training
summary and the library version, so rendering never needs training flags (nanoGPT's
"checkpoints carry their config").

Errors are ``CheckpointError`` (a ``ValueError``) whose message starts with which problem
it is: ``truncated``, ``not a checkpoint`` or ``architecture mismatch``.

Training runs keep a second file beside it, ``train_state.pt``: what ``--resume`` needs
besides the generator weights (discriminator, optimisers, loss scalers, counters, RNG).
:func:`training_state_save` and :func:`training_state_load` are the only code that knows
its keys, so writing and reading cannot drift apart.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import generator
from generator.config import GeneratorConfig
from generator.networks import build_generator

FORMAT = "dermgan-checkpoint"
FORMAT_VERSION = 1
ENCODING = (
    "semantic map channels: 0-2 healthy-skin sRGB scaled to [-1, 1] (constant); "
    "3 lesion mask (0/1); 4+k one-hot mask of condition conditions[k]"
)


class CheckpointError(ValueError):
    """A file that cannot be used as a DermGAN checkpoint; the message says why."""


@dataclass(frozen=True)
class Checkpoint:
    config: GeneratorConfig
    state_dict: dict[str, torch.Tensor]
    metadata: dict[str, Any]
    sha256: str


def _metadata(config: GeneratorConfig, metadata: dict[str, Any]) -> dict[str, Any]:
    out = dict(metadata)
    out.setdefault("generator_version", generator.__version__)
    out["config"] = config.to_dict()
    out["conditions"] = list(config.conditions)
    out["image_size"] = config.image_size
    out["encoding"] = ENCODING
    out.setdefault("training", {})
    return out


def save(
    path: str | Path, *, model: torch.nn.Module, config: GeneratorConfig, metadata: dict[str, Any]
) -> str:
    """Write a checkpoint atomically (temp file + rename); return the file's SHA-256.

    A crash mid-write leaves any previous file at ``path`` intact, never a half file.
    """
    path = Path(path)
    meta = _metadata(config, metadata)
    try:
        meta_json = json.dumps(meta, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"metadata must be JSON-serialisable: {exc}") from exc
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "state_dict": state,
        "metadata_json": meta_json,
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getvalue()
    _atomic_write(path, data)
    return hashlib.sha256(data).hexdigest()


def _atomic_write(path: Path, data: bytes) -> None:
    """Temp file + fsync + rename: a crash mid-write leaves the previous file, never a half one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_payload(path: Path, data: bytes, map_location: Any) -> Any:
    if not data:
        raise CheckpointError(f"truncated: {path} is empty")
    if data[:4] == b"PK\x03\x04":  # torch.save's zip container
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                bad = zf.testzip()
        except (zipfile.BadZipFile, EOFError, OSError):
            raise CheckpointError(
                f"truncated: {path} is an incomplete PyTorch archive ({len(data)} bytes; the end is missing)"
            ) from None
        if bad is not None:
            raise CheckpointError(f"truncated: {path} is corrupted (member {bad} fails its CRC check)")
    try:
        return torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(
            f"not a checkpoint: {path} holds objects a weights-only load refuses ({first})"
        ) from None
    except Exception as exc:  # the loader raises many types on garbage (KeyError, RuntimeError, ...)
        if data[:4] == b"PK\x03\x04" or data[:2] == b"\x80\x02":
            raise CheckpointError(f"truncated: {path} cannot be read to the end ({exc})") from None
        raise CheckpointError(f"not a checkpoint: {path} is not a PyTorch file") from None


def load(path: str | Path, *, map_location: Any = "cpu") -> Checkpoint:
    """Read and check a checkpoint; never executes code from the file.

    Raises CheckpointError: ``truncated`` (empty or cut-off file), ``not a checkpoint``
    (another file type, another kind of PyTorch file, or unsafe pickled objects) or
    ``architecture mismatch`` (weights that do not fit the architecture the metadata
    describes).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"not a checkpoint: {path} does not exist") from None
    payload = _read_payload(path, data, map_location)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"not a checkpoint: {path} is a PyTorch file but not a DermGAN checkpoint")
    if payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"not a checkpoint: {path} has format version {payload.get('format_version')!r}, "
            f"this library reads {FORMAT_VERSION}"
        )
    state = payload.get("state_dict")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"not a checkpoint: {path} has no state_dict of tensors")
    try:
        metadata = json.loads(payload["metadata_json"])
        config = GeneratorConfig.from_dict(metadata["config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"not a checkpoint: {path} has unreadable metadata ({exc})") from None
    _check_architecture(path, config, state)
    return Checkpoint(
        config=config, state_dict=state, metadata=metadata, sha256=hashlib.sha256(data).hexdigest()
    )


def _check_architecture(path: Path, config: GeneratorConfig, state: dict[str, torch.Tensor]) -> None:
    """Compare the weights with the network the config builds, on the meta device (no memory)."""
    try:
        with torch.device("meta"):
            expected = {k: tuple(v.shape) for k, v in build_generator(config).state_dict().items()}
    except (ValueError, TypeError) as exc:
        raise CheckpointError(
            f"architecture mismatch: {path}: its config builds no network ({exc})"
        ) from None
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"architecture mismatch: {path}: the weights do not fit its config "
            f"(missing {missing[:3]}{'...' if len(missing) > 3 else ''}, "
            f"unexpected {unexpected[:3]}{'...' if len(unexpected) > 3 else ''})"
        )
    for key, shape in expected.items():
        if tuple(state[key].shape) != shape:
            raise CheckpointError(
                f"architecture mismatch: {path}: {key} has shape {tuple(state[key].shape)}, "
                f"the config (ngf={config.ngf}, num_downs={config.num_downs}, "
                f"{len(config.conditions)} conditions) needs {shape}"
            )


def load_generator(
    path_or_checkpoint: str | Path | Checkpoint, *, map_location: Any = "cpu"
) -> tuple[torch.nn.Module, Checkpoint]:
    """Rebuild the generator from a checkpoint, weights loaded strictly, in eval mode."""
    ckpt = path_or_checkpoint if isinstance(path_or_checkpoint, Checkpoint) else load(path_or_checkpoint)
    model = build_generator(ckpt.config)
    try:
        model.load_state_dict(ckpt.state_dict, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"architecture mismatch: {exc}") from None
    return model.to(map_location).eval(), ckpt


# ---------------------------------------------------------------------------
# Training state (train_state.pt): what --resume needs besides the weights
# ---------------------------------------------------------------------------

TRAIN_STATE_FORMAT = "dermgan-train-state"


@dataclass
class TrainingState:
    """The parts of a training run that generator.pt does not hold, plus its counters.

    The optimisers, scalers and discriminator are the live objects the loop updates;
    :func:`training_state_load` restores into them in place, so a resumed run continues
    with exactly the state an uninterrupted one would have.
    """

    discriminator: torch.nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    scaler_g: torch.amp.GradScaler
    scaler_d: torch.amp.GradScaler
    step: int = 0
    elapsed: float = 0.0  # training seconds so far, summed over resumed sessions
    images_seen: int = 0


def training_state_save(path: str | Path, state: TrainingState, *, device: torch.device) -> None:
    """Write ``state`` and the global RNG state (CPU, and CUDA when training there) atomically."""
    payload: dict[str, Any] = {
        "format": TRAIN_STATE_FORMAT,
        "step": state.step,
        "elapsed": state.elapsed,
        "images_seen": state.images_seen,
        "discriminator": state.discriminator.state_dict(),
        "opt_g": state.opt_g.state_dict(),
        "opt_d": state.opt_d.state_dict(),
        "scaler_g": state.scaler_g.state_dict(),
        "scaler_d": state.scaler_d.state_dict(),
        "rng_cpu": torch.get_rng_state(),
    }
    if device.type == "cuda":
        payload["rng_cuda"] = torch.cuda.get_rng_state()
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    _atomic_write(Path(path), buffer.getvalue())


def training_state_load(path: str | Path, state: TrainingState, *, device: torch.device) -> None:
    """Restore what :func:`training_state_save` wrote into ``state`` and the global RNGs.

    Raises CheckpointError when the file is not a training state (``weights_only``, so a
    hostile file is refused rather than run).
    """
    path = Path(path)
    payload = torch.load(path, map_location=device, weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != TRAIN_STATE_FORMAT:
        raise CheckpointError(f"{path} is not a training state file")
    state.discriminator.load_state_dict(payload["discriminator"])
    state.opt_g.load_state_dict(payload["opt_g"])
    state.opt_d.load_state_dict(payload["opt_d"])
    state.scaler_g.load_state_dict(payload["scaler_g"])
    state.scaler_d.load_state_dict(payload["scaler_d"])
    torch.set_rng_state(payload["rng_cpu"].cpu())
    if device.type == "cuda" and "rng_cuda" in payload:
        torch.cuda.set_rng_state(payload["rng_cuda"].cpu())
    state.step = int(payload["step"])
    state.elapsed = float(payload["elapsed"])
    state.images_seen = int(payload["images_seen"])
