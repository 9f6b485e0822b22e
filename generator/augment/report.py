"""Presentation of an experiment's report: matplotlib plots, a self-contained HTML page, report.json.

The report dict (built by :mod:`generator.augment.experiment`) is the data; this module
only draws and writes it.
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


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _plots(report: dict[str, Any], out: Path) -> list[str]:
    # matplotlib is imported here, not at the top: it is slow to import and only writing a
    # report needs it, not the experiment's callers (the Django worker imports this package)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    (out / "plots").mkdir(exist_ok=True)
    classes = report["classes"]
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(classes) + 2), 4))
    width = 0.38
    for k, (arm, colour) in enumerate([("real_only", "#7f8c8d"), ("augmented", "#2e86c1")]):
        sens = report["arms"][arm]["test"]["sensitivity"]
        vals = [sens[c]["value"] if sens[c]["value"] is not None else 0 for c in classes]
        lo = [v - (sens[c]["ci_low"] if sens[c]["ci_low"] is not None else v) for c, v in zip(classes, vals)]
        hi = [
            (sens[c]["ci_high"] if sens[c]["ci_high"] is not None else v) - v for c, v in zip(classes, vals)
        ]
        xs = np.arange(len(classes)) + (k - 0.5) * width
        ax.bar(xs, vals, width, yerr=[lo, hi], capsize=3, label=arm.replace("_", " "), color=colour)
    labels = []
    for c in classes:
        mark = ("*" if c in report["rare_conditions"] else "") + (
            "†" if c in report["malignant_conditions"] else ""
        )
        labels.append(c + mark)
    ax.set_xticks(np.arange(len(classes)), labels)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("sensitivity (top-1 recall)")
    ax.set_title("Per-condition sensitivity on held-out real images (95% CI)\n* rare   † malignant")
    files.append(_save_png(plt, fig, ax, out, "plots/sensitivity.png"))

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for arm in ("real_only", "augmented"):
        ax.plot(
            range(1, len(report["arms"][arm]["history"]["loss"]) + 1),
            report["arms"][arm]["history"]["loss"],
            marker="o",
            label=arm.replace("_", " "),
        )
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss")
    files.append(_save_png(plt, fig, ax, out, "plots/training_loss.png"))
    return files


def _save_png(plt: Any, fig: Any, ax: Any, out: Path, rel: str) -> str:
    """Finish a plot (legend, tight layout), write it atomically under ``out`` and close it."""
    ax.legend()
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
    return text


def render_html(report: dict[str, Any]) -> str:
    """A self-contained HTML page (plots referenced relatively, no scripts)."""
    e = html.escape
    real, aug = report["arms"]["real_only"]["test"], report["arms"]["augmented"]["test"]
    diff = report["comparison"]["augmented_minus_real_only"]
    mc = report["comparison"]["mcnemar_top1"]
    rows = []
    for c in report["classes"]:
        tags = []
        if c in report["rare_conditions"]:
            tags.append("rare")
        if c in report["malignant_conditions"]:
            tags.append("malignant")
        if c in report["chosen_conditions"]:
            tags.append("+synthetic")
        cls = ' class="highlight"' if tags else ""
        rows.append(
            f"<tr{cls}><td>{e(c)}</td><td>{e(', '.join(tags))}</td>"
            f"<td>{report['split']['counts'][c]['train']}</td><td>{real['sensitivity'][c]['n']}</td>"
            f"<td>{e(_fmt(real['sensitivity'][c]))}</td><td>{e(_fmt(aug['sensitivity'][c]))}</td>"
            f"<td>{e(_fmt(diff['sensitivity'][c]))}</td></tr>"
        )
    syn = "".join(
        f"<li>{e(c)}: {v['added']} synthetic added to {v['real_train']} real training images</li>"
        for c, v in report["synthetic"].items()
    )
    cfg = e(json.dumps(report["config"], indent=1))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>DermGAN augmentation experiment</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:right}}td:first-child{{text-align:left}}
tr.highlight{{background:#fff6d5}}pre{{background:#f4f4f4;padding:1em}}</style></head><body>
<h1>Augmentation experiment</h1>
<p>Two classifiers with the same seed and settings; the second also saw synthetic images of
{e(", ".join(report["chosen_conditions"]))}. Both evaluated on the same held-out real images
({real["n"]} images, patients disjoint from training). Values are point estimates with
patient-clustered bootstrap 95% confidence intervals ({report["config"]["n_bootstrap"]} resamples).</p>
<ul>{syn}</ul>
<h2>Overall</h2>
<table><tr><th>metric</th><th>real only</th><th>real + synthetic</th><th>difference</th></tr>
<tr><td>top-1 accuracy</td><td>{e(_fmt(real["top1"]))}</td><td>{e(_fmt(aug["top1"]))}</td><td>{e(_fmt(diff["top1"]))}</td></tr>
<tr><td>top-3 accuracy</td><td>{e(_fmt(real["top3"]))}</td><td>{e(_fmt(aug["top3"]))}</td><td>{e(_fmt(diff["top3"]))}</td></tr>
</table>
<p>Exact McNemar test on paired top-1 outcomes: {mc["a_only_correct"]} images right only without synthetic data,
{mc["b_only_correct"]} right only with it; p = {mc["p_value"]:.4g}.</p>
<h2>Per-condition sensitivity</h2>
<table><tr><th>condition</th><th>notes</th><th>n train (real)</th><th>n test</th><th>real only</th>
<th>real + synthetic</th><th>difference</th></tr>{"".join(rows)}</table>
<p><img src="plots/sensitivity.png" alt="per-condition sensitivity with confidence intervals"></p>
<p><img src="plots/training_loss.png" alt="training loss per epoch"></p>
<h2>Reproduce</h2><pre>{cfg}</pre>
<p>Checkpoints: {e(report["arms"]["real_only"]["checkpoint"])} (sha256 {e(report["arms"]["real_only"]["checkpoint_sha256"])}),
{e(report["arms"]["augmented"]["checkpoint"])} (sha256 {e(report["arms"]["augmented"]["checkpoint_sha256"])}).</p>
</body></html>
"""


def write_report(report: dict[str, Any], out: Path) -> dict[str, str]:
    """Write plots, report.html and report.json (last, atomically: its presence means complete)."""
    files = {"plots": _plots(report, out)}
    _atomic_write_bytes(out / "report.html", render_html(report).encode())
    listing = {
        "json": "report.json",
        "html": "report.html",
        "plots": ", ".join(files["plots"]),
        "real_only_checkpoint": report["arms"]["real_only"]["checkpoint"],
        "augmented_checkpoint": report["arms"]["augmented"]["checkpoint"],
    }
    report_with_files = {**report, "files": listing}
    _atomic_write_bytes(out / "report.json", json.dumps(report_with_files, indent=2).encode())
    return listing
