"""Coverage of the headline reader-study intervals in simulated crossed studies.

Each simulated study has R raters × I images under a probit model:

- rater j has discriminability d_j ~ N(d0, 0.5²) (0 for everyone at chance) and a
  criterion c_j ~ N(c0, 0.4²) (c0 < 0: a bias towards answering "synthetic");
- image k has an effect b_k: synthetic images differ in how convincing they are
  (sd 0.8), real images vary too (sd 0.5); at chance both kinds share one
  distribution (sd 0.6), which is what "cannot be told apart" means;
- the rater's impression is t = ±d_j/2 + b_k + e, e ~ N(0, 1); the answer is
  "synthetic" when t > c_j, and the 6-point confidence rating cuts t at
  c_j + (−1.5, −0.75, 0, 0.75, 1.5).

The population balanced accuracy and AUC (means over the rater population of each
rater's expected value over images) are computed by Gauss–Hermite quadrature, and
``turingtest.stats.headline_estimates`` (the call the study report's headline makes:
``reader_study_accuracy`` and ``reader_study_auc``) is run on each study.
Designs: fully crossed with R ∈ {5, 20}, I ∈ {40, 200}, balanced accuracy ∈ {.5, .65,
.85}; each rater sees a random half of the images (half of each kind); and 1 real : 3
synthetic at chance with raters who answer "synthetic" about 80% of the time.

Prints a table of empirical coverage of the 95% intervals and of the rate of p < .05
against 0.5 (type-I error at chance, power otherwise), then ``coverage: ratio=<worst
coverage> target=>=0.93`` as the last line. ``--studies`` sets the studies per cell
(default 2000: about 2 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import optimize, special

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
# turingtest/__init__ loads the Celery app, which reads Django settings.
os.environ.setdefault("DJANGO_DEBUG", "1")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

from turingtest.stats.headline import headline_estimates  # noqa: E402

SD_ABILITY = 0.5
SD_BIAS = 0.4
SD_SYNTHETIC, SD_REAL, SD_CHANCE = 0.8, 0.5, 0.6
CUTS = np.array([-1.5, -0.75, 0.0, 0.75, 1.5])
TARGET_COVERAGE = 0.93
MAX_COVERAGE = 0.985
MAX_TYPE_I = 0.06


@dataclass(frozen=True)
class Cell:
    """One simulated design; ``seen`` is the fraction of each kind every rater judges."""

    design: str
    n_raters: int
    n_images: int
    accuracy: float
    synthetic_share: float = 0.5
    seen: float = 1.0
    bias: float = 0.0

    @property
    def chance(self) -> bool:
        return self.accuracy == 0.5

    @property
    def sd_images(self) -> tuple[float, float]:
        """(synthetic, real) sd of the image effects."""
        return (SD_CHANCE, SD_CHANCE) if self.chance else (SD_SYNTHETIC, SD_REAL)


def default_cells() -> list[Cell]:
    cells = [Cell("crossed", r, i, a) for a in (0.5, 0.65, 0.85) for r in (5, 20) for i in (40, 200)]
    cells += [Cell("half", r, i, a, seen=0.5) for a in (0.5, 0.85) for r in (5, 20) for i in (40, 200)]
    cells += [
        Cell("1:3 biased", r, i, 0.5, synthetic_share=0.75, bias=-1.0) for r in (5, 20) for i in (40, 200)
    ]
    return cells


# --------------------------------------------------------------------------- population truth


def _quadrature(n: int = 40) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nodes (z_ability, z_bias) and weights for E over two independent standard normals."""
    x, w = np.polynomial.hermite_e.hermegauss(n)
    w = w / w.sum()
    za, zb = np.meshgrid(x, x, indexing="ij")
    return za.ravel(), zb.ravel(), np.outer(w, w).ravel()


def _ability(cell: Cell, d0: float) -> tuple[float, float]:
    return (0.0, 0.0) if cell.chance else (d0, SD_ABILITY)


def _rater_truth(cell: Cell, d: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Expected balanced accuracy and AUC over images for raters (d, c)."""
    phi = special.ndtr
    sd_syn, sd_real = (np.sqrt(1 + s**2) for s in cell.sd_images)
    ba = (phi((d / 2 - c) / sd_syn) + phi((c + d / 2) / sd_real)) / 2
    cuts = c[:, None] + CUTS[None, :]
    zero, one = np.zeros((d.size, 1)), np.ones((d.size, 1))
    cdf_syn = np.hstack([zero, phi((cuts - d[:, None] / 2) / sd_syn), one])
    cdf_real = np.hstack([zero, phi((cuts + d[:, None] / 2) / sd_real), one])
    p_syn, p_real = np.diff(cdf_syn, axis=1), np.diff(cdf_real, axis=1)
    # P(synthetic category > real category) + half the ties.
    auc = np.sum(p_syn * (cdf_real[:, :-1] + p_real / 2), axis=1)
    return ba, auc


def population_truth(cell: Cell, d0: float) -> tuple[float, float]:
    za, zb, w = _quadrature()
    mean_d, sd_d = _ability(cell, d0)
    ba, auc = _rater_truth(cell, mean_d + sd_d * za, cell.bias + SD_BIAS * zb)
    return float(w @ ba), float(w @ auc)


def ability_for(cell: Cell) -> float:
    """The mean discriminability d0 that gives the cell's population balanced accuracy."""
    if cell.chance:
        return 0.0
    return optimize.brentq(lambda d0: population_truth(cell, d0)[0] - cell.accuracy, 0.0, 10.0)


# --------------------------------------------------------------------------- one study


def simulate(cell: Cell, d0: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Aligned judgment arrays (one entry per judgment) for one simulated study."""
    n_syn = round(cell.n_images * cell.synthetic_share)
    is_syn = np.arange(cell.n_images) < n_syn
    mean_d, sd_d = _ability(cell, d0)
    d = mean_d + sd_d * rng.standard_normal(cell.n_raters)
    c = cell.bias + SD_BIAS * rng.standard_normal(cell.n_raters)
    sd_syn, sd_real = cell.sd_images
    b = np.where(is_syn, sd_syn, sd_real) * rng.standard_normal(cell.n_images)
    if cell.seen < 1:
        # Each rater judges a random subset of each kind (a stratified incomplete design).
        keys = rng.random((cell.n_raters, cell.n_images))
        take = np.zeros_like(keys, dtype=bool)
        for kind in (is_syn, ~is_syn):
            cols = np.flatnonzero(kind)
            k = max(2, round(cols.size * cell.seen))
            chosen = cols[np.argsort(keys[:, cols], axis=1)[:, :k]]
            np.put_along_axis(take, chosen, True, axis=1)
        rater, image = np.nonzero(take)
    else:
        rater, image = (a.ravel() for a in np.indices((cell.n_raters, cell.n_images)))
    t = np.where(is_syn[image], d[rater] / 2, -d[rater] / 2) + b[image] + rng.standard_normal(rater.size)
    rel = t - c[rater]
    return {
        "says_synthetic": rel > 0,
        "score": np.searchsorted(CUTS, rel).astype(np.float64),
        "is_synthetic": is_syn[image],
        # Ids are arbitrary integers in real data; scramble them to keep the estimators honest.
        "rater": rater * 7 + 1000,
        "image": image * 13 + 5,
    }


@dataclass(frozen=True)
class CellResult:
    cell: Cell
    n_studies: int
    truth_ba: float
    truth_auc: float
    cover_ba: float
    cover_auc: float
    reject_ba: float
    reject_auc: float
    width_ba: float
    width_auc: float


def run_cell(cell: Cell, n_studies: int, seed: int = 20260511) -> CellResult:
    d0 = ability_for(cell)
    truth_ba, truth_auc = population_truth(cell, d0)
    hits = np.zeros((n_studies, 6))
    index = default_cells().index(cell) if cell in default_cells() else hash(cell) % 10_000
    for s in range(n_studies):
        rng = np.random.default_rng([seed, index, s])
        data = simulate(cell, d0, rng)
        # The report's own call (reports.headline): same function, same arguments.
        est = headline_estimates(
            data["says_synthetic"], data["score"], data["is_synthetic"], data["rater"], data["image"], 0.95
        )
        ba, auc = est.accuracy, est.auc
        hits[s] = (
            ba.ci_low <= truth_ba <= ba.ci_high,
            auc.ci_low <= truth_auc <= auc.ci_high,
            ba.p_value < 0.05,
            auc.p_value < 0.05,
            ba.ci_high - ba.ci_low,
            auc.ci_high - auc.ci_low,
        )
    return CellResult(cell, n_studies, truth_ba, truth_auc, *(float(v) for v in hits.mean(axis=0)))


def run_cells(cells: list[Cell], n_studies: int, seed: int = 20260511, jobs: int = 1) -> list[CellResult]:
    args = [(cell, n_studies, seed) for cell in cells]
    if jobs <= 1:
        return [run_cell(*a) for a in args]
    with multiprocessing.Pool(jobs) as pool:
        return pool.starmap(run_cell, args, chunksize=1)


# --------------------------------------------------------------------------- table


def format_table(results: list[CellResult]) -> list[str]:
    lines = [
        "design       R    I  true BA  cover  p<.05  width | true AUC  cover  p<.05  width",
        "-" * 82,
    ]
    for r in results:
        c = r.cell
        lines.append(
            f"{c.design:<10} {c.n_raters:>3} {c.n_images:>4}  {r.truth_ba:7.3f}  {r.cover_ba:5.3f}  "
            f"{r.reject_ba:5.3f}  {r.width_ba:5.3f} |  {r.truth_auc:7.3f}  {r.cover_auc:5.3f}  "
            f"{r.reject_auc:5.3f}  {r.width_auc:5.3f}"
        )
    return lines


def summary(results: list[CellResult]) -> dict[str, float]:
    covers = [v for r in results for v in (r.cover_ba, r.cover_auc)]
    type_i = [v for r in results if r.cell.chance for v in (r.reject_ba, r.reject_auc)]
    return {
        "worst": min(covers),
        "highest": max(covers),
        "type_i": max(type_i) if type_i else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=2000, help="simulated studies per cell")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="worker processes")
    parser.add_argument("--seed", type=int, default=20260511)
    args = parser.parse_args()
    t0 = time.perf_counter()
    results = run_cells(default_cells(), args.studies, args.seed, args.jobs)
    for line in format_table(results):
        print(line)
    s = summary(results)
    print(f"{args.studies} studies per cell, {time.perf_counter() - t0:.0f} s")
    print(
        f"highest coverage {s['highest']:.3f} (target <= {MAX_COVERAGE}); "
        f"largest type-I error at chance {s['type_i']:.3f} (target <= {MAX_TYPE_I})"
    )
    print(f"coverage: ratio={s['worst']:.3f} target=>={TARGET_COVERAGE}")


if __name__ == "__main__":
    main()
