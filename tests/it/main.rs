//! The one integration-test binary (matklad, "Delete Cargo Integration Tests"). Modules:
mod analyze; // sensitivity analysis of real sweeps: Saltelli and Morris designs, indices, charts, refusals
mod bounds; // memory and size bounds checked before work starts: 10^8-point dry runs, memory refusals
mod calibrate; // ABC-SMC on the tiny scenario: same bytes for any job count and after SIGKILL, refusals, compare --posterior, simulation-based calibration
mod calibration; // the baseline reproduces the 2023 record (docs/ODD.md §1): visits, serving spend, capacity, 2022 loss, dated inputs
mod cli; // command-line behaviour: bad input gives exit 2 and nothing written; outputs are atomic
mod compare; // scenario comparison: statistics, charts, report, refusals
mod compute; // capacity bounds service, dated capacity cuts ration users, stories after 2023-08 leave 2023 alone
mod config_fuzz; // seeded mutants of the tiny and baseline scenarios: exit 0 or 2, never a panic or a hang
mod config_safety; // names, input files, extends loops, whole-run bounds, flag blame, required keys, faults
mod decisions; // firms that decide: nothing before the start, every change logged, outcomes move with inputs
mod determinism; // same seed → same bytes, for any thread count; another seed → other results
mod docking; // agent-based awareness matches the closed-form Bass curve
mod golden; // the tiny scenario's CSVs match the committed golden files
mod integrity; // results never lost or silently wrong: locks, folder kinds, verified resume and repair, signals
mod invariants; // accounting and population identities checked every tick
mod layering; // the layers of ARCHITECTURE.md import only layers below; the core reads no file or environment
mod parquet; // --format parquet: the values of the CSV, typed; byte-identical; one row group per run in sweeps
mod sampler; // the event-driven sampler agrees in distribution with the per-tick one on whole runs, 12 or 30 seeds
mod slurm; // a real Slurm cluster (when LLM_MARKET_SLURM_TESTS is set)
mod support; // helpers: the binary, the tiny scenario, temp dirs
mod sweep; // sweeps: jobs, resume after SIGKILL, shards and merge, failures, traces
mod ticks; // daily and weekly ticks agree in aggregate
