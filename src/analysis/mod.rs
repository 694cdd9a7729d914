//! Analyses of results: calibration against the 2023 record, statistics across replicates, scenario
//! comparison, charts and the HTML report.

pub mod calibration;
pub mod compare;
pub mod stats;
