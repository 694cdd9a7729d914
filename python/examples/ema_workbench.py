"""llm-market as an EMA Workbench model: uncertainties over named key paths of a scenario, outcomes from the
summary and annual tables, ``perform_experiments`` on a small Latin-hypercube design, and PRIM scenario
discovery on a yes/no outcome (OpenAI ending with less cash than the median experiment).

    python python/examples/ema_workbench.py --experiments 16 --agents 2000
    python python/examples/ema_workbench.py --param firms.openai.raise.success_base=0.2:0.8 --param ...

Works with ema_workbench 2.5.x (Python <= 3.11) and 3.x (Python >= 3.12), whose PRIM signatures differ.
Each experiment is one ``llm_market.run`` in this process (the sequential evaluator; each run uses its own
worker threads). The uncertainties default to four [A]-graded parameters of configs/baseline.toml; a priors
file is issue 16's.
"""

from __future__ import annotations

import argparse
import inspect
import os
import re
import sys
from typing import Dict, Tuple

# This file is named like the package it uses: keep its own folder off the import path, so that
# `import ema_workbench` finds the package rather than this script.
_here = os.path.dirname(os.path.abspath(__file__))
sys.path = [p for p in sys.path if os.path.abspath(p or os.curdir) != _here]

import numpy as np  # noqa: E402

import llm_market as lm  # noqa: E402

# Key path -> (low, high): assumptions ([A]) of the baseline around their values (3.0, 0.8, 0.1, 0.5).
DEFAULT_UNCERTAINTIES: Dict[str, Tuple[float, float]] = {
    "awareness.word_of_mouth_per_month": (1.5, 4.5),
    "orgs.log_price_weight": (0.4, 3.0),
    "orgs.seat_take_up": (0.05, 0.2),
    "firms.openai.raise.success_base": (0.2, 0.8),
}

FOCUS = "openai"


def identifier(path: str) -> str:
    """A key path as a Python identifier (EMA passes uncertainties as keyword arguments)."""
    return re.sub(r"\W", "_", path)


def make_model(uncertainties: Dict[str, Tuple[float, float]], agents: int, end: str, seed: int):
    from ema_workbench import Model, RealParameter, ScalarOutcome

    names = {identifier(p): p for p in uncertainties}

    def simulate(**values: float) -> Dict[str, float]:
        overrides = {names[k]: float(v) for k, v in values.items()}
        overrides.update({"end": end, "orgs.agents": agents})
        r = lm.run(agents=agents, seed=seed, set=overrides, threads=1)
        summary = r.summary.set_index("firm").loc[FOCUS]
        annual = r.annual[(r.annual.firm == FOCUS)].set_index("year")
        last_year = int(annual.index.max())
        return {
            "end_cash_usd": float(summary["end_cash_usd"]),
            "bankrupt": float(bool(summary["bankrupt"])),
            "last_year_revenue_usd": float(annual.loc[last_year, "revenue_usd"]),
            "last_year_profit_usd": float(annual.loc[last_year, "profit_usd"]),
        }

    model = Model("llmmarket", function=simulate)  # alphanumeric: 2.5 refuses "_", 3.0 wants an identifier
    model.uncertainties = [RealParameter(identifier(p), lo, hi) for p, (lo, hi) in uncertainties.items()]
    model.outcomes = [
        ScalarOutcome("end_cash_usd"),
        ScalarOutcome("bankrupt"),
        ScalarOutcome("last_year_revenue_usd"),
        ScalarOutcome("last_year_profit_usd"),
    ]
    return model


def run_prim(x, y, peel_alpha: float = 0.1, mass_min: float = 0.1):
    """PRIM on a 0/1 outcome, for either ema_workbench API (2.5 needs a threshold, 3.0 has none)."""
    from ema_workbench.analysis import prim

    kwargs = {"peel_alpha": peel_alpha, "mass_min": mass_min}
    if "threshold" in inspect.signature(prim.Prim).parameters:
        kwargs["threshold"] = 0.5
    return prim.Prim(x, y, **kwargs).find_box()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=16)
    parser.add_argument("--agents", type=int, default=2000)
    parser.add_argument("--end", default="2024-12-31")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--param", action="append", default=[], metavar="PATH=LOW:HIGH",
        help="an uncertainty over a key path (repeatable; replaces the defaults)",
    )
    args = parser.parse_args(argv)
    uncertainties = dict(DEFAULT_UNCERTAINTIES)
    if args.param:
        uncertainties = {}
        for p in args.param:
            path, _, rng = p.partition("=")
            lo, _, hi = rng.partition(":")
            uncertainties[path] = (float(lo), float(hi))

    from ema_workbench import perform_experiments

    np.random.seed(args.seed)  # ema_workbench 2.5 samples with numpy's global generator
    model = make_model(uncertainties, args.agents, args.end, args.seed)
    experiments, outcomes = perform_experiments(model, args.experiments)
    print(f"{len(experiments)} experiments, outcomes: {', '.join(outcomes)}")
    cash = outcomes["end_cash_usd"]
    print(f"OpenAI end cash: median ${np.median(cash) / 1e9:.2f}B, range ${cash.min() / 1e9:.2f}B to ${cash.max() / 1e9:.2f}B")
    print(f"OpenAI bankrupt in {int(outcomes['bankrupt'].sum())} of {len(cash)} experiments")

    # Scenario discovery: which parameter ranges leave OpenAI with less cash than the median experiment?
    y = (cash < np.median(cash)).astype(int)
    x = experiments[[u.name for u in model.uncertainties]].astype(float)
    box = run_prim(x, y)
    trajectory = box.peeling_trajectory
    print("PRIM peeling trajectory (coverage, density, mass of each box):")
    print(trajectory[["coverage", "density", "mass", "res_dim"]].round(3).to_string())
    print(f"chosen box: coverage {box.coverage:.2f}, density {box.density:.2f}, mass {box.mass:.2f}")
    data = box.inspect(style="data")
    _, limits = data[0] if isinstance(data, list) else data
    print("restricted parameters (limits and quasi-p-values):")
    print(limits.to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
