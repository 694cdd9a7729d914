//! Pure model maths: randomness, calendar, economics and choice. No bevy, no IO (ARCHITECTURE.md).

pub mod calendar;
pub mod choice;
pub mod compute;
pub mod econ;
pub mod rng;
pub mod strategy;
