"""Presentation of an experiment's report: matplotlib plots, a self-contained HTML page, report.json.

The report dict (built by :mod:`generator.augment.experiment`) is the data; this module
only draws and writes it. Plots: each arm's summary metrics with their CIs and per-seed
values (``plots/arms.png``), per-condition sensitivity by arm (``plots/sensitivity.png``),
the headline beside the null check (``plots/headline.png``), training loss
(``plots/training_loss.png``).
"""

from __future__ import annotations

import html
import io
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

SUMMARY = (("balanced_accuracy", "balanced accuracy"), ("macro_f1", "macro-F1"), ("top1", "top-1 accuracy"))
COLOURS = ("#7f8c8d", "#27ae60", "#8e44ad", "#2e86c1", "#e67e22", "#16a085")


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _errors(cells: list[Mapping[str, Any]]) -> tuple[list[float], list[list[float]]]:
    """Values (None → 0) and asymmetric error-bar lengths (0 where the CI is missing)."""
    vals = [c["value"] if c["value"] is not None else 0.0 for c in cells]
    lo = [v - c["ci_low"] if c.get("ci_low") is not None else 0.0 for c, v in zip(cells, vals)]
    hi = [c["ci_high"] - v if c.get("ci_high") is not None else 0.0 for c, v in zip(cells, vals)]
    return vals, [lo, hi]


def _plots(report: dict[str, Any], out: Path) -> list[str]:
    # matplotlib is imported here, not at the top: it is slow to import and only writing a
    # report needs it, not the experiment's callers (the Django worker imports this package)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    (out / "plots").mkdir(exist_ok=True)
    arms = list(report["arms"])
    colour = dict(zip(arms, COLOURS))
    files = []

    # each arm's summary metrics: mean over seeds with the bootstrap CI, one dot per seed
    fig, axes = plt.subplots(1, len(SUMMARY), figsize=(4 * len(SUMMARY), 3.8), sharey=True)
    for ax, (key, label) in zip(axes, SUMMARY):
        vals, err = _errors([report["arms"][a]["test"][key] for a in arms])
        xs = np.arange(len(arms))
        ax.bar(xs, vals, 0.6, yerr=err, capsize=3, color=[colour[a] for a in arms], alpha=0.8)
        for x, a in zip(xs, arms):
            per_seed = report["arms"][a]["test"]["per_seed"][key]
            ax.plot(np.full(len(per_seed), x), per_seed, "k.", ms=4, label="one seed" if x == 0 else None)
        ax.set_xticks(xs, [a.replace("_", "\n") for a in arms], fontsize=8)
        ax.set_title(label)
        ax.set_ylim(0, 1.05)
    axes[0].set_ylabel("held-out real images (95% CI: patients × seeds)")
    files.append(_save_png(plt, fig, axes[0], out, "plots/arms.png"))

    # per-condition sensitivity by arm
    classes = report["classes"]
    fig, ax = plt.subplots(figsize=(max(7, 1.2 * len(classes) + 2), 4))
    width = 0.8 / len(arms)
    for k, a in enumerate(arms):
        vals, err = _errors([report["arms"][a]["test"]["sensitivity"][c] for c in classes])
        xs = np.arange(len(classes)) + (k - (len(arms) - 1) / 2) * width
        ax.bar(xs, vals, width, yerr=err, capsize=2, label=a.replace("_", " "), color=colour[a])
    marks = [
        c
        + ("*" if c in report["rare_conditions"] else "")
        + ("†" if c in report["malignant_conditions"] else "")
        for c in classes
    ]
    ax.set_xticks(np.arange(len(classes)), marks)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("sensitivity (top-1 recall)")
    ax.set_title("Per-condition sensitivity by arm (mean over seeds, 95% CI)\n* rare   † malignant")
    files.append(_save_png(plt, fig, ax, out, "plots/sensitivity.png"))

    # the headline beside the null check: paired differences with their CIs
    rows = [(report["headline"], "headline"), (report["null_check"], "null check")]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ys = []
    for j, (block, kind) in enumerate(rows):
        diff = report["comparisons"][block["comparison"]]
        for i, (key, label) in enumerate(SUMMARY):
            y = j * (len(SUMMARY) + 1) + i
            (v,), ((lo,), (hi,)) = _errors([diff[key]])
            ax.errorbar([v], [y], xerr=[[lo], [hi]], fmt="o", capsize=3, color="#c0392b" if j else "#2e86c1")
            ys.append((y, f"{kind}: {block['arm']} − {block['comparator']}\n{label}"))
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks([y for y, _ in ys], [t for _, t in ys], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("paired difference (95% CI)")
    files.append(_save_png(plt, fig, ax, out, "plots/headline.png", legend=False))

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for a in arms:
        losses = np.array([run["history"]["loss"] for run in report["arms"][a]["seeds"]])
        epochs = np.arange(1, losses.shape[1] + 1)
        ax.plot(epochs, losses.T, color=colour[a], alpha=0.25, lw=0.8)
        ax.plot(epochs, losses.mean(axis=0), color=colour[a], marker="o", label=a.replace("_", " "))
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (thin: one seed)")
    files.append(_save_png(plt, fig, ax, out, "plots/training_loss.png"))
    return files


def _save_png(plt: Any, fig: Any, ax: Any, out: Path, rel: str, legend: bool = True) -> str:
    """Finish a plot (legend, tight layout), write it atomically under ``out`` and close it."""
    if legend:
        ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    _atomic_write_bytes(out / rel, buf.getvalue())
    return rel


def _fmt(d: Mapping[str, Any] | None, pct: bool = True) -> str:
    if not d or d.get("value") is None:
        return "–"
    scale, unit = (100.0, "%") if pct else (1.0, "")
    text = f"{d['value'] * scale:.1f}{unit}"
    if d.get("ci_low") is not None:
        text += f" [{d['ci_low'] * scale:.1f}, {d['ci_high'] * scale:.1f}]"
    if d.get("p_value") is not None:
        text += f" p={d['p_value']:.3g}" + (" *" if d.get("significant") else "")
    return text


def _table(head: list[str], rows: list[list[str]], classes: list[str] | None = None) -> str:
    e = html.escape
    cls = classes or [""] * len(rows)
    body = "".join(
        f"<tr{' class=' + repr(c) if c else ''}>" + "".join(f"<td>{e(x)}</td>" for x in r) + "</tr>"
        for r, c in zip(rows, cls)
    )
    return "<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr>" + body + "</table>"


def _verdict(block: Mapping[str, Any], title: str, good: bool) -> str:
    e = html.escape
    d = block["difference"]
    per = "; ".join(f"{c} sensitivity {_fmt(v)}" for c, v in block["sensitivity_of_chosen"].items())
    return (
        f'<div class="box {"ok" if good else "warn"}"><h3>{e(title)}: {e(block["arm"])} − '
        f"{e(block['comparator'])}</h3><p>{e(block['metric'].replace('_', ' '))} {e(_fmt(d))} "
        f"({'significant' if block['significant'] else 'not significant'} at 5%)</p>"
        f"<p>{e(per)}</p>{'<p>' + e(block['meaning']) + '</p>' if 'meaning' in block else ''}</div>"
    )


def _supported(head: Mapping[str, Any], null: Mapping[str, Any]) -> bool:
    """A gain is claimed only when its CI is above 0 and the null check passed."""
    low = head["difference"]["ci_low"]
    return low is not None and low > 0 and null["passed"]


def render_html(report: dict[str, Any]) -> str:
    """A self-contained HTML page (plots referenced relatively, no scripts)."""
    e = html.escape
    arms, classes, stats = report["arms"], report["classes"], report["statistics"]
    head, null = report["headline"], report["null_check"]
    arm_rows = [
        [
            name,
            a["description"],
            str(a["n_train"]),
            str(a["n_added"]),
            *(_fmt(a["test"][k]) for k, _ in SUMMARY),
        ]
        for name, a in arms.items()
    ]
    seed_rows = [
        [name, str(run["seed"]), f"{run['history']['loss'][-1]:.3f}"]
        + [f"{100 * a['test']['per_seed'][k][i]:.1f}%" for k, _ in SUMMARY]
        + [f"{run['checkpoint']} ({run['checkpoint_sha256'][:12]})" if run["checkpoint"] else "not kept"]
        for name, a in arms.items()
        for i, run in enumerate(a["seeds"])
    ]
    cmp_rows = [
        [key.replace("_vs_", " − "), *(_fmt(d[k]) for k, _ in SUMMARY)]
        for key, d in report["comparisons"].items()
    ]
    cond_rows, cond_cls = [], []
    for c in classes:
        tags = [
            t
            for t, on in (
                ("rare", c in report["rare_conditions"]),
                ("malignant", c in report["malignant_conditions"]),
                ("+synthetic", c in report["chosen_conditions"]),
            )
            if on
        ]
        sens = [arms[a]["test"]["sensitivity"][c] for a in arms]
        spec = [arms[a]["test"]["specificity"][c] for a in arms]
        warn = sens[0].get("warning", "")
        cond_rows.append(
            [c, ", ".join(tags), str(report["split"]["counts"][c]["train"]), str(sens[0]["n"])]
            + [f"{_fmt(s)} / {_fmt(p)}" for s, p in zip(sens, spec)]
            + [warn]
        )
        cond_cls.append("highlight" if tags else "")
    syn = "".join(
        f"<li>{e(c)}: {v['added']} synthetic added to {v['real_train']} real training images</li>"
        for c, v in report["synthetic"].items()
    )
    cfg = e(json.dumps(report["config"], indent=1))
    summary_head = [label for _, label in SUMMARY]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>DermGAN augmentation experiment</title>
<style>body{{font-family:sans-serif;max-width:70em;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:right}}td:first-child{{text-align:left}}
tr.highlight{{background:#fff6d5}}pre{{background:#f4f4f4;padding:1em}}
.box{{border:2px solid;padding:.2em 1em;margin:1em 0}}.ok{{border-color:#27ae60}}.warn{{border-color:#c0392b}}</style>
</head><body>
<h1>Augmentation experiment</h1>
<p>{len(arms)} arms ({e(", ".join(arms))}), each trained with {stats["n_seeds"]} seeds
({e(", ".join(map(str, stats["training_seeds"])))}) and evaluated on the same
{arms[next(iter(arms))]["test"]["n"]} held-out real images of {stats["n_test_patients"]} patients (patients disjoint
from training; one split for all arms). Synthetic images of {e(", ".join(report["chosen_conditions"]))}:</p>
<ul>{syn}</ul>
<p><b>Confidence intervals</b> ({stats["n_bootstrap"]} draws): {e(stats["method"])}. Values: mean over seeds
[95% CI]; differences also give a two-sided bootstrap p-value, * = CI excludes 0.</p>
<h2>Headline and null check</h2>
{_verdict(head, "Headline (synthetic vs the best non-synthetic arm)", _supported(head, null))}
{_verdict(null, "Null check", null["passed"])}
<p><img src="plots/headline.png" alt="headline and null check differences with confidence intervals"></p>
<h2>Arms</h2>
{_table(["arm", "training data", "n train", "n added", *summary_head], arm_rows)}
<p><img src="plots/arms.png" alt="per-arm metrics with confidence intervals and per-seed values"></p>
<h2>Paired comparisons (b − a)</h2>
{_table(["comparison", *summary_head], cmp_rows)}
<h2>Per-condition sensitivity / specificity</h2>
{_table(["condition", "notes", "n train (real)", "n test", *arms, "warning"], cond_rows, cond_cls)}
<p><img src="plots/sensitivity.png" alt="per-condition sensitivity by arm with confidence intervals"></p>
<h2>Seeds</h2>
{_table(["arm", "seed", "final loss", *summary_head, "checkpoint"], seed_rows)}
<p><img src="plots/training_loss.png" alt="training loss per epoch"></p>
<h2>Reproduce</h2><pre>{cfg}</pre>
</body></html>
"""


def write_report(report: dict[str, Any], out: Path) -> dict[str, Any]:
    """Write plots, report.html and report.json (last, atomically: its presence means complete)."""
    plots = _plots(report, out)
    _atomic_write_bytes(out / "report.html", render_html(report).encode())
    listing = {
        "json": "report.json",
        "html": "report.html",
        "plots": plots,
        "models": [
            run["checkpoint"] for a in report["arms"].values() for run in a["seeds"] if run["checkpoint"]
        ],
    }
    _atomic_write_bytes(out / "report.json", json.dumps({**report, "files": listing}, indent=2).encode())
    return listing
