//! The `llm-market` binary — the command-line face over the library (`cli` defines the arguments, `app` runs
//! the commands): parse the command line, run the command, print the error chain, exit.
//! Exit codes: 0 ok, 1 some runs failed, 2 bad input or a fatal error.

mod app;
mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match app::run(cli) {
        Ok(code) => code,
        Err(e) => {
            if let Some(ce) = e.downcast_ref::<llm_market::config::ConfigError>() {
                eprint!("error: {ce}");
            } else {
                eprintln!("error: {e:#}");
            }
            ExitCode::from(2)
        }
    }
}
