//! The only code that writes files: output folders (locks, what they hold), run outputs written atomically,
//! sweep files committed run by run and verified before they are trusted, merges, manifests, reports.

pub mod analysis_report;
pub mod analyze;
pub mod calibrate;
pub mod calibration_report;
pub mod comparison;
pub mod folder;
pub mod hidpi;
pub mod manifest;
pub mod merge;
pub mod outputs;
pub mod parquet;
pub mod report;
pub mod results;
pub mod sweep_check;
pub mod sweep_out;
pub mod sweep_run;
