//! The only code that touches files: run output directories written atomically, CSV streams, manifests.

pub mod manifest;
pub mod outputs;
pub mod report;
pub mod results;
pub mod sweep_out;
