"""Leak audit: can anything a rater's browser observes, besides the pixels, tell real from synthetic?

``audit_collect`` walks a study exactly as a rater's browser would (Django test
``Client``, a temporary rater, the real state/answer/image endpoints) inside a
transaction that is rolled back, so the study keeps no trace. It records, per item,
URL shape and length, status, every response header, the state JSON's shape, image
format, pixel size, mode, metadata, byte size and time to first byte.

``audit_analyse`` then reports, per feature, the AUC of separating real from synthetic
(direction-free: max(AUC, 1 - AUC)) with a stratified bootstrap 95% CI, plus the
cross-validated AUC of a logistic-regression classifier over all non-content features.
Categorical features are target-encoded out of fold, so a feature with a distinct
value per item cannot separate the classes by memorising them.

A feature is flagged when its AUC exceeds 0.6 and its CI's lower bound exceeds 0.5
(with a few dozen items a pure-noise feature often reaches 0.6 by chance; requiring the
interval to clear chance keeps the audit from crying wolf). Byte size (the body's length
and the ``Content-Length`` header) is a leak like any other: stored images are
constant-size (``turingtest.images.encode_png``), so a byte size that separates the
kinds means an image escaped that encoding. It is flagged on AUC > 0.6 alone, without
the CI condition, because byte lengths do not vary from fetch to fetch as timings do.

Content-driven features are reported but never fail the audit: they are properties of
the pixels, which are what raters are asked to judge. ``sharpness`` (mean squared
Laplacian of the grey image: high-frequency energy) is one, so a researcher sees when,
say, upscaled 128-px renders are softer than downscaled photos; ``resolution_parity``
compares the images' native resolutions behind it.
"""

from __future__ import annotations

import io
import json
import re
import statistics
import time
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.http.request import validate_host
from django.test import Client
from django.utils import timezone
from PIL import Image as PILImage
from scipy import optimize, stats

from turingtest.studies.models import Assignment, Presentation, Study

CONTENT_FEATURES = {"sharpness"}
# Deterministic per item: flagged on the AUC alone (see the module docstring).
STRICT_FEATURES = {"byte_size", "header:content-length"}
FLAG_AUC = 0.6
N_BOOT = 1000
N_FOLDS = 5
TTFB_REPEATS = 3


@dataclass(frozen=True)
class FeatureResult:
    name: str
    categorical: bool
    content_driven: bool
    n_distinct: int
    auc: float
    ci_low: float
    ci_high: float

    @property
    def flagged(self) -> bool:
        if self.name in STRICT_FEATURES:
            return self.auc > FLAG_AUC
        return self.auc > FLAG_AUC and self.ci_low > 0.5


def _host() -> str:
    host = urlsplit(settings.SITE_URL).hostname or ""
    if host and validate_host(host, settings.ALLOWED_HOSTS):
        return host
    for candidate in settings.ALLOWED_HOSTS:
        candidate = candidate.lstrip(".").replace("*", "audit.local")
        if validate_host(candidate, settings.ALLOWED_HOSTS):
            return candidate
    return "testserver"


def _url_shape(url: str) -> str:
    """'/img/3fa9…' -> '/img/' + 'h'*32: the shape, not the value."""
    shape = re.sub(r"[0-9a-f]", "h", url.split("?")[0])
    return re.sub(r"[g-zA-Z]", "a", shape[5:]) if shape.startswith("/img/") else shape


def sharpness(grey: np.ndarray) -> float:
    """High-frequency energy: the mean squared 4-neighbour Laplacian of a grey image (0..255).

    Blur, upscaling and smooth renders lower it; noise, hair and fine texture raise it.
    Border pixels are left out (no padding artefacts).
    """
    g = np.asarray(grey, dtype=np.float64)
    if g.ndim != 2 or min(g.shape) < 3:
        return 0.0
    lap = g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:] - 4 * g[1:-1, 1:-1]
    return float(np.mean(lap**2))


def _image_features(data: bytes) -> dict:
    try:
        with PILImage.open(io.BytesIO(data)) as im:
            meta = sorted(k for k in im.info if k not in {"dpi"}) + (["exif"] if im.getexif() else [])
            return {
                "format": im.format or "?",
                "width": im.width,
                "height": im.height,
                "mode": im.mode,
                "metadata_keys": ",".join(meta) or "-",
                "sharpness": round(sharpness(np.asarray(im.convert("L"))), 3),
            }
    except Exception:
        return {
            "format": "unreadable",
            "width": 0,
            "height": 0,
            "mode": "-",
            "metadata_keys": "-",
            "sharpness": 0.0,
        }


def _masked_state_shape(state: dict) -> str:
    """The state JSON with token values masked: what differs between items besides the token."""
    item = dict(state.get("item") or {})
    for key in ("token", "image_url"):
        if key in item:
            item[key] = _url_shape(str(item[key]))
    item.pop("position", None)
    return json.dumps(item, sort_keys=True)


def audit_collect(*, study: Study) -> list[dict]:
    """Fetch every study item as a rater would; returns one row of observations per item.

    Everything happens in one transaction that is rolled back: the temporary rater,
    its assignment and answers, and a draft study's temporary opening.
    """
    rows: list[dict] = []
    with transaction.atomic():
        if study.status != Study.Status.OPEN:
            Study.objects.filter(pk=study.pk).update(status=Study.Status.OPEN)
        rater = get_user_model().objects.create_user(username=f"audit-{uuid.uuid4().hex[:12]}")
        items = list(study.items.filter(is_tutorial=False).select_related("image").order_by("?"))
        assignment = Assignment.objects.create(
            study=study, rater=rater, seed=0, consented_at=timezone.now(), n_items=len(items)
        )
        Presentation.objects.bulk_create(
            [Presentation(assignment=assignment, item=item, position=i) for i, item in enumerate(items)]
        )
        kind_of = {
            p.public_token: p.item.image.kind for p in assignment.presentations.select_related("item__image")
        }
        client = Client(HTTP_HOST=_host())
        secure = bool(getattr(settings, "SECURE_SSL_REDIRECT", False))
        client.force_login(rater)
        state_url = f"/api/rate/{study.pk}/state"
        answers_url = f"/api/rate/{study.pk}/answers"
        state = client.get(state_url, secure=secure).json()
        while state.get("item"):
            item = state["item"]
            url = item["image_url"]
            timings = []
            responses = []
            for _ in range(TTFB_REPEATS):
                start = time.perf_counter()
                responses.append(client.get(url, secure=secure))
                timings.append((time.perf_counter() - start) * 1000)
            # The first response is the image: an exposure-limited study serves it only once
            # (the repeats, there, time the same refusal for every item).
            response = responses[0]
            data = response.content
            row = {
                "kind": kind_of[item["token"]],
                "url_length": len(url),
                "url_shape": _url_shape(url),
                "status": response.status_code,
                "header_names": ",".join(sorted(h.lower() for h in response.headers)),
                "state_shape": _masked_state_shape(state),
                "byte_size": len(data),
                "ttfb_ms": statistics.median(timings),
                **_image_features(data),
            }
            for header, value in response.headers.items():
                name = header.lower()
                if name in {"date", "set-cookie"}:
                    continue
                row[f"header:{name}"] = int(value) if value.isdigit() else value
            rows.append(row)
            payload = {"token": item["token"], "client_key": str(uuid.uuid4()), "says_synthetic": False}
            result = client.post(
                answers_url, json.dumps(payload), content_type="application/json", secure=secure
            )
            if result.status_code not in (200, 201):
                raise RuntimeError(
                    f"the answer endpoint refused the audit rater: {result.status_code} {result.content!r}"
                )
            state = result.json()["state"]
        transaction.set_rollback(True)
    return rows


# --- analysis (pure numpy / scipy) ----------------------------------------------------------------


def auc_score(y: np.ndarray, score: np.ndarray) -> float:
    """Mann-Whitney AUC: P(score of a positive > score of a negative), ties count half."""
    y = np.asarray(y, dtype=bool)
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 == 0 or n0 == 0:
        raise ValueError("AUC needs both classes")
    ranks = stats.rankdata(score)
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _separation(y: np.ndarray, score: np.ndarray) -> float:
    a = auc_score(y, score)
    return max(a, 1 - a)


def bootstrap_ci(
    y: np.ndarray, score: np.ndarray, *, n_boot: int = N_BOOT, seed: int = 0
) -> tuple[float, float]:
    """Stratified percentile bootstrap CI of the AUC, on the direction-free scale.

    Vectorised: the positive-vs-negative comparison matrix is computed once and each
    resample averages a sub-block of it (chunks of resamples bound the memory).
    """
    rng = np.random.default_rng(seed)
    y = np.asarray(y, dtype=bool)
    sp, sn = score[y], score[~y]
    wins = (sp[:, None] > sn[None, :]) + 0.5 * (sp[:, None] == sn[None, :])  # (n1, n0)
    values = np.empty(n_boot)
    chunk = max(1, 2_000_000 // max(1, sp.size * sn.size))
    for start in range(0, n_boot, chunk):
        m = min(chunk, n_boot - start)
        pi = rng.integers(0, sp.size, size=(m, sp.size))
        ni = rng.integers(0, sn.size, size=(m, sn.size))
        values[start : start + m] = wins[pi[:, :, None], ni[:, None, :]].mean(axis=(1, 2))
    lo, hi = np.percentile(values, [2.5, 97.5])
    # The interval is taken on the signed AUC (so "excludes 0.5" is meaningful), then
    # reported on the direction-free scale of the point estimate.
    if wins.mean() >= 0.5:
        return float(lo), float(hi)
    return float(1 - hi), float(1 - lo)


def _folds(y: np.ndarray, k: int, seed: int) -> list[np.ndarray]:
    """Stratified fold ids (each class dealt round-robin after a seeded shuffle)."""
    rng = np.random.default_rng(seed)
    fold = np.empty(y.size, dtype=int)
    for cls in (True, False):
        idx = rng.permutation(np.flatnonzero(y == cls))
        fold[idx] = np.arange(idx.size) % k
    folds = [np.flatnonzero(fold == f) for f in range(k)]
    return [f for f in folds if f.size]


def target_encode_oof(y: np.ndarray, values: list[str], *, k: int = N_FOLDS, seed: int = 0) -> np.ndarray:
    """Out-of-fold synthetic rate per category (unseen categories get the training prior)."""
    values_arr = np.array(values, dtype=object)
    out = np.empty(y.size)
    for test in _folds(y, k, seed):
        train = np.setdiff1d(np.arange(y.size), test)
        prior = y[train].mean() if train.size else 0.5
        rates = {}
        for v in set(values_arr[train]):
            mask = values_arr[train] == v
            rates[v] = y[train][mask].mean()
        out[test] = [rates.get(v, prior) for v in values_arr[test]]
    return out


def _design(rows: list[dict], names: list[str], categorical: dict[str, bool]) -> tuple[list, list]:
    cols_num = [n for n in names if not categorical[n]]
    cols_cat = [n for n in names if categorical[n]]
    return cols_num, cols_cat


def _fit_logistic(X: np.ndarray, y: np.ndarray, l2: float = 1.0) -> np.ndarray:
    """L2-regularised logistic regression by L-BFGS; returns weights with the bias last."""
    Xb = np.hstack([X, np.ones((X.shape[0], 1))])
    t = y.astype(float)

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = Xb @ w
        p = 1 / (1 + np.exp(-z))
        nll = np.sum(np.logaddexp(0, z) - t * z)
        reg = 0.5 * l2 * np.sum(w[:-1] ** 2)
        grad = Xb.T @ (p - t)
        grad[:-1] += l2 * w[:-1]
        return nll + reg, grad

    res = optimize.minimize(loss, np.zeros(Xb.shape[1]), jac=True, method="L-BFGS-B")
    return res.x


def classifier_oof_scores(
    rows: list[dict], y: np.ndarray, names: list[str], categorical: dict[str, bool], *, seed: int = 0
) -> np.ndarray:
    """Cross-validated (out-of-fold) logistic-regression scores over ``names``.

    Numeric features are standardised and categorical ones one-hot encoded using the
    training fold only.
    """
    cols_num, cols_cat = _design(rows, names, categorical)
    out = np.zeros(y.size)
    for test in _folds(y, N_FOLDS, seed):
        train = np.setdiff1d(np.arange(y.size), test)
        if train.size == 0 or len(set(y[train])) < 2:
            out[test] = 0.5
            continue

        def matrix(idx: np.ndarray, _train: np.ndarray = train) -> np.ndarray:
            parts = []
            for c in cols_num:
                col = np.array([float(rows[i][c]) for i in range(len(rows))])
                mu, sd = col[_train].mean(), col[_train].std() or 1.0
                parts.append(((col - mu) / sd)[idx, None])
            for c in cols_cat:
                cats = sorted({str(rows[i][c]) for i in _train})
                if len(cats) < 2:
                    continue
                parts.append(np.array([[str(rows[i][c]) == v for v in cats] for i in idx], dtype=float))
            return np.hstack(parts) if parts else np.zeros((idx.size, 0))

        Xtr, Xte = matrix(train), matrix(test)
        if Xtr.shape[1] == 0:
            out[test] = 0.5
            continue
        w = _fit_logistic(Xtr, y[train])
        out[test] = np.hstack([Xte, np.ones((Xte.shape[0], 1))]) @ w
    return out


def audit_analyse(rows: list[dict]) -> tuple[list[FeatureResult], FeatureResult, FeatureResult]:
    """Per-feature results, then the classifier over non-content features and over all features."""
    if not rows:
        raise ValueError("no items were fetched")
    y = np.array([r["kind"] == "synthetic" for r in rows])
    if y.all() or not y.any():
        raise ValueError("the audit needs both real and synthetic items")
    names = sorted({k for r in rows for k in r} - {"kind"})
    for r in rows:
        for n in names:
            r.setdefault(n, "<absent>")
    categorical = {
        n: not all(isinstance(r[n], int | float) and not isinstance(r[n], bool) for r in rows) for n in names
    }
    results = []
    for n in names:
        if categorical[n]:
            score = target_encode_oof(y, [str(r[n]) for r in rows])
        else:
            score = np.array([float(r[n]) for r in rows])
        n_distinct = len({str(r[n]) for r in rows})
        if n_distinct == 1:
            auc, lo, hi = 0.5, 0.5, 0.5
        else:
            auc = _separation(y, score)
            lo, hi = bootstrap_ci(y, score)
        results.append(FeatureResult(n, categorical[n], n in CONTENT_FEATURES, n_distinct, auc, lo, hi))
    classifiers = []
    for label, cols in (
        ("classifier (non-content features)", [n for n in names if n not in CONTENT_FEATURES]),
        ("classifier (all features)", names),
    ):
        score = classifier_oof_scores(rows, y, cols, categorical)
        if np.ptp(score) == 0:
            auc, lo, hi = 0.5, 0.5, 0.5
        else:
            auc = _separation(y, score)
            lo, hi = bootstrap_ci(y, score)
        classifiers.append(
            FeatureResult(label, False, label.endswith("(all features)"), len(cols), auc, lo, hi)
        )
    return results, classifiers[0], classifiers[1]


def format_table(results: list[FeatureResult], *extra: FeatureResult) -> str:
    lines = [f"{'feature':<36} {'type':<6} {'distinct':>8} {'AUC':>6} {'95% CI':>15}  note"]
    for r in [*results, *extra]:
        note = "content-driven" if r.content_driven else ""
        if r.flagged:
            note = ("FLAG " + note).strip()
        kind = "cat" if r.categorical else "num"
        lines.append(
            f"{r.name:<36} {kind:<6} {r.n_distinct:>8} {r.auc:>6.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}]  {note}"
        )
    return "\n".join(lines)


@dataclass(frozen=True)
class AuditOutcome:
    """``audit_study``'s answer: the table, and the features that fail the audit."""

    n_items: int
    n_synthetic: int
    results: list[FeatureResult]
    classifier: FeatureResult  # over non-content features
    classifier_all: FeatureResult
    flagged: list[str]  # failed: flagged, not content-driven, and flagged again on a second fetch
    unconfirmed: list[str]  # flagged once but not on the second fetch (noise)

    @property
    def table(self) -> list[FeatureResult]:
        return [*self.results, self.classifier, self.classifier_all]


def audit_study(*, study: Study) -> AuditOutcome:
    """Collect and analyse a study; a flagged feature must replicate on a second fetch.

    The one entry point of the audit (the ``audit_leaks`` command, the study page's task).
    Raises ``ValueError`` when the study cannot be audited (no items, one kind only).
    """
    rows = audit_collect(study=study)
    results, clf, clf_all = audit_analyse(rows)
    flagged = [r.name for r in [*results, clf] if r.flagged and not r.content_driven]
    unconfirmed: list[str] = []
    if flagged:
        # A real leak replicates; a timing feature that crossed the line by chance (a 95%
        # CI clears 0.5 for 1 noise feature in 20) does not. Re-fetch and keep what repeats.
        again, clf2, _ = audit_analyse(audit_collect(study=study))
        repeated = {r.name for r in [*again, clf2] if r.flagged}
        unconfirmed = [name for name in flagged if name not in repeated]
        flagged = [name for name in flagged if name in repeated]
    return AuditOutcome(
        n_items=len(rows),
        n_synthetic=sum(r["kind"] == "synthetic" for r in rows),
        results=results,
        classifier=clf,
        classifier_all=clf_all,
        flagged=flagged,
        unconfirmed=unconfirmed,
    )


# --- resolution parity ----------------------------------------------------------------------------


@dataclass(frozen=True)
class KindResolution:
    """Native resolutions (side of the square that was resized) of one kind's items."""

    kind: str
    n: int
    n_unknown: int
    min_side: int | None
    median_side: float | None
    max_side: int | None
    n_upscaled: int  # native side below the stored size: detail was interpolated, not captured


@dataclass(frozen=True)
class ResolutionParity:
    """Do real and synthetic items of a study come from the same native resolution?

    Downscaling to the stored size keeps detail and upscaling invents none, so what a
    rater can see is the *effective* resolution, min(native side, stored side); the kinds
    differ when it separates them (direction-free AUC > 0.6, as for leaks), e.g. a
    128-px checkpoint upscaled to 256 against photos downscaled from 512.
    """

    kinds: tuple[KindResolution, ...]
    auc: float | None  # of the effective side; None when a kind has no known native size
    differs: bool
    message: str


def _kind_resolution(kind: str, sides: list[int | None], stored: list[int]) -> KindResolution:
    known = [s for s in sides if s is not None]
    upscaled = sum(1 for s, full in zip(sides, stored, strict=True) if s is not None and s < full)
    return KindResolution(
        kind=kind,
        n=len(sides),
        n_unknown=len(sides) - len(known),
        min_side=min(known) if known else None,
        median_side=float(np.median(known)) if known else None,
        max_side=max(known) if known else None,
        n_upscaled=upscaled,
    )


def resolution_parity(*, study: Study) -> ResolutionParity:
    """Compare the native resolution of the study's rated real and synthetic images (tutorials excluded)."""
    rows = list(
        study.items.filter(is_tutorial=False).values_list(
            "image__kind", "image__native_width", "image__native_height", "image__width", "image__height"
        )
    )
    by_kind: dict[str, tuple[list[int | None], list[int]]] = {"real": ([], []), "synthetic": ([], [])}
    for kind, nw, nh, w, h in rows:
        sides, stored = by_kind.setdefault(kind, ([], []))
        sides.append(min(nw, nh) if nw is not None and nh is not None else None)
        stored.append(min(w, h))
    kinds = tuple(_kind_resolution(k, *by_kind[k]) for k in ("real", "synthetic"))
    effective = [
        (kind == "synthetic", min(side, full))
        for kind in ("real", "synthetic")
        for side, full in zip(*by_kind[kind], strict=True)
        if side is not None
    ]
    y = np.array([e[0] for e in effective], dtype=bool)
    unknown = sum(k.n_unknown for k in kinds)
    if y.size == 0 or y.all() or not y.any():
        missing = [k.kind for k in kinds if k.n - k.n_unknown == 0]
        message = f"native resolution unknown for every {' and '.join(missing)} item" if missing else ""
        return ResolutionParity(kinds, None, False, message or "no items")
    auc = _separation(y, np.array([e[1] for e in effective], dtype=float))
    real, synthetic = kinds
    differs = auc > FLAG_AUC
    if differs:
        message = (
            f"real and synthetic images differ in native resolution (median side {real.median_side:g} px vs "
            f"{synthetic.median_side:g} px; {real.n_upscaled} real and {synthetic.n_upscaled} synthetic were "
            f"upscaled): sharpness alone may tell them apart. Render at (or above) the photos' resolution, "
            f"or draw photos of the checkpoint's resolution."
        )
    else:
        message = "real and synthetic images have comparable native resolution"
    if unknown:
        message += f" ({unknown} items of unknown native resolution left out)"
    return ResolutionParity(kinds, round(auc, 3), differs, message)


def format_resolution_parity(parity: ResolutionParity) -> str:
    lines = [
        f"{'native resolution':<18} {'n':>4} {'unknown':>7} {'min':>5} {'median':>7} {'max':>5} {'upscaled':>8}"
    ]
    for k in parity.kinds:
        cells = ["–" if v is None else f"{v:g}" for v in (k.min_side, k.median_side, k.max_side)]
        lines.append(
            f"{k.kind:<18} {k.n:>4} {k.n_unknown:>7} {cells[0]:>5} {cells[1]:>7} {cells[2]:>5} {k.n_upscaled:>8}"
        )
    auc = "–" if parity.auc is None else f"{parity.auc:.3f}"
    lines.append(f"{'WARNING: ' if parity.differs else ''}{parity.message} (AUC of effective side {auc})")
    return "\n".join(lines)
