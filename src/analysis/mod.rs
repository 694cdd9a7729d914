//! Analyses of results: calibration against the 2023 record, statistics across replicates, scenario
//! comparison, sensitivity analysis (Sobol, Morris, PRCC/SRC, noise) and scenario discovery (PRIM).

pub mod calibration;
pub mod compare;
pub mod prim;
pub mod sensitivity;
pub mod stats;

/// US dollars (or any large quantity) for people: `1.23B`, `45.6M`, `789k`, `12.34`; `-` when not finite.
pub fn fmt_big(x: f64) -> String {
    let a = x.abs();
    if !x.is_finite() {
        "-".into()
    } else if a >= 1e9 {
        format!("{:.2}B", x / 1e9)
    } else if a >= 1e6 {
        format!("{:.1}M", x / 1e6)
    } else if a >= 1e3 {
        format!("{:.0}k", x / 1e3)
    } else {
        format!("{x:.2}")
    }
}
