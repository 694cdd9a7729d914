//! Analyses of run results: calibration against the 2023 public record.

pub mod calibration;
