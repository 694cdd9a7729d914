"""`llm-market analyze` against SALib on the same designs and outcomes: a Saltelli sweep (first and second
order) and a Morris sweep of the tiny scenario are run with `lm.sweep`, analysed with `lm.analyze`, and
SALib (from PyPI) analyses the same runs.csv; the point estimates of S1, ST, S2 and of μ, μ*, σ must agree
to 1e-6. Also checks `lm.analyze`'s DataFrames (sensitivity table and PRIM boxes).

Needs SALib (`pip install SALib`); with LLM_MARKET_SALIB_TESTS=1 (set by .ci/run) its absence is a failure,
without it the SALib tests are skipped and say so.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import llm_market as lm

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "data" / "tiny.toml"

PARAMETERS = [
    ("awareness.word_of_mouth_per_month", 1.5, 6.0, "log"),
    ("segments.consumer.outside_utility", 2.0, 4.0, "linear"),
    ("firms.lab.brand", 0.0, 1.0, "linear"),
]
OUTCOMES = ["lab.end_cash_usd", "lab.total_revenue_usd"]


def salib():
    if os.environ.get("LLM_MARKET_SALIB_TESTS") == "1":
        import SALib  # noqa: F401  (a failure here is a failure of the test: CI installs SALib)
    else:
        pytest.importorskip("SALib", reason="SALib is not installed; .ci/run installs it and sets LLM_MARKET_SALIB_TESTS=1")
    from SALib.analyze import morris, sobol

    return sobol, morris


def sweep_file(tmp: Path, design: str) -> Path:
    kind = design.split('"')[1]
    lines = [
        f'name = "salib_{kind}"',
        f'scenario = "{TINY.as_posix()}"',
        "seed = 3",
        "replicates = 2",
        'set = ["end=2023-06-30"]',
        "",
        "[design]",
        design,
    ]
    for path, lo, hi, scale in PARAMETERS:
        lines += ["", "[[parameters]]", f'path = "{path}"', f"min = {lo}", f"max = {hi}", f'scale = "{scale}"']
    f = tmp / f"{kind}.toml"
    f.write_text("\n".join(lines) + "\n")
    return f


def problem():
    return {
        "num_vars": len(PARAMETERS),
        "names": [p[0] for p in PARAMETERS],
        "bounds": [[p[1], p[2]] for p in PARAMETERS],
    }


def point_means(folder: Path, outcome: str) -> np.ndarray:
    runs = pd.read_csv(folder / "runs.csv")
    assert (runs.status == "ok").all()
    column = outcome.replace(".", "_")
    return runs.groupby("point_id")[column].mean().sort_index().to_numpy(dtype=float)


def ours(table: pd.DataFrame, outcome: str, method: str, index: str) -> np.ndarray:
    t = table[(table.outcome == outcome) & (table.method == method) & (table["index"] == index)]
    return t.set_index("parameter").loc[[p[0] for p in PARAMETERS], "value"].to_numpy(dtype=float)


@pytest.mark.parametrize("second_order", [False, True])
def test_sobol_indices_equal_salib(tmp_path, second_order):
    sobol, _ = salib()
    design = f"kind = \"saltelli\"\nsamples = 16\nsecond_order = {'true' if second_order else 'false'}"
    out = tmp_path / "sweep"
    lm.sweep(sweep_file(tmp_path, design), out, jobs=2, threads=1)
    a = lm.analyze(out, outcome=OUTCOMES, method="sobol", resamples=50)
    blocks = 2 * len(PARAMETERS) + 2 if second_order else len(PARAMETERS) + 2
    for outcome in OUTCOMES:
        y = point_means(out, outcome)
        assert len(y) == 16 * blocks
        assert np.std(y) > 0, f"{outcome} does not vary: the cross-check would be empty"
        si = sobol.analyze(problem(), y, calc_second_order=second_order, num_resamples=50, seed=1)
        np.testing.assert_allclose(ours(a.sensitivity, outcome, "sobol", "S1"), si["S1"], rtol=0, atol=1e-6)
        np.testing.assert_allclose(ours(a.sensitivity, outcome, "sobol", "ST"), si["ST"], rtol=0, atol=1e-6)
        if second_order:
            t = a.sensitivity[(a.sensitivity.outcome == outcome) & (a.sensitivity["index"] == "S2")]
            names = [p[0] for p in PARAMETERS]
            for j in range(len(names)):
                for k in range(j + 1, len(names)):
                    got = t[t.parameter == f"{names[j]} × {names[k]}"].value.item()
                    assert abs(got - si["S2"][j, k]) <= 1e-6, (names[j], names[k], got, si["S2"][j, k])
    # The run count and the intervals are there.
    s1 = a.sensitivity[a.sensitivity["index"] == "S1"]
    assert (s1.n_runs == 16 * blocks * 2).all()
    assert (s1.ci_lo <= s1.value + 1e-12).all() and (s1.value <= s1.ci_hi + 1e-12).all()


def test_morris_measures_equal_salib(tmp_path):
    _, morris = salib()
    out = tmp_path / "sweep"
    lm.sweep(sweep_file(tmp_path, 'kind = "morris"\ntrajectories = 12\nlevels = 4'), out, jobs=2, threads=1)
    a = lm.analyze(out, outcome=OUTCOMES, method="morris", resamples=50)
    runs = pd.read_csv(out / "runs.csv")
    x = runs.groupby("point_id")[[p[0] for p in PARAMETERS]].first().sort_index().to_numpy(dtype=float)
    for outcome in OUTCOMES:
        y = point_means(out, outcome)
        si = morris.analyze(problem(), x, y, num_levels=4, num_resamples=50, seed=1)
        for ours_index, theirs in [("mu", "mu"), ("mu_star", "mu_star"), ("sigma", "sigma")]:
            np.testing.assert_allclose(
                ours(a.sensitivity, outcome, "morris", ours_index), np.asarray(si[theirs], dtype=float), rtol=0, atol=1e-6
            )


def test_analyze_returns_tables_and_refuses_the_wrong_design(tmp_path):
    out = tmp_path / "sweep"
    lm.sweep(sweep_file(tmp_path, 'kind = "lhs"\nsamples = 24'), out, jobs=2, threads=1)
    a = lm.analyze(
        out, outcome=["lab.end_cash_usd"], method="prcc,prim", prim=["lab.end_cash_usd < 49300000"],
        out=tmp_path / "analysis",
    )
    assert set(a.sensitivity.columns) == {"outcome", "method", "parameter", "index", "value", "ci_lo", "ci_hi", "n_runs"}
    assert set(a.sensitivity.method) == {"prcc", "src", "fit", "noise"}
    assert (a.prim.row == "trajectory").sum() >= 2, a.notes
    assert os.path.isfile(a.report)
    assert list(a.prim.columns)[:4] == ["condition", "row", "step", "chosen"]
    with pytest.raises(ValueError, match="Sobol indices need a Saltelli design"):
        lm.analyze(out, method="sobol", out=tmp_path / "other")
