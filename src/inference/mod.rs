//! Inference: calibrating the model's uncertain parameters to the 2023 record. `prior.rs` (priors files and
//! the Gaussian copula the sampler works in), `targets.rs` (the machine-usable targets and how a run gives
//! each one), `abc.rs` (ABC-SMC, generic over the simulator). Running the model for it, checkpoints and the
//! files written are `io::calibrate`'s.

pub mod abc;
pub mod prior;
pub mod targets;
