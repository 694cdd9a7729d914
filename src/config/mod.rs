//! Scenario configuration: file types, loading with `extends` and `--set`, and validation.
//!
//! Two levels, as in ripgrep: [`file::ScenarioFile`] mirrors the TOML; [`Scenario`] is built from it only
//! after every check passed, so the simulator never sees an invalid value.

pub mod file;
pub mod source;
pub mod validate;

use crate::model::calendar::{MonthDay, Period};
use file::ScenarioFile;
use source::{Seg, Sources, format_path};
use std::fmt;
use std::path::Path;

/// One problem with an input, located as precisely as possible.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    pub file: Option<String>,
    pub path: Option<String>,
    pub line: Option<usize>,
    pub message: String,
}

impl Problem {
    pub fn in_file(file: &str, message: impl Into<String>) -> Problem {
        Problem { file: Some(file.to_string()), path: None, line: None, message: message.into() }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, "{file}:{line}: ")?,
            (Some(file), None) => write!(f, "{file}: ")?,
            _ => {}
        }
        if let Some(p) = &self.path {
            write!(f, "{p}: ")?;
        }
        write!(f, "{}", self.message)
    }
}

/// Every problem found in an input; the command exits with code 2.
#[derive(Clone, Debug, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        writeln!(f, "{n} problem{} in the input:", if n == 1 { "" } else { "s" })?;
        for p in &self.problems {
            writeln!(f, "  {p}")?;
        }
        Ok(())
    }
}

/// Command-line changes applied on top of a scenario file, in order.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// `key.path=value` pairs (`--set`).
    pub sets: Vec<String>,
    pub seed: Option<u64>,
    pub agents: Option<u64>,
    pub record_every: Option<Period>,
}

/// A validated scenario. Construct it with [`load`] or [`Scenario::from_file`].
#[derive(Clone, Debug)]
pub struct Scenario {
    params: ScenarioFile,
    summer: (MonthDay, MonthDay),
    /// Where it came from, for manifests (`configs/baseline.toml (embedded)` or a path).
    pub source: String,
}

impl Scenario {
    /// Validates an in-memory scenario (used by sweeps and tests).
    pub fn from_file(params: ScenarioFile, source: &str) -> Result<Scenario, ConfigError> {
        let summer = validate::validate(&params).map_err(|problems| ConfigError { problems })?;
        Ok(Scenario { params, summer, source: source.to_string() })
    }
    /// The resolved parameters (every default filled in).
    pub fn params(&self) -> &ScenarioFile {
        &self.params
    }
    pub fn summer(&self) -> (MonthDay, MonthDay) {
        self.summer
    }
    pub fn record_every(&self) -> Period {
        validate::record_every(&self.params)
    }
    /// The resolved scenario as TOML (what `validate` prints and the manifest records).
    pub fn to_toml(&self) -> String {
        toml::to_string(&self.params).expect("a validated scenario serialises")
    }
}

/// Loads, merges, overrides and validates a scenario; `None` means the embedded baseline.
pub fn load(path: Option<&Path>, overrides: &Overrides) -> Result<Scenario, ConfigError> {
    let sources = Sources::load(path).map_err(|problems| ConfigError { problems })?;
    let source_name = sources.files.first().map(|f| f.display.clone()).unwrap_or_default();
    let merged = toml::Value::Table(sources.merged.clone());

    // Unknown keys first, all of them at once.
    let mut unknown = Vec::new();
    source::unknown_keys(&merged, &source::schema_example(), &mut Vec::new(), &mut unknown);
    if !unknown.is_empty() {
        let mut problems: Vec<Problem> = unknown
            .iter()
            .map(|segs| Problem {
                file: None,
                path: Some(format_path(segs)),
                line: None,
                message: "unknown key".into(),
            })
            .collect();
        sources.annotate(&mut problems);
        return Err(ConfigError { problems });
    }
    let file = source::deserialize(merged).map_err(|(segs, msg)| {
        let mut problems = vec![Problem { file: None, path: Some(format_path(&segs)), line: None, message: msg }];
        sources.annotate(&mut problems);
        ConfigError { problems }
    })?;
    let file = apply_overrides(file, overrides)?;
    let summer = validate::validate(&file).map_err(|mut problems| {
        sources.annotate(&mut problems);
        ConfigError { problems }
    })?;
    Ok(Scenario { params: file, summer, source: source_name })
}

/// Applies every `--set` (in order), then `--seed`, `--agents` and `--record-every` (the dedicated flags
/// win over a `--set` of the same key), to a deserialised scenario.
pub fn apply_overrides(file: ScenarioFile, o: &Overrides) -> Result<ScenarioFile, ConfigError> {
    let mut file = apply_sets(file, &o.sets)?;
    if let Some(seed) = o.seed {
        if seed > i64::MAX as u64 {
            return Err(ConfigError {
                problems: vec![Problem {
                    file: Some("--seed".into()),
                    path: Some("seed".into()),
                    line: None,
                    message: format!("must be at most {} (a TOML integer), got {seed}", i64::MAX),
                }],
            });
        }
        file.seed = seed;
    }
    if let Some(a) = o.agents {
        file.agents = a;
    }
    if let Some(r) = o.record_every {
        file.record_every = Some(r);
    }
    Ok(file)
}

/// Applies `key.path=value` overrides.
fn apply_sets(file: ScenarioFile, sets: &[String]) -> Result<ScenarioFile, ConfigError> {
    if sets.is_empty() {
        return Ok(file);
    }
    let set_problem = |raw: &str, msg: String| Problem {
        file: Some("--set".into()),
        path: Some(raw.to_string()),
        line: None,
        message: msg,
    };
    let mut full = toml::Value::try_from(&file).expect("a scenario serialises");
    let mut problems = Vec::new();
    for set in sets {
        let Some((key, value)) = set.split_once('=') else {
            problems.push(set_problem(set, "expected key.path=value".into()));
            continue;
        };
        let key = key.trim();
        match source::resolve_set_path(&full, key) {
            Some(segs) if !segs.is_empty() => source::set_at(&mut full, &segs, source::parse_set_value(value.trim())),
            _ => problems
                .push(set_problem(key, "no such key in the scenario (see `llm-market validate` for every key)".into())),
        }
    }
    if !problems.is_empty() {
        return Err(ConfigError { problems });
    }
    source::deserialize(full).map_err(|(segs, msg): (Vec<Seg>, String)| ConfigError {
        problems: vec![Problem {
            file: Some("--set".into()),
            path: Some(format_path(&segs)),
            line: None,
            message: msg,
        }],
    })
}
