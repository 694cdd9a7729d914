//! llm-market: an agent-based simulator of competition in the 2023 generative-AI market.
//!
//! Layers (ARCHITECTURE.md): `model` (pure maths) ← `sim` (bevy_ecs world and schedule) ← `config`
//! (scenario files) ← `io` (files) ← `app` (commands). Only `io` and `app` touch the outside world.

pub mod analysis;
pub mod app;
pub mod cli;
pub mod config;
pub mod experiment;
pub mod io;
pub mod memcheck;
pub mod model;
pub mod sim;
