"""llm-market from Python: run scenarios, validate them, run sweeps, and read results as pandas DataFrames.

    import llm_market as lm
    r = lm.run(agents=5000, set={"end": "2023-03-31"})
    r.trace.head()

Tables cross from the simulator as Parquet bytes (the bytes ``--format parquet`` writes) and are read by
pyarrow: counts are int64, money float64 US dollars, dates datetime64 in pandas (``date32`` in Arrow),
yes/no columns bool. Column meanings: docs/OUTPUTS.md in the repository.
"""

from __future__ import annotations

import io
import json
import math
import os
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple, Union

import pyarrow as pa
import pyarrow.parquet as pq

from . import _native

__all__ = [
    "Analysis",
    "Calibration",
    "Comparison",
    "Result",
    "ScenarioError",
    "analyze",
    "calibrate",
    "calibration",
    "compare",
    "load",
    "posterior_draw",
    "run",
    "sweep",
    "toml_value",
    "validate",
    "__version__",
]

__version__ = _native.version()

Scenario = Union[None, str, "os.PathLike[str]", Mapping[str, Any]]
Sets = Union[None, Mapping[str, Any], Iterable[str]]


class ScenarioError(ValueError):
    """A scenario or sweep file with problems; ``problems`` lists every one of them as a dict with
    ``file``, ``path`` (the key path, e.g. ``firms.openai.cash_usd``), ``line`` and ``message``."""

    def __init__(self, message: str, problems: List[Dict[str, Any]]):
        super().__init__(message)
        self.problems = problems


def toml_value(value: Any) -> str:
    """A Python value as a TOML value, for ``set=`` overrides: str, bool, int, float, list, dict."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items()) + "}"
    if hasattr(value, "isoformat"):  # datetime.date
        return value.isoformat()
    raise TypeError(f"cannot write {value!r} ({type(value).__name__}) as a TOML value")


def _sets(sets: Sets) -> List[str]:
    if sets is None:
        return []
    if isinstance(sets, Mapping):
        return [f"{k}={toml_value(v)}" for k, v in sets.items()]
    if isinstance(sets, str):
        return [sets]
    return list(sets)


def _source(scenario: Scenario) -> Tuple[str, Optional[str]]:
    """(kind, text) for the native module: the embedded baseline, a file, TOML text or a dict."""
    if scenario is None:
        return "embedded", None
    if isinstance(scenario, Mapping):
        return "json", json.dumps(scenario, default=str)
    if isinstance(scenario, str) and ("\n" in scenario or ("=" in scenario and not os.path.exists(scenario))):
        return "toml", scenario
    return "file", os.fspath(scenario)


def _scenario_errors(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except _native.ScenarioError as e:
        message, problems = e.args
        raise ScenarioError(
            message,
            [{"file": f, "path": p, "line": line, "message": m} for (f, p, line, m) in problems],
        ) from None


def _progress(progress: Union[bool, Callable[[int, int], Any], None], unit: str):
    """A callback (done, total) and a closer: ``True`` draws a tqdm bar (a notebook widget in Jupyter)."""
    if progress is None or progress is False:
        return None, lambda: None
    if callable(progress):
        return progress, lambda: None
    try:
        from tqdm.auto import tqdm
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("progress=True needs tqdm: pip install tqdm") from e
    bar = tqdm(total=0, unit=unit)

    def update(done: int, total: int) -> None:
        if bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    return update, bar.close


class Result:
    """The tables of a run or a sweep. Each table is a pandas DataFrame attribute (``trace``, ``market``,
    ``decisions``, ``annual``, ``summary`` for a run; ``runs``, ``annual``, ``summary`` for a sweep),
    ``arrow(name)`` gives the pyarrow Table and ``to_polars(name)`` a polars DataFrame; ``manifest`` is the
    run's or sweep's manifest (scenario, seed, version, resolved scenario, …) as a dict."""

    def __init__(self, kind: str, tables: List[Tuple[str, bytes]], manifest: Dict[str, Any]):
        self.kind = kind
        self.manifest = manifest
        self._tables: Dict[str, pa.Table] = {
            # No pre-buffering: its cache can release the bytes on an Arrow I/O thread while the interpreter
            # exits, which aborts the process ("terminate called without an active exception").
            name: pq.read_table(pa.BufferReader(data), pre_buffer=False) for name, data in tables
        }
        self._frames: Dict[str, Any] = {}

    @property
    def tables(self) -> List[str]:
        """The names of the tables held."""
        return list(self._tables)

    def arrow(self, name: str) -> pa.Table:
        """A table as a pyarrow Table (dates as ``date32``)."""
        try:
            return self._tables[name]
        except KeyError:
            raise KeyError(f"no table {name!r}; this {self.kind} has {', '.join(self._tables)}") from None

    def to_pandas(self, name: str):
        """A table as a pandas DataFrame (dates as ``datetime64``)."""
        if name not in self._frames:
            self._frames[name] = self.arrow(name).to_pandas(date_as_object=False)
        return self._frames[name]

    def to_polars(self, name: str = "trace"):
        """A table as a polars DataFrame (needs polars)."""
        import polars as pl

        return pl.from_arrow(self.arrow(name))

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self.__dict__.get("_tables", {}):
            return self.to_pandas(name)
        raise AttributeError(f"{type(self).__name__} has no table {name!r} (tables: {', '.join(self.tables)})")

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._tables))

    def __repr__(self) -> str:
        shapes = ", ".join(f"{n} {t.num_rows}×{t.num_columns}" for n, t in self._tables.items())
        return f"<llm_market.Result {self.kind} {self.manifest.get('scenario') or self.manifest.get('sweep', '')}: {shapes}>"


def validate(scenario: Scenario = None, set: Sets = None, seed: Optional[int] = None, agents: Optional[int] = None) -> str:
    """Loads and checks a scenario (a path, TOML text, a dict over the baseline, or None for the embedded
    baseline) with overrides; returns its resolved TOML or raises ScenarioError listing every problem."""
    kind, text = _source(scenario)
    return _scenario_errors(lambda: _native.validate(kind, text, _sets(set), seed, agents))


def run(
    scenario: Scenario = None,
    set: Sets = None,
    seed: Optional[int] = None,
    agents: Optional[int] = None,
    threads: Optional[int] = None,
    record_every: Optional[str] = None,
    progress: Union[bool, Callable[[int, int], Any], None] = None,
    posterior: Union[str, "os.PathLike[str]", None] = None,
    draw: Optional[int] = None,
) -> Result:
    """Runs one scenario in memory and returns its tables.

    ``posterior`` and ``draw``: run under particle ``draw`` of a calibration's posterior.csv (its last
    generation; see ``posterior_draw``); ``set`` still applies on top.

    ``scenario``: a file path, TOML text, a dict (a diff over the embedded baseline unless it names
    ``extends``), or None for the embedded baseline. ``set``: overrides by key path, e.g.
    ``{"end": "2023-03-31", "firms.openai.cash_usd": 5e9}`` (or ``["key=value", …]`` as on the command
    line). ``threads``: worker threads of this run (default: all cores; results do not depend on it).
    ``progress``: True for a tqdm bar, or a callable (tick, ticks). The GIL is released while the model
    runs; Ctrl-C stops the run and raises KeyboardInterrupt."""
    kind, text = _source(scenario)
    sets = _sets(set)
    until_events: List[str] = []
    if (posterior is None) != (draw is None):
        raise ValueError("posterior and draw go together")
    if posterior is not None:
        values = posterior_draw(posterior, int(draw))
        sets = [f"{k}={v}" for k, v in values.items()] + sets
        # As under `compare --posterior`: a drawn value holds until a dated change of the scenario.
        until_events = list(values)
    callback, close = _progress(progress, "tick")
    try:
        tables, manifest = _scenario_errors(
            lambda: _native.run(kind, text, sets, seed, agents, threads, record_every, callback, until_events)
        )
    finally:
        close()
    return Result("run", tables, json.loads(manifest))


def sweep(
    sweep_file: Union[str, "os.PathLike[str]"],
    out: Union[str, "os.PathLike[str]"],
    set: Sets = None,
    agents: Optional[int] = None,
    jobs: Optional[int] = None,
    threads: Optional[int] = None,
    traces: str = "none",
    format: str = "csv",
    resume: bool = False,
    repair: bool = False,
    force: bool = False,
    progress: Union[bool, Callable[[int, int], Any], None] = None,
) -> Result:
    """Runs a sweep file into the folder ``out`` exactly as ``llm-market sweep`` does (locked, committed
    run by run, resumable with ``resume=True`` after an interruption) and returns its tables (``runs``,
    ``annual``, ``summary``). Ctrl-C stops it cleanly (KeyboardInterrupt); finished runs are kept."""
    callback, close = _progress(progress, "run")
    try:
        _scenario_errors(
            lambda: _native.sweep(
                os.fspath(sweep_file), os.fspath(out), _sets(set), agents, jobs, threads, traces, format,
                resume, repair, force, callback,
            )
        )
    finally:
        close()
    return load(out)


def load(folder: Union[str, "os.PathLike[str]"]) -> Result:
    """Reads a finished run folder (CSV or Parquet) or sweep folder (a complete sweep, shard or merge),
    after verifying every file against its manifest or index as ``llm-market compare`` does."""
    kind, tables, manifest = _native.load(os.fspath(folder))
    return Result(kind, tables, json.loads(manifest))


class Comparison:
    """A comparison folder: ``table`` is comparison.csv as a DataFrame (one row per metric, scenario and firm,
    with the replicate mean, its interval and the difference from the baseline), ``report`` the path of
    report.html, ``folder`` the folder, ``warnings`` failed runs."""

    def __init__(self, folder: Union[str, "os.PathLike[str]"], warnings: List[str]):
        import pandas as pd

        self.folder = os.fspath(folder)
        self.table = pd.read_csv(os.path.join(self.folder, "comparison.csv"))
        self.report = os.path.join(self.folder, "report.html")
        self.warnings = warnings

    def __repr__(self) -> str:
        return f"<llm_market.Comparison {self.folder}: {len(self.table)} rows, report {self.report}>"


def compare(
    inputs: Iterable[Union[str, "os.PathLike[str]"]],
    out: Union[str, "os.PathLike[str]"],
    baseline: Optional[str] = None,
    replicates: int = 8,
    seed: int = 1,
    jobs: Optional[int] = None,
    threads: Optional[int] = None,
    focus: Optional[str] = None,
    partial: bool = False,
    force: bool = False,
    set: Sets = None,
    agents: Optional[int] = None,
    progress: Union[bool, Callable[[int, int], Any], None] = None,
    dpi: Optional[int] = None,
    posterior: Union[str, "os.PathLike[str]", None] = None,
    draws: int = 16,
) -> Comparison:
    """Compares scenarios as ``llm-market compare`` does: scenario files are run ``replicates`` times with
    common random numbers (paired differences), finished run or sweep folders are read after verification;
    writes comparison.csv, the charts and report.html into ``out`` and returns them. With ``posterior`` (a
    calibration's posterior.csv), every scenario file runs under the same ``draws`` parameter draws ×
    ``replicates`` seeds, and the table adds predictive intervals and the parameters/seeds variance split."""
    callback, close = _progress(progress, "run")
    try:
        warnings = _scenario_errors(
            lambda: _native.compare(
                [os.fspath(i) for i in inputs], os.fspath(out), baseline, replicates, seed, jobs, threads,
                focus, partial, force, _sets(set), agents, callback, dpi,
                None if posterior is None else os.fspath(posterior), draws,
            )
        )
    finally:
        close()
    return Comparison(out, warnings)


class Analysis:
    """An analysis folder (``llm-market analyze``): ``sensitivity`` is sensitivity.csv as a DataFrame (one row
    per outcome, method, parameter and index, with its interval), ``prim`` is prim_boxes.csv (the peeling
    trajectory and the chosen box's limits), ``report`` the path of report.html, ``notes`` what was skipped."""

    def __init__(self, folder: Union[str, "os.PathLike[str]"], notes: List[str]):
        import pandas as pd

        self.folder = os.fspath(folder)
        self.sensitivity = pd.read_csv(os.path.join(self.folder, "sensitivity.csv"))
        self.prim = pd.read_csv(os.path.join(self.folder, "prim_boxes.csv"))
        self.report = os.path.join(self.folder, "report.html")
        self.notes = notes

    def __repr__(self) -> str:
        return f"<llm_market.Analysis {self.folder}: {len(self.sensitivity)} indices, {len(self.prim)} PRIM rows>"


def analyze(
    sweep: Union[str, "os.PathLike[str]"],
    outcome: Union[str, Iterable[str], None] = None,
    method: Union[str, Iterable[str], None] = None,
    prim: Union[str, Iterable[str], None] = None,
    out: Union[str, "os.PathLike[str]", None] = None,
    resamples: int = 1000,
    bootstrap_seed: int = 1,
    force: bool = False,
    dpi: Optional[int] = None,
) -> Analysis:
    """Analyses a finished sweep folder as ``llm-market analyze`` does: Sobol indices (Saltelli design),
    Morris measures (Morris design), PRCC/SRC and the variance split (any design), PRIM on each ``prim``
    condition (e.g. ``"openai.bankrupt_by_2024 == 1"``). ``method`` is one name, a list, or comma-separated
    names, as on the command line (default: every method the design allows). Writes into ``out`` (default ``SWEEP/analysis``)
    and returns the tables as DataFrames."""

    def listed(x: Union[str, Iterable[str], None]) -> List[str]:
        if x is None:
            return []
        return [x] if isinstance(x, str) else list(x)

    methods = [m.strip() for item in listed(method) for m in item.split(",") if m.strip()]
    folder, notes = _native.analyze(
        os.fspath(sweep), listed(outcome), methods, listed(prim),
        None if out is None else os.fspath(out), resamples, bootstrap_seed, force, dpi,
    )
    return Analysis(folder, notes)


class Calibration:
    """A calibration folder (``llm-market calibrate``): ``posterior`` (every generation's particles: weight,
    distance, one column per parameter), ``generations`` (tolerance, acceptance rate, effective sample size,
    runs), ``predictive`` (each target's data against the prior and posterior predictive bands) and
    ``identification`` (posterior against prior 90% interval per parameter) as DataFrames; ``report`` the
    path of report.html; ``summary`` the command line's summary."""

    def __init__(self, folder: Union[str, "os.PathLike[str]"], summary: str = ""):
        import pandas as pd

        self.folder = os.fspath(folder)
        self.posterior = pd.read_csv(os.path.join(self.folder, "posterior.csv"))
        self.generations = pd.read_csv(os.path.join(self.folder, "generations.csv"))
        self.predictive = pd.read_csv(os.path.join(self.folder, "predictive.csv"))
        self.identification = pd.read_csv(os.path.join(self.folder, "identification.csv"))
        self.report = os.path.join(self.folder, "report.html")
        self.summary = summary

    def __repr__(self) -> str:
        return (
            f"<llm_market.Calibration {self.folder}: {len(self.generations)} generations, "
            f"{int(self.posterior['particle'].max()) + 1} particles>"
        )


def calibrate(
    priors: Union[str, "os.PathLike[str]"],
    out: Union[str, "os.PathLike[str]"],
    targets: Union[str, "os.PathLike[str]", None] = None,
    particles: int = 100,
    generations: int = 5,
    sampler: Optional[str] = None,
    min_acceptance: float = 0.0,
    seeds_per_particle: int = 1,
    agents: Optional[int] = None,
    end: Optional[str] = None,
    fit_until: Optional[str] = None,
    seed: int = 1,
    jobs: Optional[int] = None,
    set: Sets = None,
    resume: bool = False,
    force: bool = False,
    progress: Union[bool, Callable[[int, int], Any], None] = None,
    dpi: Optional[int] = None,
) -> Calibration:
    """Fits the priors file's parameters to the targets (default: the built-in 2023 record) by ABC-SMC, as
    ``llm-market calibrate`` does, into the folder ``out`` (resumable with ``resume=True``); returns the
    posterior and the generations as DataFrames. ``sampler``: "pmc" or "mcmc" (default: by the number of
    particles against parameters)."""
    callback, close = _progress(progress, "run")
    try:
        folder, summary = _scenario_errors(
            lambda: _native.calibrate(
                os.fspath(priors), os.fspath(out), None if targets is None else os.fspath(targets), particles,
                generations, sampler, min_acceptance, seeds_per_particle, agents, end, fit_until, seed, jobs,
                _sets(set), resume, force, callback, dpi,
            )
        )
    finally:
        close()
    return Calibration(folder, summary)


def posterior_draw(posterior: Union[str, "os.PathLike[str]"], draw: int) -> Dict[str, str]:
    """The parameter values of particle ``draw`` of a posterior.csv's last generation, as ``set`` overrides
    (the file's own text, so integers stay integers). Particles of the MCMC sampler have equal weights, so
    k = 0, 1, … are posterior draws; a PMC posterior's particles carry weights (column ``weight``): resample
    by them (``compare(posterior=)`` does) rather than take the particles in order."""
    import pandas as pd

    table = pd.read_csv(posterior, dtype=str)
    last = table[table["generation"].astype(int) == table["generation"].astype(int).max()]
    if not 0 <= draw < len(last):
        raise ValueError(f"draw must be in 0..{len(last) - 1} (the last generation's particles), got {draw}")
    row = last.iloc[draw]
    columns = list(table.columns)
    params = columns[columns.index("distance") + 1 :]
    return {p: row[p] for p in params}


def calibration(
    scenario: Scenario = None,
    set: Sets = None,
    seed: Optional[int] = None,
    agents: Optional[int] = None,
    threads: Optional[int] = None,
):
    """The table "model against the 2023 data" (``llm-market calibration --format csv``) as a DataFrame."""
    import pandas as pd

    kind, text = _source(scenario)
    csv_text = _scenario_errors(lambda: _native.calibration(kind, text, _sets(set), seed, agents, threads))
    return pd.read_csv(io.StringIO(csv_text))
