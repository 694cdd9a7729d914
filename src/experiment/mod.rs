//! Experiments: sweep specifications, designs (grid, zip, random, Latin hypercube, Sobol), seeds under
//! common random numbers, parallel execution with resume, shards and merging.

pub mod design;
pub mod runner;
pub mod spec;
