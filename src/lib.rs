//! llm-market: an agent-based simulator of competition in the 2023 generative-AI market.
//!
//! Layers (ARCHITECTURE.md): `model` (pure maths) ← `config` (scenario files) ← `sim` (bevy_ecs world and
//! schedule) ← `api` (running the model from a program) ← `experiment`, `analysis` ← `io` (files); the
//! command line (`cli`, `app`) is the binary's own face over this library (`src/main.rs`). Only `config`
//! (reading scenarios), `io` and `memcheck` touch the outside world; `tests/it/layering.rs` checks the
//! direction.

pub mod analysis;
pub mod api;
pub mod config;
pub mod experiment;
pub mod inference;
pub mod io;
pub mod memcheck;
pub mod model;
pub mod sim;
