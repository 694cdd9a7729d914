//! The one integration-test binary (matklad, "Delete Cargo Integration Tests"). Modules:
mod support; // helpers: the binary, the tiny scenario, temp dirs
mod cli; // command-line behaviour: bad input gives exit 2 and nothing written; outputs are atomic
mod determinism; // same seed → same bytes, for any thread count; another seed → other results
mod docking; // agent-based awareness matches the closed-form Bass curve
mod golden; // the tiny scenario's CSVs match the committed golden files
mod invariants; // accounting and population identities checked every tick
mod ticks; // daily and weekly ticks agree in aggregate
