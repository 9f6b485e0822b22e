"""What a finished run's admin page shows: the stored results JSON turned into template rows.

Fidelity: each set (overall, each condition) as a synthetic-vs-real row with its
real-vs-real baseline row right under it, and bars comparing the two. Augmentation (report
version 2): the headline beside the null check, every arm with its CIs across seeds and
patients, per-condition sensitivity by arm, and the report's plots. Pure reading of JSON
plus template rendering; file URLs come from the caller (the admin serves the files).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.template.loader import render_to_string

from turingtest.evaluation.models import AugmentationRun, FidelityRun

# (key, label) of the fidelity metrics drawn as bars beside their baseline; lower is closer
FIDELITY_BARS = (("fid", "FID"), ("kid_mean", "KID"))
BAR_PX = 300  # the longest bar
ARM_METRICS = (("balanced_accuracy", "balanced accuracy"), ("macro_f1", "macro-F1"), ("top1", "top-1"))
PLOTS = (
    ("plots/headline.png", "headline and null check: paired differences with 95% CIs"),
    ("plots/arms.png", "each arm's metrics: mean over seeds, 95% CI, one dot per seed"),
    ("plots/sensitivity.png", "per-condition sensitivity by arm with 95% CIs"),
    ("plots/training_loss.png", "training loss per epoch, each arm and seed"),
)


def kid_text(m: dict[str, Any]) -> str:
    """``0.0123 ± 0.0045 (bootstrap)``: the std says how it was computed (subsets or bootstrap)."""
    if m.get("kid_mean") is None:
        return "–"
    text = f"{m['kid_mean']:.4g} ± {m['kid_std']:.2g}"
    return text + (f" ({m['kid_std_method']})" if m.get("kid_std_method") else "")


def _g(value: float | None, digits: int = 4) -> str:
    # significant digits, not decimals: FID in a small feature space can be 0.0002
    return "–" if value is None else f"{value:.{digits}g}"


def fidelity_cells(m: dict[str, Any], *, with_ms_ssim: bool = True) -> list[str]:
    """One table row: n real, n synthetic, FID, KID ± std (method), precision, recall,
    diversity ratio, MS-SSIM synthetic / real (not computed for the baseline)."""
    ms_ssim = f"{_g(m.get('ms_ssim_fake'), 3)} / {_g(m.get('ms_ssim_real'), 3)}" if with_ms_ssim else "–"
    return [
        str(m["n_real"]),
        str(m["n_fake"]),
        _g(m.get("fid")),
        kid_text(m),
        _g(m.get("precision"), 3),
        _g(m.get("recall"), 3),
        _g(m.get("diversity_ratio"), 3),
        ms_ssim,
    ]


def fidelity_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One group per set (overall, then each condition): the synthetic row and its baseline row."""
    baseline = result.get("baseline") or {}
    names = ["overall", *sorted(result.get("per_condition", {}))]
    groups = []
    for name in names:
        m = result["overall"] if name == "overall" else result["per_condition"][name]
        b = baseline.get("overall") if name == "overall" else baseline.get("per_condition", {}).get(name)
        groups.append(
            {
                "name": name,
                "m": m,
                "cells": fidelity_cells(m),
                "baseline": b,
                "baseline_cells": None if b is None else fidelity_cells(b, with_ms_ssim=False),
            }
        )
    return groups


def fidelity_bars(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per metric, bars of the synthetic value and the real-vs-real value for each set, scaled to
    the metric's largest value. KID is unbiased and may be slightly negative when two sets
    match: a negative value is drawn as an empty bar (as close as it gets), with its number."""
    charts = []
    for key, label in FIDELITY_BARS:
        pairs = [
            (g["name"], g["m"].get(key), (g["baseline"] or {}).get(key))
            for g in groups
            if g["m"].get(key) is not None
        ]
        top = max([0.0, *(v for _, a, b in pairs for v in (a, b) if v is not None)])
        if top <= 0:
            continue
        rows = [{"name": n, "synthetic": _bar(a, top), "real": _bar(b, top)} for n, a, b in pairs]
        charts.append({"label": label, "rows": rows})
    return charts


def _bar(value: float | None, top: float) -> dict[str, Any] | None:
    if value is None:
        return None
    return {"text": _g(value), "px": max(1, round(BAR_PX * max(value, 0.0) / top))}


def fidelity_results_html(run: FidelityRun) -> str:
    """The results of a finished run (overall + per condition, each beside its baseline)."""
    if not run.results:
        return run.error or f"{run.status} ({round(100 * run.progress)}%)"
    groups = fidelity_rows(run.results)
    return render_to_string(
        "evaluation/fidelity_results.html",
        {"result": run.results, "groups": groups, "charts": fidelity_bars(groups)},
    )


def interval_text(cell: dict[str, Any] | None, *, signed: bool = False) -> str:
    """``0.512 [0.401, 0.634]``, with ``p = …`` for a difference; "–" where undefined."""
    if not cell or cell.get("value") is None:
        return "–"
    text = f"{cell['value']:+.3f}" if signed else f"{cell['value']:.3f}"
    if cell.get("ci_low") is not None:
        text += f" [{cell['ci_low']:.3f}, {cell['ci_high']:.3f}]"
    if cell.get("p_value") is not None:
        text += f", p = {cell['p_value']:.3g}"
    return text


def headline_text(report: dict[str, Any]) -> str:
    """The list column: headline Δ balanced accuracy with its CI (version-2 reports)."""
    if report.get("version") != 2:
        return "– (old report)"
    head = report["headline"]
    return f"{head['arm']} − {head['comparator']}: {interval_text(head['difference'], signed=True)}"


def _verdict(block: dict[str, Any]) -> dict[str, Any]:
    return {
        **block,
        "difference_text": interval_text(block["difference"], signed=True),
        "sensitivity": [
            {"code": code, "text": interval_text(cell, signed=True), "warning": cell.get("warning")}
            for code, cell in block["sensitivity_of_chosen"].items()
        ],
    }


def arm_order(report: dict[str, Any]) -> list[str]:
    """The arms in the order the experiment ran them (``config.arms``): PostgreSQL's jsonb does
    not keep the report's key order, so ``report["arms"]`` read back from a row may be shuffled."""
    declared = [a for a in report["config"].get("arms") or () if a in report["arms"]]
    return declared + sorted(set(report["arms"]) - set(declared))


def augmentation_context(report: dict[str, Any], file_url: Callable[[str], str]) -> dict[str, Any]:
    """Template context of a version-2 report; ``file_url(relative name)`` links its files."""
    order = arm_order(report)
    arms = {name: report["arms"][name] for name in order}
    rank = {name: k for k, name in enumerate(order)}
    # synthetic vs each other arm first (what the headline picks from), then the rest by arm order
    comparisons = sorted(
        report["comparisons"].values(), key=lambda d: (d["b"] != "synthetic", rank[d["b"]], rank[d["a"]])
    )
    arm_rows = [
        {
            "name": name,
            "description": arm["description"],
            "n_train": arm["n_train"],
            "n_added": arm["n_added"],
            "cells": [interval_text(arm["test"][key]) for key, _ in ARM_METRICS],
            "per_seed": ", ".join(f"{v:.3f}" for v in arm["test"]["per_seed"]["balanced_accuracy"]),
        }
        for name, arm in arms.items()
    ]
    comparison_rows = [
        {
            "name": f"{d['b']} − {d['a']}",
            "cells": [interval_text(d[key], signed=True) for key, _ in ARM_METRICS],
            "significant": d["balanced_accuracy"].get("significant"),
        }
        for d in comparisons
    ]
    condition_rows = []
    for code in report["classes"]:
        cells = [arms[name]["test"]["sensitivity"][code] for name in arms]
        tags = [
            tag
            for tag, on in (
                ("rare", code in report["rare_conditions"]),
                ("malignant", code in report["malignant_conditions"]),
                ("+synthetic", code in report["chosen_conditions"]),
            )
            if on
        ]
        condition_rows.append(
            {
                "code": code,
                "tags": ", ".join(tags),
                "n_test": cells[0]["n"],
                "cells": [interval_text(c) for c in cells],
                "warning": next((c["warning"] for c in cells if c.get("warning")), ""),
            }
        )
    files = report.get("files") or {}
    plots = [(rel, caption) for rel, caption in PLOTS if rel in files.get("plots", ())]
    links = [files[k] for k in ("html", "json") if files.get(k)] + list(files.get("models", ()))
    first = next(iter(arms.values()))
    low = report["headline"]["difference"].get("ci_low")
    return {
        "report": report,
        # as in the report's HTML: a gain is claimed only when its CI is above 0 and the null check passed
        "headline_supported": low is not None and low > 0 and bool(report["null_check"]["passed"]),
        "n_test": first["test"]["n"],
        "headline": _verdict(report["headline"]),
        "null_check": _verdict(report["null_check"]),
        "metric_labels": [label for _, label in ARM_METRICS],
        "arm_names": list(arms),
        "arm_rows": arm_rows,
        "comparison_rows": comparison_rows,
        "condition_rows": condition_rows,
        "plots": [{"url": file_url(rel), "caption": caption} for rel, caption in plots],
        "links": [(rel, file_url(rel)) for rel in links],
    }


def augmentation_report_html(run: AugmentationRun, file_url: Callable[[str], str]) -> str:
    """The report of a finished run; a report from before version 2 is shown as its JSON."""
    report = run.results
    if not report:
        return run.error or f"{run.status} ({round(100 * run.progress)}%)"
    if report.get("version") != 2:
        return render_to_string("evaluation/augmentation_results_old.html", {"report": report})
    return render_to_string("evaluation/augmentation_results.html", augmentation_context(report, file_url))


def report_files(run: AugmentationRun) -> set[str]:
    """The relative names of the run's report files (what the admin may serve)."""
    files = (run.results or {}).get("files") or {}
    named = [files.get("json"), files.get("html"), *files.get("plots", ()), *files.get("models", ())]
    return {name for name in named if name}
