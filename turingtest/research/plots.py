"""Server-rendered plots of a study report (matplotlib, Agg backend, SVG and PNG).

Each plot is a function of the report dict (``reports.build(study).to_dict()``, schema in
``turingtest/reports/schema.py``); the ROC curve also needs the ordinal ratings themselves, which
it reads through ``reports.read_rows`` (the report's own one query), so it plots exactly
the confidence-signed ratings the report's AUC was computed from.

Rendering is done per request into a fresh ``Figure`` (no pyplot global state, so it is
thread-safe); the views cache the bytes until new judgments arrive.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from turingtest import reports  # noqa: E402
from turingtest.library.models import Image  # noqa: E402
from turingtest.reports.tables import BREAKDOWN_LABELS  # noqa: E402
from turingtest.studies.models import RaterProfile  # noqa: E402

CONTENT_TYPES = {"svg": "image/svg+xml", "png": "image/png"}
CHANCE_COLOUR = "#b3261e"
BAR_COLOUR = "#2457c5"
REAL_COLOUR = "#1c7c3a"
SYN_COLOUR = "#8a4fbf"


@dataclass(frozen=True)
class PlotInfo:
    name: str
    title: str
    alt: str
    wide: bool = False  # its own full-width card on the dashboard


class Unavailable(Exception):
    """The data cannot make this plot yet; the message is the short reason shown instead."""


def _prop(p: dict[str, Any] | None) -> tuple[float, float, float] | None:
    if not p or p.get("proportion") is None:
        return None
    return p["proportion"], p.get("ci_low") or p["proportion"], p.get("ci_high") or p["proportion"]


def _errorbars(
    ax: Any, labels: list[str], props: list[dict[str, Any] | None], *, horizontal: bool = True
) -> bool:
    """Points with CI whiskers against the 50% line; returns False when nothing to draw."""
    vals = [(lab, _prop(p)) for lab, p in zip(labels, props)]
    vals = [(lab, v) for lab, v in vals if v is not None]
    if not vals:
        return False
    y = np.arange(len(vals))
    est = np.array([v[0] for _, v in vals])
    lo = est - np.array([v[1] for _, v in vals])
    hi = np.array([v[2] for _, v in vals]) - est
    ax.errorbar(est, y, xerr=[lo, hi], fmt="o", color=BAR_COLOUR, ecolor="#7a8aa8", capsize=3)
    ax.axvline(0.5, color=CHANCE_COLOUR, linestyle="--", linewidth=1, label="chance (50%)")
    ax.set_yticks(y, [lab for lab, _ in vals])
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.grid(axis="x", alpha=0.3)
    return True


def _balanced(det: dict[str, Any]) -> float | None:
    """A rater's balanced accuracy, (sensitivity + specificity) / 2, from the report's counts."""
    se, sp = _prop(det.get("sensitivity")), _prop(det.get("specificity"))
    return None if se is None or sp is None else (se[0] + sp[0]) / 2


def per_rater_accuracy(report: dict[str, Any], study: Any) -> Figure:
    """Each rater's balanced accuracy against the headline's crossed CI band.

    The band is the reader-study interval of the reader-averaged balanced accuracy (raters
    and images random), not a pooled Wilson interval, which would pretend the judgments
    were independent and look far narrower than the evidence allows.
    """
    raters = [(r, _balanced(r["detection"])) for r in report.get("detection", {}).get("per_rater") or []]
    raters = [(r, v) for r, v in raters if v is not None]
    if not raters:
        raise Unavailable("No rater has judged both real and synthetic images yet.")
    # A caterpillar plot: sorted by balanced accuracy, so the spread across raters is what one sees.
    raters.sort(key=lambda rv: rv[1], reverse=True)
    # Many raters: keep the figure readable by shrinking rows rather than growing without bound.
    row_in = 0.32 if len(raters) <= 40 else max(0.1, 13 / len(raters))
    fig = Figure(figsize=(7, max(2.5, row_in * len(raters) + 1.3)))
    ax = fig.add_subplot()
    if len(raters) > 40:
        ax.tick_params(axis="y", labelsize=max(3, 8 * row_in / 0.32))
    y = np.arange(len(raters))
    ax.plot([v for _, v in raters], y, "o", color=BAR_COLOUR, label="rater")
    ax.set_yticks(y, [f"{r['rater']} ({r.get('role', '')})" for r, _ in raters])
    ax.axvline(0.5, color=CHANCE_COLOUR, linestyle="--", linewidth=1, label="chance (0.5)")
    ba = (report.get("headline") or {}).get("balanced_accuracy")
    if ba and ba.get("ci_low") is not None:
        ax.axvspan(
            ba["ci_low"],
            ba["ci_high"],
            color=BAR_COLOUR,
            alpha=0.12,
            label=f"reader-averaged {ba['estimate']:.2f}, crossed 95% CI",
        )
        ax.axvline(ba["estimate"], color=BAR_COLOUR, linewidth=1)
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.grid(axis="x", alpha=0.3)
    ax.set_xlabel("Balanced accuracy per rater\nband: crossed 95% CI (raters and images random)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def roc_points(signed: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Empirical ROC of ratings (higher = more "synthetic"), one point per distinct threshold.

    Its trapezoid area equals the Mann–Whitney AUC with ties counted half (``stats.rating_auc``).
    """
    thresholds = np.unique(signed)[::-1]
    pos, neg = signed[truth], signed[~truth]
    tpr = [0.0] + [float((pos >= t).mean()) if pos.size else 0.0 for t in thresholds]
    fpr = [0.0] + [float((neg >= t).mean()) if neg.size else 0.0 for t in thresholds]
    return np.array(fpr), np.array(tpr)


def signed_ratings(study: Any) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Confidence-signed ratings and truth of first showings, pooled and per rater role.

    Same convention as the report: +c for "synthetic", −c for "real", a missing confidence
    counts as 1.
    """
    rows = reports.read_rows(study)
    if rows.n == 0:
        return {}
    kinds = dict(Image.objects.filter(study_items__study=study).values_list("pk", "kind"))
    first = np.isnan(rows.repeat_of) & np.isin(rows.image, np.fromiter(kinds, dtype=np.float64))
    truth = np.array([kinds[int(i)] == "synthetic" for i in rows.image[first]], dtype=bool)
    conf = rows.confidence[first]
    signed = np.where(rows.says_synthetic[first] == 1.0, 1.0, -1.0) * np.where(np.isnan(conf), 1.0, conf)
    out = {"all raters": (signed, truth)}
    roles = dict(RaterProfile.objects.filter(user__assignments__study=study).values_list("user_id", "role"))
    rater_role = np.array([roles.get(int(r), "other") for r in rows.rater[first]])
    for role in sorted(set(rater_role)):
        sel = rater_role == role
        if len(set(rater_role)) > 1:
            out[role] = (signed[sel], truth[sel])
    return out


def roc(report: dict[str, Any], study: Any) -> Figure:
    groups = signed_ratings(study)
    pooled = groups.get("all raters")
    if pooled is None:
        raise Unavailable("No answers yet.")
    if pooled[1].all() or not pooled[1].any():
        raise Unavailable("The ROC needs answers on both real and synthetic images.")
    fig = Figure(figsize=(5.5, 5))
    ax = fig.add_subplot()
    for name, (signed, truth) in groups.items():
        if truth.all() or not truth.any():
            continue
        fpr, tpr = roc_points(signed, truth)
        area = float(np.trapezoid(tpr, fpr))
        ax.plot(
            fpr,
            tpr,
            marker="o",
            markersize=3,
            linewidth=2.2 if name == "all raters" else 1.2,
            label=f"{name} (AUC {area:.2f})",
        )
    auc = report.get("detection", {}).get("pooled", {}).get("auc")
    if auc and auc.get("ci_low") is not None:
        ax.set_title(
            f"Pooled AUC {auc['auc']:.2f} (95% CI {auc['ci_low']:.2f}–{auc['ci_high']:.2f})", fontsize=10
        )
    ax.plot([0, 1], [0, 1], color=CHANCE_COLOUR, linestyle="--", linewidth=1, label="chance")
    ax.set_xlabel("False-alarm rate (real called synthetic)")
    ax.set_ylabel("Hit rate (synthetic called synthetic)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def diagnosis_confusion(report: dict[str, Any], study: Any) -> Figure:
    confusion = report.get("diagnosis", {}).get("confusion") or {}
    labels = confusion.get("labels") or []
    real, syn = np.array(confusion.get("real") or []), np.array(confusion.get("synthetic") or [])
    if not labels:
        raise Unavailable("The study asks no diagnosis.")
    if (real.sum() + syn.sum()) == 0:
        raise Unavailable("No diagnosis answered yet.")
    # Sized by the number of classes (a full-width card): each cell stays legible.
    n = len(labels)
    panel = min(9.0, max(3.5, 0.42 * n + 1.8))
    tick_size = 9 if n <= 12 else max(5, 9 - (n - 12) // 4)
    fig = Figure(figsize=(2 * panel + 1.6, panel + 1.0), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, matrix, title in ((axes[0], real, "Real images"), (axes[1], syn, "Synthetic images")):
        totals = matrix.sum(axis=1, keepdims=True)
        share = np.divide(matrix, totals, out=np.zeros(matrix.shape, dtype=float), where=totals > 0)
        im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=tick_size)
        ax.set_yticks(range(len(labels)), labels, fontsize=tick_size)
        ax.set_xlabel("Answered diagnosis")
        ax.set_ylabel("True condition")
        ax.set_title(f"{title} (n={int(matrix.sum())})")
        if len(labels) <= 12:
            for i in range(len(labels)):
                for j in range(len(labels)):
                    if matrix[i, j]:
                        ax.text(
                            j,
                            i,
                            int(matrix[i, j]),
                            ha="center",
                            va="center",
                            fontsize=9,
                            color="white" if share[i, j] > 0.5 else "black",
                        )
    fig.colorbar(im, ax=axes, shrink=0.8, label="share of the row (true condition)")
    return fig


def fooling_rate(report: dict[str, Any], study: Any) -> Figure:
    hist = report.get("images", {}).get("fooling_rate_histogram") or {}
    counts, edges = hist.get("counts") or [], hist.get("edges") or []
    if not counts or sum(counts) == 0:
        raise Unavailable("No synthetic image has been judged yet.")
    fig = Figure(figsize=(6.5, 3.8))
    ax = fig.add_subplot()
    edges_a = np.array(edges, dtype=float)
    ax.bar(edges_a[:-1], counts, width=np.diff(edges_a), align="edge", color=SYN_COLOUR, edgecolor="white")
    ax.axvline(0.5, color=CHANCE_COLOUR, linestyle="--", linewidth=1, label="called real by half the raters")
    ax.set_xlabel("Fooling rate (share of raters who called the synthetic image real)")
    ax.set_ylabel("Synthetic images")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # images come in whole numbers
    ax.set_xlim(0, 1)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


_BREAKDOWNS = tuple((key, text[:1].upper() + text[1:]) for key, text in BREAKDOWN_LABELS.items())


def breakdowns(report: dict[str, Any], study: Any) -> Figure:
    data = report.get("breakdowns") or {}
    present = [(key, title) for key, title in _BREAKDOWNS if data.get(key)]
    if not present:
        raise Unavailable("No group has judgments yet.")
    heights = [max(1.6, 0.3 * len(data[key]) + 0.9) for key, _ in present]
    fig = Figure(figsize=(7, sum(heights) + 0.6))
    axes = fig.subplots(len(present), 1, gridspec_kw={"height_ratios": heights}, squeeze=False)[:, 0]
    drew = False
    for ax, (key, title) in zip(axes, present):
        rows = data[key]
        drew |= _errorbars(
            ax, [str(r["group"]) for r in rows], [r["detection"].get("accuracy") for r in rows]
        )
        ax.set_title(title, fontsize=10, loc="left")
    if not drew:
        raise Unavailable("No group has judgments yet.")
    axes[-1].set_xlabel("Detection accuracy (95% Wilson CI, judgment-level: assumes independent judgments)")
    fig.tight_layout()
    return fig


# Each function draws its figure or raises ``Unavailable`` with the reason.
PLOTS: dict[str, tuple[PlotInfo, Callable[[dict[str, Any], Any], Figure]]] = {
    "per_rater_accuracy": (
        PlotInfo(
            "per_rater_accuracy",
            "Per-rater balanced accuracy",
            "Each rater's balanced accuracy against the chance line and the headline's crossed 95% CI band",
        ),
        per_rater_accuracy,
    ),
    "roc": (
        PlotInfo(
            "roc",
            "ROC from confidence-signed ratings",
            "ROC curves of confidence-signed real/synthetic ratings, pooled and by rater role",
        ),
        roc,
    ),
    "diagnosis_confusion": (
        PlotInfo(
            "diagnosis_confusion",
            "Diagnosis confusion, real vs synthetic",
            "Heatmaps of true condition against answered diagnosis for real and for synthetic images",
            wide=True,
        ),
        diagnosis_confusion,
    ),
    "fooling_rate": (
        PlotInfo(
            "fooling_rate",
            "Fooling-rate histogram",
            "Histogram of how many raters each synthetic image fooled",
        ),
        fooling_rate,
    ),
    "breakdowns": (
        PlotInfo(
            "breakdowns",
            "Detection by condition, skin type, lesion size and rater",
            "Detection accuracy with CIs broken down by condition, skin type, lesion size, rater role and experience",
        ),
        breakdowns,
    ),
}


def available(report: dict[str, Any]) -> list[PlotInfo]:
    """The plots worth showing: none until there is at least one first-showing judgment."""
    if not report.get("detection", {}).get("pooled", {}).get("n"):
        return []
    return [info for info, _ in PLOTS.values()]


def render(name: str, report: dict[str, Any], study: Any, *, fmt: str) -> bytes | None:
    """The plot as SVG or PNG bytes, or None when the data cannot make it yet."""
    body, reason = render_or_reason(name, report, study, fmt=fmt)
    return None if reason else body


def render_or_reason(name: str, report: dict[str, Any], study: Any, *, fmt: str) -> tuple[bytes, str]:
    """(bytes, "") for the plot, or (a small placeholder image saying why, the reason)."""
    if fmt not in CONTENT_TYPES:
        raise ValueError(f"unknown plot format {fmt!r}")
    if not report.get("detection", {}).get("pooled", {}).get("n"):
        reason = "No answers yet: plots appear once raters answer."
        return _save(placeholder(reason), fmt), reason
    try:
        fig = PLOTS[name][1](report, study)
    except Unavailable as exc:
        return _save(placeholder(str(exc)), fmt), str(exc)
    return _save(fig, fmt), ""


def placeholder(reason: str) -> Figure:
    """A small figure that says why a plot is not drawn (in place of a broken image)."""
    fig = Figure(figsize=(5, 1.4))
    fig.text(
        0.5, 0.62, "Not drawn yet", ha="center", va="center", fontsize=12, weight="bold", color="#5b6473"
    )
    fig.text(0.5, 0.32, textwrap.fill(reason, 60), ha="center", va="center", fontsize=10, color="#5b6473")
    return fig


def _save(fig: Figure, fmt: str) -> bytes:
    buf = io.BytesIO()
    fig.savefig(
        buf, format=fmt, dpi=144 if fmt == "png" else 100, metadata={"Date": None} if fmt == "svg" else None
    )
    return buf.getvalue()


def most_convincing(report: dict[str, Any], *, limit: int = 8) -> list[dict[str, Any]]:
    """Tokens and fooling rates of the synthetic images most often called real."""
    images = report.get("images") or {}
    by_token = {row["token"]: row for row in images.get("per_image") or []}
    out = []
    for token in (images.get("most_convincing") or [])[:limit]:
        row = by_token.get(token, {})
        rate = row.get("fooling_rate")
        label = f"fooled {rate:.0%} of {row.get('n', 0)}" if rate is not None else ""
        if row.get("condition"):
            label = f"{row['condition']} · {label}"
        out.append({"token": token, "label": label, "fooling_rate": rate})
    return out
