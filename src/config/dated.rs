//! Dated changes of parameters: `set` events, which keys they may change, and the epochs they make.
//!
//! A `set` event (`kind = "set"`, `key`, `value`) changes one parameter from its date on; `key` is a key
//! path as for `--set` (`firms.openai.brand`, `awareness.p_base_per_month`). Keys that describe the set-up or
//! the state of the run rather than a rule's parameter are refused ([`set_refusal`]). Each value is checked
//! like a `--set`: applied to the scenario, deserialised and validated, with every problem reported under
//! `events[i].value` and prefixed by the key path it concerns. [`epochs`] turns the scenario into the
//! parameters in force from each date on ([`Epoch`]).

use super::file::{EventKind, ScenarioFile};
use super::source::{self, Seg, format_path};
use super::{Epoch, Problem, validate};

const NAMING: &str = "it names the scenario and its outputs";
const SEED: &str = "the seed fixes every random stream at set-up (vary it with `--seed` or a sweep)";
const RUN: &str = "the run's dates and intervals (start, end, tick, record_every) are fixed at set-up";
const SCALE: &str = "the number of agents and the population they stand for are fixed at set-up";
const THRESHOLDS: &str = "the revenue thresholds the run records are fixed at set-up";
const ACADEMIC: &str = "the academic calendar is fixed at set-up";
const EVENTS: &str =
    "events cannot change events; add, re-date or drop (`enabled = false`) events in the scenario instead";
const EXTENDS: &str = "`extends` is resolved when the file is read";
const DRAWN: &str =
    "it is drawn into each agent at set-up, so a later change would reach no agent; change it in the scenario itself";
const WHOLE_FIRM: &str =
    "a firm cannot be added or replaced during a run; set one of its parameters instead (e.g. `firms.openai.brand`)";
const FIRM_ID: &str = "it identifies the firm";
const LAUNCH: &str = "the firm's launch dates are fixed at set-up; use a release event for a new model";
const CASH: &str = "it is the firm's state (its cash moves during the run); use a funding event";
const OFFER: &str = "it is the firm's state (its offer moves during the run); use a price event";
const HOSTABLE: &str =
    "it is the firm's state (its offer moves during the run); use a release or strategy event with `self_hostable`";
const TIERS: &str = "the firm's tiers are its state (its offer moves during the run); use a price event";
const GPUS: &str = "it is the firm's compute at the start of the run (state, not a rule)";
const GPU_PRICE: &str = "it is the price in the firm's signed compute contracts and the unit its demand is counted in \
     (state, not a rule); change what a token costs through the tiers' costs or cost_decline_per_year";
const MODEL: &str = "it is where the firm's R&D race starts (state at set-up); its own training runs move it";
const TRAINING: &str = "whether a firm trains its own models decides its tiers and releases at set-up; switch the \
     other decisions (capacity, prices, cuts, funding) by date, or set strategy.training for the whole run";
const DECIDE_FROM: &str = "it is the date firms start to decide; set it for the whole run (`--set decisions.start=…`)";
const HOLDS: &str = "it is a table that holds values fixed at set-up; set the keys you mean one at a time";

/// The keys a set event may not change, as key-path patterns (`*` any key, `[]` any index) with the
/// reason. A pattern refuses its key and everything under it; a table that holds a refused key is refused
/// as a whole too (see [`set_refusal`]).
const REFUSED: &[(&[&str], &str)] = &[
    (&["name"], NAMING),
    (&["description"], NAMING),
    (&["extends"], EXTENDS),
    (&["seed"], SEED),
    (&["start"], RUN),
    (&["end"], RUN),
    (&["tick"], RUN),
    (&["record_every"], RUN),
    (&["agents"], SCALE),
    (&["population"], SCALE),
    (&["revenue_thresholds_usd"], THRESHOLDS),
    (&["calendar"], ACADEMIC),
    (&["events"], EVENTS),
    (&["orgs", "agents"], SCALE),
    (&["orgs", "population"], SCALE),
    (&["orgs", "verticals", "*", "share"], DRAWN),
    (&["segments", "*", "share"], DRAWN),
    (&["segments", "*", "employed_share"], DRAWN),
    (&["segments", "*", "wtp_median_usd"], DRAWN),
    (&["segments", "*", "wtp_sigma"], DRAWN),
    (&["segments", "*", "taste_spread"], DRAWN),
    (&["firms", "[]", "id"], FIRM_ID),
    (&["firms", "[]", "name"], FIRM_ID),
    (&["firms", "[]", "kind"], FIRM_ID),
    (&["firms", "[]", "launch"], LAUNCH),
    (&["firms", "[]", "chat_launch"], LAUNCH),
    (&["firms", "[]", "cash_usd"], CASH),
    (&["firms", "[]", "free_tier"], OFFER),
    (&["firms", "[]", "sub_price_usd_per_month"], OFFER),
    (&["firms", "[]", "api_price_usd_per_mtok"], OFFER),
    (&["firms", "[]", "seat_price_usd_per_month"], OFFER),
    (&["firms", "[]", "self_hostable"], HOSTABLE),
    (&["firms", "[]", "tiers"], TIERS),
    (&["firms", "[]", "compute", "initial_gpus"], GPUS),
    (&["firms", "[]", "compute", "gpu_cost_usd_per_day"], GPU_PRICE),
    (&["firms", "[]", "model"], MODEL),
    (&["firms", "[]", "strategy", "training"], TRAINING),
    (&["decisions", "start"], DECIDE_FROM),
];

fn seg_matches(pattern: &str, seg: &Seg) -> bool {
    match seg {
        Seg::Key(k) => pattern == "*" || pattern == k,
        Seg::Index(_) => pattern == "[]",
    }
}

/// Why a set event may not change the key at canonical `segs` (from [`source::resolve_set_path`]), or
/// `None` when it may. Refused are keys that describe the set-up or the state of the run rather than a
/// rule's parameter:
///
/// - the scenario's identity and frame: `name`, `description`, `extends`, `seed`, `start`, `end`, `tick`,
///   `record_every`, `agents`, `population`, `revenue_thresholds_usd`, `calendar.*`, `orgs.agents`,
///   `orgs.population`, and anything under `events`;
/// - traits drawn into each agent at set-up: `orgs.verticals.*.share`, `segments.*.share`,
///   `segments.*.employed_share`, `segments.*.wtp_median_usd`, `segments.*.wtp_sigma`,
///   `segments.*.taste_spread`;
/// - a whole firm (`firms`, `firms[i]`) and a firm's identity, dates and state: `id`, `name`, `kind`,
///   `launch`, `chat_launch`, `cash_usd` (use a funding event), `free_tier` and the prices (use a price
///   event), `self_hostable` (use a release or strategy event), `tiers` (any key under it) and
///   `compute.initial_gpus` and `compute.gpu_cost_usd_per_day` (other `compute.*` keys are allowed),
///   `model.*` and `strategy.training` (the other `strategy.*` switches may change by date);
/// - `decisions.start`;
/// - a table that holds any of these (`segments.consumer`, `orgs`, `firms[i].compute`): set its other keys
///   one at a time.
///
/// The reason is a clause to follow "a set event cannot change `key`: ".
pub fn set_refusal(segs: &[Seg]) -> Option<&'static str> {
    if matches!(segs, [Seg::Key(f)] | [Seg::Key(f), Seg::Index(_)] if f == "firms") {
        return Some(WHOLE_FIRM);
    }
    let prefix_matches = |pattern: &[&str]| {
        let n = pattern.len().min(segs.len());
        pattern[..n].iter().zip(&segs[..n]).all(|(p, s)| seg_matches(p, s))
    };
    // The key itself or a table above it is refused…
    if let Some((_, why)) = REFUSED.iter().find(|(p, _)| p.len() <= segs.len() && prefix_matches(p)) {
        return Some(why);
    }
    // …or the key is a table that holds a refused key.
    REFUSED.iter().any(|(p, _)| prefix_matches(p)).then_some(HOLDS)
}

fn problem(i: usize, field: &str, message: String) -> Problem {
    Problem { file: None, path: Some(format!("events[{i}].{field}")), line: None, message }
}

/// The enabled set events (index in `file.events`, canonical key path), and a problem for each key that
/// does not resolve or is refused. Set events without a key are left to [`validate::validate`].
fn resolve_keys(file: &ScenarioFile) -> (Vec<(usize, Vec<Seg>)>, Vec<Problem>) {
    let (mut sets, mut problems) = (Vec::new(), Vec::new());
    if !file.events.iter().any(|e| e.kind == EventKind::Set && e.enabled) {
        return (sets, problems);
    }
    let Ok(root) = toml::Value::try_from(file) else { return (sets, problems) };
    for (i, e) in file.events.iter().enumerate() {
        if e.kind != EventKind::Set || !e.enabled {
            continue;
        }
        let Some(key) = &e.key else { continue };
        match source::resolve_set_path(&root, key.trim()) {
            Some(segs) if !segs.is_empty() => match set_refusal(&segs) {
                Some(why) => problems.push(problem(
                    i,
                    "key",
                    format!("a set event cannot change `{}`: {why}", validate::shorten(key.trim())),
                )),
                None => sets.push((i, segs)),
            },
            _ => problems.push(problem(
                i,
                "key",
                "no such key in the scenario (see `llm-market validate` for every key)".into(),
            )),
        }
    }
    (sets, problems)
}

/// The enabled set event that changes the key at canonical `segs` (the same key, a table holding it or a key
/// inside it), if any: its id and date. A value given for such a key (`--set`, a sweep's parameter) holds
/// only until that date, which is never what a researcher means, so the command line refuses it.
pub fn shadowing_event(file: &ScenarioFile, segs: &[Seg]) -> Option<(String, chrono::NaiveDate)> {
    if matches!(segs.first(), Some(Seg::Key(k)) if k == "events") {
        return None;
    }
    let (sets, _) = resolve_keys(file);
    sets.iter()
        // An event dated after the end never fires, so it overrides nothing.
        .filter(|(i, _)| file.events[*i].date <= file.end)
        .filter(|(_, key)| key.starts_with(segs) || segs.starts_with(key))
        .map(|(i, _)| (file.events[*i].id.clone(), file.events[*i].date.0))
        .next()
}

/// Problems with the keys of the enabled set events (unknown or refused), for a scenario that did not
/// pass [`validate::validate`] (their values are checked by [`epochs`] once it does).
pub fn key_problems(file: &ScenarioFile) -> Vec<Problem> {
    resolve_keys(file).1
}

/// The event of `group` (indices and key paths of set events of one date) that a problem at `path` is
/// blamed on: the last one whose key is `path`, above it or under it; else the last of the group.
fn blame(group: &[(usize, Vec<Seg>)], path: Option<&[Seg]>) -> usize {
    let related = |key: &[Seg]| path.is_some_and(|p| p.starts_with(key) || key.starts_with(p));
    group.iter().rev().find(|(_, key)| related(key)).unwrap_or(&group[group.len() - 1]).0
}

/// The epochs of a scenario that passed [`validate::validate`]: epoch 0 is the scenario as written (from
/// `start`); then one per distinct date of the enabled set events, in date order, each the previous epoch
/// with that date's events applied in file order. Each epoch is deserialised and validated; a problem is
/// reported under `events[i].value` of the set event it concerns, prefixed by its key path (e.g.
/// `events[3].value: awareness.p_base_per_month: is a probability and must lie in [0, 1], got 2`). A date
/// whose epoch fails is left out, so that later dates are checked against the last valid epoch and each
/// problem is reported once; so is an event whose key is unknown or refused (reported under `events[i].key`).
pub fn epochs(file: &ScenarioFile) -> Result<Vec<Epoch>, Vec<Problem>> {
    // Events with a bad key are reported and left out; the values of the others are still checked.
    let (mut sets, mut problems) = resolve_keys(file);
    let mut out = vec![Epoch::new(file.start.0, file.clone())];
    // A stable sort: events of the same date stay in file order.
    sets.sort_by_key(|(i, _)| file.events[*i].date);
    let mut current = toml::Value::try_from(file).expect("a scenario serialises");
    for group in sets.chunk_by(|(a, _), (b, _)| file.events[*a].date == file.events[*b].date) {
        let from = file.events[group[0].0].date.0;
        let mut next = current.clone();
        let mut applied = true;
        for (i, _) in group {
            let value = file.events[*i].value.clone().expect("validate requires a set event's value");
            // Resolved again on the epoch being built: an earlier set event may have shortened an array.
            let key = file.events[*i].key.as_deref().unwrap_or_default().trim();
            match source::resolve_set_path(&next, key) {
                Some(segs) if !segs.is_empty() => source::merge_at(&mut next, &segs, value),
                _ => {
                    problems.push(problem(
                        *i,
                        "key",
                        format!(
                            "`{}` does not exist any more once the earlier set events have applied",
                            validate::shorten(key)
                        ),
                    ));
                    applied = false;
                }
            }
        }
        if !applied {
            continue;
        }
        let params = match source::deserialize(next.clone()) {
            Ok(params) => params,
            Err((segs, msg)) => {
                let i = blame(group, Some(&segs));
                problems.push(problem(i, "value", format!("{}: {msg}", format_path(&segs))));
                continue;
            }
        };
        match validate::validate(&params) {
            Ok(_) => {
                out.push(Epoch::new(from, params));
                current = next;
            }
            Err(ps) => {
                for p in ps {
                    let segs = p.path.as_deref().and_then(source::parse_path);
                    let i = blame(group, segs.as_deref());
                    let message = match &p.path {
                        Some(path) => format!("{path}: {}", p.message),
                        None => p.message,
                    };
                    problems.push(problem(i, "value", message));
                }
            }
        }
    }
    if problems.is_empty() { Ok(out) } else { Err(problems) }
}

#[cfg(test)]
mod tests {
    /// A table value is merged into the table it changes: the keys it leaves out keep the scenario's values
    /// (here `raise.enabled`, true for OpenAI in the baseline, false by default).
    #[test]
    fn a_table_value_changes_only_the_keys_it_names() {
        let mut file = crate::config::load(None, &Default::default()).unwrap().params().clone();
        let mut raise = toml::Table::new();
        raise.insert("trigger_runway_months".into(), toml::Value::Float(12.0));
        file.events.push(crate::config::file::EventFile {
            id: "patience".into(),
            date: crate::config::file::DateValue("2024-01-01".parse().unwrap()),
            kind: EventKind::Set,
            key: Some("firms.openai.raise".into()),
            value: Some(toml::Value::Table(raise)),
            ..Default::default()
        });
        let epochs = epochs(&file).unwrap();
        let openai = |e: &Epoch| e.params.firms.iter().find(|f| f.id == "openai").unwrap().raise.clone();
        assert_eq!(openai(&epochs[1]).trigger_runway_months, 12.0);
        assert!(openai(&epochs[1]).enabled, "a key the value leaves out keeps the scenario's value");
        assert_eq!(openai(&epochs[1]).size_months, openai(&epochs[0]).size_months);
    }

    /// A set event whose key an earlier one removed (an array emptied) is a problem, not a panic.
    #[test]
    fn a_key_removed_by_an_earlier_set_event_is_a_problem() {
        let mut file = crate::config::load(None, &Default::default()).unwrap().params().clone();
        let set = |id: &str, date: &str, key: &str, value: toml::Value| crate::config::file::EventFile {
            id: id.into(),
            date: crate::config::file::DateValue(date.parse().unwrap()),
            kind: EventKind::Set,
            key: Some(key.into()),
            value: Some(value),
            ..Default::default()
        };
        file.events.push(set("empty", "2023-06-01", "firms.bard.training", toml::Value::Array(vec![])));
        file.events.push(set("cost", "2024-01-01", "firms.bard.training[0].cost_usd", toml::Value::Float(1e8)));
        let problems = epochs(&file).unwrap_err();
        let n = file.events.len() - 1;
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].path.as_deref(), Some(format!("events[{n}].key").as_str()));
        assert!(problems[0].message.contains("does not exist any more"), "{}", problems[0].message);
    }

    use super::*;
    use crate::config::file::{DateValue, EventFile};
    use crate::config::{Overrides, Scenario, load};
    use chrono::NaiveDate;

    fn baseline() -> ScenarioFile {
        load(None, &Overrides::default()).unwrap().params().clone()
    }

    fn date(s: &str) -> DateValue {
        DateValue(s.parse::<NaiveDate>().unwrap())
    }

    fn set_event(id: &str, on: &str, key: &str, value: toml::Value) -> EventFile {
        EventFile {
            id: id.into(),
            date: date(on),
            kind: EventKind::Set,
            key: Some(key.into()),
            value: Some(value),
            ..Default::default()
        }
    }

    /// The scenario with `events` appended; the index of the first of them.
    fn with_events(events: Vec<EventFile>) -> (ScenarioFile, usize) {
        let mut s = baseline();
        let first = s.events.len();
        s.events.extend(events);
        (s, first)
    }

    fn problems(s: ScenarioFile) -> Vec<Problem> {
        Scenario::from_file(s, "test").expect_err("the scenario is refused").problems
    }

    fn keys_of(v: &toml::Value, prefix: String, out: &mut Vec<(String, toml::Value)>) {
        match v {
            toml::Value::Table(t) => {
                for (k, x) in t {
                    keys_of(x, if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") }, out)
                }
            }
            toml::Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    keys_of(x, format!("{prefix}[{i}]"), out)
                }
            }
            _ => out.push((prefix, v.clone())),
        }
    }

    /// The leaf keys where two scenarios differ.
    fn differences(a: &ScenarioFile, b: &ScenarioFile) -> Vec<String> {
        let (mut ka, mut kb) = (Vec::new(), Vec::new());
        keys_of(&toml::Value::try_from(a).unwrap(), String::new(), &mut ka);
        keys_of(&toml::Value::try_from(b).unwrap(), String::new(), &mut kb);
        assert_eq!(ka.len(), kb.len());
        ka.into_iter().zip(kb).filter(|(x, y)| x != y).map(|(x, _)| x.0).collect()
    }

    #[test]
    fn two_dates_make_three_epochs() {
        let (s, _) = with_events(vec![
            // Out of date order in the file: epochs are in date order.
            set_event("later", "2024-06-01", "firms.openai.brand", toml::Value::Float(0.25)),
            set_event("earlier", "2023-06-01", "awareness.p_base_per_month", toml::Value::Float(0.02)),
            set_event("disabled", "2023-09-01", "orgs.loyalty", toml::Value::Float(0.5)),
        ]);
        let mut s = s;
        s.events.last_mut().unwrap().enabled = false;
        let scenario = Scenario::from_file(s.clone(), "test").unwrap();
        let ep = scenario.epochs();
        assert_eq!(ep.len(), 3, "{:?}", ep.iter().map(|e| e.from).collect::<Vec<_>>());
        assert_eq!(ep[0].from, s.start.0);
        assert_eq!(ep[1].from, date("2023-06-01").0);
        assert_eq!(ep[2].from, date("2024-06-01").0);
        assert_eq!(differences(&ep[0].params, scenario.params()), Vec::<String>::new());
        assert_eq!(differences(&ep[0].params, &ep[1].params), vec!["awareness.p_base_per_month".to_string()]);
        let openai = s.firms.iter().position(|f| f.id == "openai").unwrap();
        assert_eq!(differences(&ep[1].params, &ep[2].params), vec![format!("firms[{openai}].brand")]);
        assert_eq!(ep[2].params.awareness.p_base_per_month, 0.02);
        assert_eq!(ep[2].params.firms[openai].brand, 0.25);
        // A scenario without set events has one epoch, the scenario itself.
        let plain = Scenario::from_file(baseline(), "test").unwrap();
        assert_eq!(plain.epochs().len(), 1);
    }

    #[test]
    fn same_date_sets_apply_in_file_order() {
        let (s, _) = with_events(vec![
            set_event("a", "2023-06-01", "orgs.loyalty", toml::Value::Float(0.5)),
            set_event("b", "2023-06-01", "orgs.loyalty", toml::Value::Integer(2)),
        ]);
        let scenario = Scenario::from_file(s, "test").unwrap();
        assert_eq!(scenario.epochs().len(), 2);
        assert_eq!(scenario.epochs()[1].params.orgs.loyalty, 2.0);
    }

    #[test]
    fn unknown_and_refused_keys_are_named() {
        let cases = [
            ("awareness.no_such_thing", "no such key in the scenario (see `llm-market validate` for every key)"),
            ("firms.nobody.brand", "no such key in the scenario"),
            ("seed", "a set event cannot change `seed`: the seed fixes every random stream"),
            ("firms.openai.cash_usd", "use a funding event"),
            ("firms.openai.sub_price_usd_per_month", "use a price event"),
            ("firms.openai", "a firm cannot be added or replaced"),
            ("firms", "a firm cannot be added or replaced"),
            ("segments.consumer.share", "drawn into each agent at set-up"),
            ("segments.consumer", "a table that holds values fixed at set-up"),
            ("calendar.summer_start", "the academic calendar is fixed"),
            ("events[0].date", "events cannot change events"),
            ("orgs.verticals.tech.share", "drawn into each agent"),
        ];
        for (key, want) in cases {
            let (s, i) = with_events(vec![set_event("x", "2023-06-01", key, toml::Value::Float(1.0))]);
            let ps = problems(s);
            assert_eq!(ps.len(), 1, "{key}: {ps:?}");
            assert_eq!(ps[0].path.as_deref(), Some(format!("events[{i}].key").as_str()), "{key}");
            assert!(ps[0].message.contains(want), "{key}: {}", ps[0].message);
        }
        // Allowed keys, including a whole table without set-up values.
        for key in ["segments.consumer.loyalty", "firms.openai.brand", "firms[0].pricing.markup", "awareness"] {
            assert!(set_refusal(&source::parse_path(key).unwrap()).is_none(), "{key}");
        }
        let refused = |k: &str| set_refusal(&source::parse_path(k).unwrap());
        assert_eq!(refused("firms[0].tiers.pro.price"), Some(TIERS));
        assert_eq!(refused("firms[0].compute.initial_gpus"), Some(GPUS));
        assert_eq!(refused("firms[0].compute.gpu_cost_usd_per_day"), Some(GPU_PRICE));
        assert_eq!(refused("firms[0].compute"), Some(HOLDS));
        assert_eq!(refused("firms[0].compute.usable_share"), None);
    }

    #[test]
    fn values_are_checked_like_set() {
        let cases = [
            (
                "awareness.p_base_per_month",
                toml::Value::Float(2.0),
                "awareness.p_base_per_month: is a probability and must lie in [0, 1], got 2",
            ),
            ("segments.consumer.loyalty", toml::Value::String("x".into()), "segments.consumer.loyalty: invalid type"),
        ];
        for (key, value, want) in cases {
            let (s, i) = with_events(vec![
                set_event("ok", "2023-03-01", "orgs.loyalty", toml::Value::Float(0.5)),
                set_event("bad", "2023-06-01", key, value),
            ]);
            let ps = problems(s);
            assert_eq!(ps.len(), 1, "{key}: {ps:?}");
            assert_eq!(ps[0].path.as_deref(), Some(format!("events[{}].value", i + 1).as_str()), "{key}");
            assert!(ps[0].message.starts_with(want), "{key}: {}", ps[0].message);
        }
    }

    #[test]
    fn bad_keys_and_bad_values_are_reported_together() {
        let (s, i) = with_events(vec![
            set_event("bad-key", "2023-06-01", "seed", toml::Value::Integer(3)),
            set_event("bad-value", "2023-06-01", "orgs.loyalty", toml::Value::Boolean(true)),
        ]);
        let ps = problems(s);
        let paths: Vec<&str> = ps.iter().filter_map(|p| p.path.as_deref()).collect();
        assert_eq!(paths, [format!("events[{i}].key"), format!("events[{}].value", i + 1)], "{ps:?}");
    }

    #[test]
    fn set_events_need_key_and_value_and_no_firm() {
        let (mut s, i) = with_events(vec![set_event("x", "2023-06-01", "orgs.loyalty", toml::Value::Float(0.5))]);
        s.events[i].key = None;
        s.events[i].value = None;
        s.events[i].firm = Some("openai".into());
        let ps = problems(s);
        let paths: Vec<&str> = ps.iter().filter_map(|p| p.path.as_deref()).collect();
        for field in ["key", "value", "firm"] {
            assert!(paths.contains(&format!("events[{i}].{field}").as_str()), "{field}: {ps:?}");
        }
        // Dated before the start: the date rule of every event.
        let (mut s, i) = with_events(vec![set_event("x", "2023-06-01", "orgs.loyalty", toml::Value::Float(0.5))]);
        s.events[i].date = date("2000-01-01");
        let ps = problems(s);
        assert_eq!(ps[0].path.as_deref(), Some(format!("events[{i}].date").as_str()), "{ps:?}");
        // Only a set event takes key and value.
        let (mut s, i) = with_events(vec![EventFile {
            id: "leak".into(),
            date: date("2023-06-01"),
            kind: EventKind::Leak,
            key: Some("orgs.loyalty".into()),
            ..Default::default()
        }]);
        s.events[i].strength = Some(1.0);
        let ps = problems(s);
        assert_eq!(ps.len(), 1, "{ps:?}");
        assert_eq!(ps[0].path.as_deref(), Some(format!("events[{i}].key").as_str()));
    }

    #[test]
    fn problems_in_files_have_lines_and_the_resolved_toml_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/baseline.toml");
        let path = dir.path().join("s.toml");
        let body = |value: &str| {
            format!(
                "extends = {:?}\n\n[[events]]\nid = \"cheap-ads\"\ndate = 2023-06-01\nkind = \"set\"\n\
                 key = \"awareness.p_base_per_month\"\nvalue = {value}\n\n[[events]]\nid = \"brand\"\n\
                 date = 2024-01-01\nkind = \"set\"\nkey = \"firms.openai.launch_buzz\"\nvalue = 0.5\n",
                base.to_str().unwrap()
            )
        };
        std::fs::write(&path, body("2.0")).unwrap();
        let err = load(Some(&path), &Overrides::default()).unwrap_err();
        assert_eq!(err.problems.len(), 1, "{err}");
        let text = err.problems[0].to_string();
        let want = format!(
            "{}:8: events[{}].value: awareness.p_base_per_month: is a probability",
            path.display(),
            baseline().events.len()
        );
        assert!(text.starts_with(&want), "{text}\nwanted {want}");

        std::fs::write(&path, body("0.02")).unwrap();
        let s = load(Some(&path), &Overrides::default()).unwrap();
        assert_eq!(s.epochs().len(), 3);
        let again = dir.path().join("resolved.toml");
        std::fs::write(&again, s.to_toml()).unwrap();
        let t = load(Some(&again), &Overrides::default()).unwrap();
        assert_eq!(t.to_toml(), s.to_toml());
        assert_eq!(t.epochs().len(), 3);
        assert_eq!(t.epochs()[1].params.awareness.p_base_per_month, 0.02);
    }

    #[test]
    fn any_toml_value_round_trips() {
        let mut table = toml::Table::new();
        table.insert("tau_months".into(), toml::Value::Float(6.0));
        let (s, _) = with_events(vec![
            set_event("a", "2023-06-01", "firms.llama.catch_up", toml::Value::Table(table)),
            set_event("b", "2023-06-01", "orgs.loyalty", toml::Value::Integer(1)),
            set_event("c", "2023-07-01", "firms.openai.chat_app", toml::Value::Boolean(true)),
            set_event(
                "d",
                "2023-08-01",
                "firms.openai.training",
                source::parse_set_value("[{ start = 2024-01-01, months = 6.0, cost_usd = 1e8 }]"),
            ),
        ]);
        let s = Scenario::from_file(s, "test").unwrap();
        let back: ScenarioFile = toml::from_str(&s.to_toml()).unwrap();
        let again = Scenario::from_file(back, "test").unwrap();
        assert_eq!(again.to_toml(), s.to_toml());
        assert_eq!(again.epochs().len(), 4);
        assert_eq!(again.epochs()[3].params.firms[0].training.len(), 1);
    }
}
