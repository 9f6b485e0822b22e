"""How well does the photo-based skin-type estimate agree with dermatologists' Fitzpatrick labels?

Not a headline benchmark: a measurement for the README. For every PAD-UFES-20 image with
a ``fitspatrick`` label it normalizes the photo exactly as ``import_images`` does (centre
square, 256 px, no mask so the healthy skin is the border ring), estimates the skin colour
with and without shades-of-grey white balance, and reports

* Spearman's rank correlation between the estimated type and the label (and between
  -ITA° and the label: the continuous estimate, darker skin = lower ITA°), with a 95%
  percentile CI from a bootstrap over *patients* (some patients have several photos, so
  resampling photos would overstate the precision);
* exact agreement and agreement within one type.

Usage::

    .venv/bin/python benchmarks/support/ita_agreement.py [--data ../shared/data/pad-ufes-20-sample]
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

import numpy as np
from scipy import stats

ROOT = Path(__file__).resolve().parent.parent.parent
DEFAULT_DATA = ROOT.parent.parent / "shared" / "data" / "pad-ufes-20-sample"
N_BOOT = 2000


def _rows(data: Path) -> list[dict[str, str]]:
    with (data / "metadata.csv").open(newline="") as fh:
        return [r for r in csv.DictReader(fh) if r["fitspatrick"].strip()]


def _estimates(data: Path, rows: list[dict[str, str]], *, white_balance: bool) -> np.ndarray:
    """(n, 2) array: estimated Fitzpatrick type, ITA°."""
    from generator.semantic_map import estimate_skin_colour
    from turingtest.images import normalize

    out = []
    for r in rows:
        pixels = normalize(data / "images" / r["img_id"], size=256).pixels
        est = estimate_skin_colour(pixels, None, white_balance=white_balance)
        out.append((est.fitzpatrick, est.ita_degrees))
    return np.array(out, dtype=float)


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    return float(stats.spearmanr(x, y).statistic)


def patient_bootstrap_ci(
    x: np.ndarray, y: np.ndarray, patients: np.ndarray, *, n_boot: int = N_BOOT, seed: int = 0
) -> tuple[float, float]:
    """95% percentile CI of Spearman's rho, resampling patients (all their photos together)."""
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(patients == p) for p in np.unique(patients)]
    values = []
    for _ in range(n_boot):
        idx = np.concatenate([groups[i] for i in rng.integers(0, len(groups), len(groups))])
        if np.ptp(x[idx]) == 0 or np.ptp(y[idx]) == 0:
            continue
        values.append(_spearman(x[idx], y[idx]))
    lo, hi = np.percentile(values, [2.5, 97.5])
    return float(lo), float(hi)


def agreement(label: np.ndarray, estimate: np.ndarray, patients: np.ndarray) -> dict[str, float]:
    rho = _spearman(estimate[:, 0], label)
    lo, hi = patient_bootstrap_ci(estimate[:, 0], label, patients)
    rho_ita = _spearman(-estimate[:, 1], label)
    lo_ita, hi_ita = patient_bootstrap_ci(-estimate[:, 1], label, patients)
    diff = np.abs(estimate[:, 0] - label)
    return {
        "spearman_type": rho,
        "ci_type": (lo, hi),
        "spearman_ita": rho_ita,
        "ci_ita": (lo_ita, hi_ita),
        "exact": float(np.mean(diff == 0)),
        "within_one": float(np.mean(diff <= 1)),
    }


def _counts(values: np.ndarray) -> dict[int, int]:
    keys, n = np.unique(values.astype(int), return_counts=True)
    return {int(k): int(c) for k, c in zip(keys, n, strict=True)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args(argv)
    if not (args.data / "metadata.csv").is_file():
        print(f"no PAD-UFES-20 sample at {args.data}", file=sys.stderr)
        return 2
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_DEBUG", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "turingtest.settings")
    import django

    django.setup()
    rows = _rows(args.data)
    label = np.array([float(r["fitspatrick"]) for r in rows])
    patients = np.array([r["patient_id"] for r in rows])
    print(f"{len(rows)} labelled images, {len(set(patients))} patients; label counts {_counts(label)}")
    print(
        f"{'estimate':<26} {'rho(type)':>9} {'95% CI':>16} {'rho(-ITA)':>9} {'95% CI':>16} {'exact':>6} {'±1':>6}"
    )
    for name, wb in (("ITA° (no white balance)", False), ("ITA° after shades of grey", True)):
        est = _estimates(args.data, rows, white_balance=wb)
        a = agreement(label, est, patients)
        counts = _counts(est[:, 0])
        print(
            f"{name:<26} {a['spearman_type']:>9.3f} [{a['ci_type'][0]:>6.3f}, {a['ci_type'][1]:>6.3f}] "
            f"{a['spearman_ita']:>9.3f} [{a['ci_ita'][0]:>6.3f}, {a['ci_ita'][1]:>6.3f}] "
            f"{a['exact']:>6.1%} {a['within_one']:>6.1%}   estimated types {counts}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
