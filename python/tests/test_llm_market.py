"""The Python package against the simulator: runs, validation errors, sweeps, loading verified folders,
Parquet and CSV of one run holding equal values, threads, progress, Ctrl-C, and the EMA Workbench example.

Run from the repository root after `pip install ./python` (README "Python"): `pytest python/tests`.
Tests that need the command-line binary use LLM_MARKET_BIN (default target/release/llm-market); the EMA
example needs ema_workbench, and with LLM_MARKET_EMA_TESTS=1 (set by .ci/run) its absence is a failure.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import llm_market as lm

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "data" / "tiny.toml"
SHORT = {"end": "2023-02-28"}


def binary() -> Path:
    path = Path(os.environ.get("LLM_MARKET_BIN", ROOT / "target" / "release" / "llm-market"))
    if not path.is_file():
        pytest.fail(f"the command-line binary {path} is missing: build it (cargo build --release) or set LLM_MARKET_BIN")
    return path


def cli(*args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([str(binary()), *args], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done


def test_run_returns_every_table_as_typed_dataframes():
    r = lm.run(agents=3000, set=SHORT, threads=2)
    assert r.tables == ["trace", "market", "decisions", "annual", "summary"]
    firms = ["openai", "bing", "bard", "claude", "llama", "ernie"]
    assert list(r.summary.firm) == firms
    assert set(r.trace.firm) == set(firms)
    assert r.trace.date.min() == pd.Timestamp("2022-11-30")
    assert r.trace.date.max() == pd.Timestamp("2023-02-28")
    assert str(r.trace.date.dtype).startswith("datetime64")
    assert r.trace.users.dtype == "int64" and r.trace.cash_usd.dtype == "float64"
    assert r.trace.alive.dtype == bool
    # The manifest is the run's: scenario, seed, agents, the resolved scenario.
    assert r.manifest["scenario"] == "baseline" and r.manifest["agents"] == 3000
    assert "resolved_scenario" in r.manifest
    # Arrow and polars views of the same table.
    assert r.arrow("trace").num_rows == len(r.trace)
    pl = pytest.importorskip("polars")
    assert r.to_polars("summary").shape == r.summary.shape
    assert isinstance(r.to_polars("summary"), pl.DataFrame)


def test_the_same_seed_gives_the_same_tables_whatever_the_threads_and_another_seed_differs():
    # 12,000 users: three batches, so that 3 threads really split the user pass.
    a = lm.run(agents=12000, set=SHORT, threads=1)
    b = lm.run(agents=12000, set=SHORT, threads=3)
    c = lm.run(agents=12000, set=SHORT, seed=99, threads=1)
    for name in a.tables:
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    assert not a.trace.equals(c.trace)


def test_a_dict_scenario_is_a_diff_over_the_baseline_and_sets_move_the_outcome():
    base = lm.run(agents=2000, set=SHORT)
    rich = lm.run({"end": "2023-02-28", "agents": 2000}, set={"firms.openai.cash_usd": 9e9})
    cash = lambda r: r.summary.set_index("firm").loc["openai", "end_cash_usd"]  # noqa: E731
    assert cash(rich) > cash(base)
    text = lm.validate({"agents": 2000})
    assert 'name = "baseline"' in text


def test_validate_raises_with_every_problem_and_its_key_path(tmp_path):
    with pytest.raises(lm.ScenarioError) as e:
        lm.validate(set={"agents": 0, "firms.openai.cash_usd": -1.0})
    paths = {p["path"] for p in e.value.problems}
    assert {"agents", "firms.openai.cash_usd"} <= paths, e.value.problems
    # A file: the problem names the file and the line of the key.
    bad = tmp_path / "bad.toml"
    bad.write_text('extends = "%s"\n\n[awareness]\nword_of_mouth_per_month = -3.0\n' % (ROOT / "configs" / "baseline.toml"))
    with pytest.raises(lm.ScenarioError) as e:
        lm.run(bad)
    [p] = [p for p in e.value.problems if p["path"] == "awareness.word_of_mouth_per_month"]
    assert p["file"].endswith("bad.toml") and p["line"] == 4, p
    # An unknown key in a dict.
    with pytest.raises(lm.ScenarioError) as e:
        lm.validate({"no_such_key": 1})
    assert [p["path"] for p in e.value.problems] == ["no_such_key"]
    assert "unknown key" in str(e.value)


def norm(values: pd.Series) -> list:
    """Values comparable across CSV (as pandas parses it) and Parquet: None for missing, dates as text,
    yes/no as True/False, numbers as floats, text as text."""
    out = []
    for v in values.tolist():
        if v is None or (isinstance(v, float) and v != v) or v is pd.NaT:
            out.append(None)
        elif hasattr(v, "isoformat"):
            out.append(v.isoformat()[:10])
        elif isinstance(v, bool) or v in ("true", "false"):
            out.append(v if isinstance(v, bool) else v == "true")
        elif isinstance(v, (int, float)):
            out.append(float(v))
        else:
            out.append(str(v))
    return out


def test_parquet_and_csv_of_one_run_hold_equal_values(tmp_path):
    cli("run", str(TINY), "--out", str(tmp_path / "csv"))
    cli("run", str(TINY), "--format", "parquet", "--out", str(tmp_path / "pq"))
    for table in ["trace", "market", "decisions", "annual", "summary"]:
        from_csv = pd.read_csv(tmp_path / "csv" / f"{table}.csv")
        from_pq = pd.read_parquet(tmp_path / "pq" / f"{table}.parquet")
        assert list(from_csv.columns) == list(from_pq.columns), table
        assert len(from_csv) == len(from_pq), table
        for col in from_csv.columns:
            assert norm(from_csv[col]) == norm(from_pq[col]), f"{table}.{col}"
    # lm.load reads both folders, verified, to the same frames; lm.run of the same scenario gives them too.
    csv_run, pq_run, mem = lm.load(tmp_path / "csv"), lm.load(tmp_path / "pq"), lm.run(TINY)
    for table in csv_run.tables:
        pd.testing.assert_frame_equal(getattr(csv_run, table), getattr(pq_run, table))
        pd.testing.assert_frame_equal(getattr(csv_run, table), getattr(mem, table))
    assert csv_run.manifest["format"] == "csv" and pq_run.manifest["format"] == "parquet"


def test_load_refuses_a_damaged_folder(tmp_path):
    cli("run", str(TINY), "--out", str(tmp_path / "run"))
    trace = tmp_path / "run" / "trace.csv"
    trace.write_text(trace.read_text().replace("lab", "lbb", 1))
    with pytest.raises(ValueError, match="changed after the run wrote it"):
        lm.load(tmp_path / "run")
    with pytest.raises(ValueError, match="no manifest.json"):
        lm.load(tmp_path)


def test_sweep_writes_a_resumable_folder_and_returns_its_tables(tmp_path):
    out = tmp_path / "sweep"
    seen = []
    r = lm.sweep(ROOT / "tests" / "data" / "sweep_tiny.toml", out, jobs=2, format="parquet",
                 progress=lambda done, total: seen.append((done, total)))
    assert r.kind == "sweep" and len(r.runs) == 8
    assert set(r.runs.status) == {"ok"}
    assert (out / "runs.parquet").is_file() and (out / "runs.csv").is_file()
    assert r.runs.columns[4:6].tolist() == ["awareness.word_of_mouth_per_month", "firms.lab.brand"]
    # The folder is what the command line writes: a resume finds every run committed.
    again = lm.sweep(ROOT / "tests" / "data" / "sweep_tiny.toml", out, resume=True, format="parquet")
    pd.testing.assert_frame_equal(r.runs, again.runs)
    # A second sweep into the same folder without resume or force is refused: nothing is overwritten.
    with pytest.raises(RuntimeError, match="resume|force"):
        lm.sweep(ROOT / "tests" / "data" / "sweep_tiny.toml", out)
    assert seen and seen[-1] == (8, 8), seen


def test_progress_reports_ticks_in_order_up_to_the_last():
    ticks = []
    lm.run(agents=20000, set={"end": "2023-06-30"}, threads=1, progress=lambda t, n: ticks.append((t, n)))
    assert ticks, "the callback was called"
    assert all(n == ticks[0][1] for _, n in ticks)
    assert [t for t, _ in ticks] == sorted(t for t, _ in ticks)
    assert ticks[-1] == (ticks[0][1], ticks[0][1]), "the last call reports the run finished"
    with pytest.raises(ValueError, match="threads must be between 1 and"):
        lm.run(agents=2000, set=SHORT, threads=0)


def test_ctrl_c_interrupts_a_run_cleanly():
    code = (
        "import sys, llm_market as lm\n"
        "print('started', flush=True)\n"
        "try:\n"
        "    lm.run(agents=3000000, threads=1)\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted', flush=True)\n"
        "    sys.exit(3)\n"
        "sys.exit(0)\n"
    )
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "started"
    time.sleep(2.0)
    sent = time.monotonic()
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 3, (out, err)
    assert "interrupted" in out
    assert time.monotonic() - sent < 10, "the run stopped within a few ticks"


def test_the_ema_workbench_example_runs_experiments_and_prim():
    if os.environ.get("LLM_MARKET_EMA_TESTS") == "1":
        import ema_workbench  # noqa: F401  (CI installs it: its absence is a failure there)
    else:
        pytest.importorskip("ema_workbench", reason="ema_workbench is not installed (CI sets LLM_MARKET_EMA_TESTS=1)")
    done = subprocess.run(
        [sys.executable, str(ROOT / "python" / "examples" / "ema_workbench.py"), "--experiments", "12"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "12 experiments, outcomes: end_cash_usd, bankrupt" in done.stdout
    assert "PRIM peeling trajectory" in done.stdout and "restricted parameters" in done.stdout


def test_compare_runs_paired_replicates_and_writes_the_report(tmp_path):
    seen = []
    c = lm.compare([TINY, ROOT / "tests" / "data" / "tiny_copy.toml"], tmp_path / "cmp", replicates=2, jobs=2,
                   progress=lambda done, total: seen.append((done, total)))
    assert {"metric", "scenario"} <= set(c.table.columns)
    assert set(c.table.scenario) == {"tiny", "tiny_copy"}
    assert os.path.isfile(c.report) and c.warnings == []
    assert seen and seen[-1] == (2, 2)
    # The folder is locked to its kind and never overwritten.
    with pytest.raises(RuntimeError, match="force"):
        lm.compare([TINY], tmp_path / "cmp", replicates=1)
    with pytest.raises(lm.ScenarioError):
        lm.compare([TINY], tmp_path / "cmp2", replicates=1, set={"agents": 0})


def test_calibration_gives_the_table_of_model_against_2023_data():
    table = lm.calibration(agents=5000, threads=2)
    assert len(table) >= 10
    assert "model" in " ".join(table.columns).lower()


def test_calibrate_returns_the_posterior_and_runs_and_compares_under_it(tmp_path):
    import tomllib

    priors, targets = ROOT / "tests" / "data" / "priors_tiny.toml", ROOT / "tests" / "data" / "targets_tiny.csv"
    cal = lm.calibrate(priors, tmp_path / "cal", targets=targets, particles=12, generations=2, jobs=2)
    sums = cal.posterior.groupby("generation")["weight"].sum()
    assert list(sums.index) == [0, 1] and all(abs(s - 1) < 1e-9 for s in sums)
    assert list(cal.generations["generation"]) == [0, 1]
    assert {"parameter", "prior_q05", "posterior_q95", "width_ratio"} <= set(cal.identification.columns)
    assert len(cal.predictive) == 7 and os.path.isfile(cal.report)
    # One posterior draw: its values reach the run's resolved scenario.
    post = tmp_path / "cal" / "posterior.csv"
    draw = lm.posterior_draw(post, 3)
    r = lm.run(TINY, posterior=post, draw=3, set={"end": "2023-02-28"}, threads=1)
    resolved = tomllib.loads(r.manifest["resolved_scenario"])
    lab = next(f for f in resolved["firms"] if f["id"] == "lab")
    assert lab["fixed_cost_usd_per_year"] == pytest.approx(float(draw["firms.lab.fixed_cost_usd_per_year"]))
    with pytest.raises(ValueError, match="draw must be in"):
        lm.posterior_draw(post, 12)
    # The checked-in posterior of the baseline runs under a scenario whose dated changes touch drawn keys.
    boom = lm.run(ROOT / "configs" / "scenarios" / "enterprise_api_boom.toml", agents=2000, threads=1,
                  posterior=ROOT / "configs" / "posteriors" / "baseline_2023.csv", draw=0, set={"end": "2023-10-31"})
    assert len(boom.summary) > 0
    # compare under the posterior: predictive intervals and the variance split.
    c = lm.compare([TINY, ROOT / "tests" / "data" / "tiny_copy.toml"], tmp_path / "cmp", replicates=2, jobs=2,
                   posterior=post, draws=2)
    shares = c.table["share_parameters"] + c.table["share_seeds"]
    assert ((shares - 1).abs() < 1e-9).any() and c.table["predictive_lo"].notna().all()
    # Bad priors raise ScenarioError with the key path.
    bad = tmp_path / "bad.toml"
    bad.write_text(f'scenario = "{TINY}"\n[[prior]]\npath = "nope.nope"\ndist = "uniform"\nmin = 0\nmax = 1\n'
                   'why = "x"\nsource = "y"\n')
    with pytest.raises(lm.ScenarioError, match="prior"):
        lm.calibrate(bad, tmp_path / "cal2")
