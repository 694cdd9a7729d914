//! Scenario configuration: file types, loading with `extends` and `--set`, and validation.
//!
//! Two levels, as in ripgrep: [`file::ScenarioFile`] mirrors the TOML; [`Scenario`] is built from it only
//! after every check passed, so the simulator never sees an invalid value.

pub mod dated;
pub mod domain;
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
            write!(f, "{}: ", shorten_message(p))?;
        }
        write!(f, "{}", shorten_message(&self.message))
    }
}

/// Keeps a message or key path readable when it quotes a huge value (e.g. a serde error echoing a
/// 100,000-character string; values the checks echo are cut earlier, by [`validate::shorten`]): the first
/// 300 characters, the count, and the last 100.
fn shorten_message(m: &str) -> String {
    let n = m.chars().count();
    if n <= 500 {
        return m.to_string();
    }
    let head: String = m.chars().take(300).collect();
    let tail: String = m.chars().skip(n - 100).collect();
    format!("{head}… ({n} characters) …{tail}")
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
    /// Key paths of `sets` whose value may be changed later by a dated `set` event of the scenario: it then
    /// holds until that event (posterior draws: values calibrated on the record before a scenario's
    /// change). Any other `--set` of such a key is refused.
    pub until_events: Vec<String>,
}

/// The parameters in force from a date on: the scenario with every `set` event dated on or before `from`
/// applied.
///
/// Epoch 0 is the scenario as written, from `start`; it also sets up the initial state. A later epoch takes
/// effect at the first tick on or after `from`; one dated on the start date applies from the first tick on
/// (the initial state of tick 0 is still set up from the scenario as written).
#[derive(Clone, Debug)]
pub struct Epoch {
    pub from: chrono::NaiveDate,
    pub params: std::sync::Arc<ScenarioFile>,
    /// The firms of `params`, as the simulator reads them.
    pub firms: std::sync::Arc<[domain::Firm]>,
}

impl Epoch {
    /// The epoch of validated `params` from `from` on.
    pub fn new(from: chrono::NaiveDate, params: ScenarioFile) -> Epoch {
        let firms = params.firms.iter().map(domain::Firm::from_file).collect();
        Epoch { from, params: std::sync::Arc::new(params), firms }
    }
}

/// A validated scenario. Construct it with [`load`] or [`Scenario::from_file`].
#[derive(Clone, Debug)]
pub struct Scenario {
    params: ScenarioFile,
    summer: (MonthDay, MonthDay),
    /// Epoch 0 (the scenario as written), then one per date of the enabled `set` events (see [`Epoch`]).
    epochs: Vec<Epoch>,
    /// Where it came from, for manifests (`configs/baseline.toml (embedded)` or a path).
    pub source: String,
}

impl Scenario {
    /// Validates an in-memory scenario (used by sweeps and tests).
    pub fn from_file(params: ScenarioFile, source: &str) -> Result<Scenario, ConfigError> {
        let (summer, epochs) = check(&params).map_err(|problems| ConfigError { problems })?;
        Ok(Scenario { params, summer, epochs, source: source.to_string() })
    }
    /// The resolved parameters (every default filled in).
    pub fn params(&self) -> &ScenarioFile {
        &self.params
    }
    /// The parameters in force from each date on, in date order; the first is [`Scenario::params`].
    pub fn epochs(&self) -> &[Epoch] {
        &self.epochs
    }
    /// The firms as the simulator reads them at the start (epoch 0).
    pub fn firms(&self) -> &[domain::Firm] {
        &self.epochs[0].firms
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
    load_sources(Sources::load(path).map_err(|problems| ConfigError { problems })?, overrides)
}

/// [`load`] for a scenario given as text: a diff over the embedded baseline unless it names `extends`.
pub fn load_text(source: &source::TextSource, overrides: &Overrides) -> Result<Scenario, ConfigError> {
    load_sources(Sources::load_text(source).map_err(|problems| ConfigError { problems })?, overrides)
}

fn load_sources(sources: Sources, overrides: &Overrides) -> Result<Scenario, ConfigError> {
    let source_name = sources.files.first().map(|f| f.display.clone()).unwrap_or_default();
    let merged = toml::Value::Table(sources.merged.clone());

    // Unknown keys first, all of them at once; then keys that have no sensible default.
    let mut unknown = Vec::new();
    source::unknown_keys(&merged, &source::schema_example(), &mut Vec::new(), &mut unknown);
    let mut problems: Vec<Problem> = unknown
        .iter()
        .map(|segs| Problem { file: None, path: Some(format_path(segs)), line: None, message: "unknown key".into() })
        .collect();
    problems.extend(source::missing_keys(&merged).into_iter().map(|(segs, why)| Problem {
        file: None,
        path: Some(format_path(&segs)),
        line: None,
        message: format!("missing key ({why})"),
    }));
    if !problems.is_empty() {
        sources.annotate(&mut problems);
        return Err(ConfigError { problems });
    }
    let file = source::deserialize(merged).map_err(|(segs, msg)| {
        let mut problems = vec![Problem { file: None, path: Some(format_path(&segs)), line: None, message: msg }];
        sources.annotate(&mut problems);
        ConfigError { problems }
    })?;
    let (file, origins) = apply_overrides_traced(file, overrides)?;
    let (summer, epochs) = check(&file).map_err(|mut problems| {
        blame_command_line(&mut problems, &origins);
        sources.annotate(&mut problems);
        ConfigError { problems }
    })?;
    Ok(Scenario { params: file, summer, epochs, source: source_name })
}

/// What [`check`] gives a valid scenario: the academic-summer window and the epochs.
type Checked = ((MonthDay, MonthDay), Vec<Epoch>);

/// Validates a scenario and builds its epochs. The values of `set` events are checked only once the
/// scenario itself is valid (each is checked against it); their keys are checked either way.
fn check(file: &ScenarioFile) -> Result<Checked, Vec<Problem>> {
    match validate::validate(file) {
        Ok(summer) => dated::epochs(file).map(|epochs| (summer, epochs)),
        Err(mut problems) => {
            problems.extend(dated::key_problems(file));
            Err(problems)
        }
    }
}

/// Where a value set on the command line came from: the flag as the user wrote it and its key path.
#[derive(Clone, Debug, PartialEq)]
pub struct Origin {
    /// `--agents`, `--seed`, `--record-every`, or `--set` (the key as written is in `written`).
    pub flag: String,
    /// The key as the user wrote it (`firms.openai.brand`).
    pub written: String,
}

/// Key paths (canonical, `firms[0].brand`) set by the command line, last setting wins.
pub type Origins = std::collections::BTreeMap<String, Origin>;

/// Blames problems about keys the command line set on the flag that set them (so that
/// [`source::Sources::annotate`] does not point at a file line that did not give the value).
pub fn blame_command_line(problems: &mut [Problem], origins: &Origins) {
    for p in problems.iter_mut() {
        let Some(path) = p.path.clone() else { continue };
        let hit = origins.iter().rev().find(|(k, _)| {
            path == **k || path.strip_prefix(k.as_str()).is_some_and(|r| r.starts_with('.') || r.starts_with('['))
        });
        if let Some((k, o)) = hit {
            p.file = Some(o.flag.clone());
            p.line = None;
            if path != *k {
                p.message = format!("{path}: {}", p.message);
            }
            p.path = Some(o.written.clone());
        }
    }
}

/// Applies every `--set` (in order), then `--seed`, `--agents` and `--record-every` (the dedicated flags
/// win over a `--set` of the same key), to a deserialised scenario.
pub fn apply_overrides(file: ScenarioFile, o: &Overrides) -> Result<ScenarioFile, ConfigError> {
    apply_overrides_traced(file, o).map(|(f, _)| f)
}

/// [`apply_overrides`], also returning which key paths the command line set.
pub fn apply_overrides_traced(file: ScenarioFile, o: &Overrides) -> Result<(ScenarioFile, Origins), ConfigError> {
    let (mut file, mut origins) = apply_sets(file, &o.sets, &o.until_events)?;
    let flag = |f: &str, k: &str| Origin { flag: f.into(), written: k.into() };
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
        origins.insert("seed".into(), flag("--seed", "seed"));
    }
    if let Some(a) = o.agents {
        file.agents = a;
        origins.insert("agents".into(), flag("--agents", "agents"));
    }
    if let Some(r) = o.record_every {
        file.record_every = Some(r);
        origins.insert("record_every".into(), flag("--record-every", "record_every"));
    }
    Ok((file, origins))
}

/// Applies `key.path=value` overrides; also returns the canonical key paths they set.
fn apply_sets(
    file: ScenarioFile,
    sets: &[String],
    until_events: &[String],
) -> Result<(ScenarioFile, Origins), ConfigError> {
    let mut origins = Origins::new();
    if sets.is_empty() {
        return Ok((file, origins));
    }
    let set_problem = |raw: &str, msg: String| Problem {
        file: Some("--set".into()),
        path: Some(validate::shorten(raw)),
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
            Some(segs) if !segs.is_empty() => {
                source::set_at(&mut full, &segs, source::parse_set_value(value.trim()));
                origins.insert(format_path(&segs), Origin { flag: "--set".into(), written: key.to_string() });
            }
            _ => problems
                .push(set_problem(key, "no such key in the scenario (see `llm-market validate` for every key)".into())),
        }
    }
    if !problems.is_empty() {
        return Err(ConfigError { problems });
    }
    let file = source::deserialize(full).map_err(|(segs, msg): (Vec<Seg>, String)| {
        let mut problems =
            vec![Problem { file: Some("--set".into()), path: Some(format_path(&segs)), line: None, message: msg }];
        blame_command_line(&mut problems, &origins);
        ConfigError { problems }
    })?;
    // A key that a dated `set` event changes would keep this value only until the event's date.
    for (path, origin) in &origins {
        let Some(segs) = source::parse_path(path) else { continue };
        if until_events.iter().any(|k| k.trim() == origin.written.trim() || k.trim() == path) {
            continue;
        }
        if let Some((id, date)) = dated::shadowing_event(&file, &segs) {
            problems.push(set_problem(
                &origin.written,
                format!(
                    "the set event `{id}` changes this key from {date}, so this value would hold only until then; \
                     set `events.{id}.value` instead (or drop the event with `events.{id}.enabled=false`)"
                ),
            ));
        }
    }
    if !problems.is_empty() {
        return Err(ConfigError { problems });
    }
    Ok((file, origins))
}
