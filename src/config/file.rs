//! Serde types that mirror a scenario file one to one (`deny_unknown_fields`); defaults are the baseline's.
//!
//! These types are plain data: checking that values make sense is `validate.rs`'s job, which turns them
//! into a [`super::Scenario`]. Global defaults equal the baseline's; per-segment, per-vertical and per-firm
//! defaults are generic starting points — `configs/baseline.toml` sets every key explicitly, with its
//! source, and new scenarios should `extends` it.

use crate::model::calendar::Period;
use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A calendar date; written in TOML as a bare date (`2023-01-23`) or a string (`"2023-01-23"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DateValue(pub NaiveDate);

impl Default for DateValue {
    fn default() -> Self {
        DateValue(NaiveDate::from_ymd_opt(2022, 11, 30).unwrap())
    }
}

impl Serialize for DateValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let d = self.0;
        let dt = toml::value::Datetime {
            date: Some(toml::value::Date { year: d.year() as u16, month: d.month() as u8, day: d.day() as u8 }),
            time: None,
            offset: None,
        };
        dt.serialize(s)
    }
}

impl<'de> Deserialize<'de> for DateValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let v = toml::Value::deserialize(d)?;
        let parsed = match &v {
            toml::Value::Datetime(dt) if dt.time.is_none() && dt.offset.is_none() => {
                dt.date.and_then(|x| NaiveDate::from_ymd_opt(x.year as i32, x.month as u32, x.day as u32))
            }
            toml::Value::String(s) => s.parse::<NaiveDate>().ok(),
            _ => None,
        };
        parsed.map(DateValue).ok_or_else(|| {
            D::Error::custom(format!(
                "expected a date like 2023-01-23, got {}",
                super::validate::shorten(&v.to_string())
            ))
        })
    }
}

/// The kind of a firm (docs/ODD.md §2.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FirmKind {
    #[default]
    FrontierLab,
    BigTech,
    OpenSource,
}

impl FirmKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FirmKind::FrontierLab => "frontier_lab",
            FirmKind::BigTech => "big_tech",
            FirmKind::OpenSource => "open_source",
        }
    }
}

/// Where word of mouth comes from in the awareness diffusion.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WordOfMouth {
    /// Current users of the firm talk about it (default).
    #[default]
    Users,
    /// Everyone aware of the firm talks about it (the textbook Bass form, used for the docking test).
    Aware,
}

/// A scenario file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScenarioFile {
    /// Another scenario file this one changes (path relative to this file); resolved away on load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extends: Option<String>,
    pub name: String,
    pub description: String,
    pub seed: u64,
    pub start: DateValue,
    pub end: DateValue,
    pub tick: Period,
    /// Recording interval; defaults to the tick length.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_every: Option<Period>,
    pub agents: u64,
    pub population: f64,
    pub elo_reference: f64,
    pub revenue_thresholds_usd: Vec<f64>,
    pub calendar: CalendarFile,
    pub awareness: AwarenessFile,
    pub subscriptions: SubscriptionsFile,
    pub segments: SegmentsFile,
    pub orgs: OrgsFile,
    /// When and how firms decide (docs/ODD.md §7.13); each firm's `strategy` says which decisions it makes.
    pub decisions: DecisionsFile,
    pub firms: Vec<FirmFile>,
    pub events: Vec<EventFile>,
}

impl Default for ScenarioFile {
    fn default() -> Self {
        ScenarioFile {
            extends: None,
            name: "scenario".into(),
            description: String::new(),
            seed: 1,
            start: DateValue::default(),
            end: DateValue(NaiveDate::from_ymd_opt(2025, 12, 31).unwrap()),
            tick: Period::Day,
            record_every: None,
            agents: 1_000_000,
            population: 2.0e9,
            elo_reference: 1000.0,
            revenue_thresholds_usd: vec![1.0e8, 2.0e8, 1.0e9],
            calendar: CalendarFile::default(),
            awareness: AwarenessFile::default(),
            subscriptions: SubscriptionsFile::default(),
            segments: SegmentsFile::default(),
            orgs: OrgsFile::default(),
            decisions: DecisionsFile::default(),
            firms: Vec::new(),
            events: Vec::new(),
        }
    }
}

/// The academic calendar students follow.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CalendarFile {
    /// First day of the summer break, "MM-DD".
    pub summer_start: String,
    /// Last day of the summer break, "MM-DD".
    pub summer_end: String,
}

impl Default for CalendarFile {
    fn default() -> Self {
        CalendarFile { summer_start: "06-15".into(), summer_end: "08-31".into() }
    }
}

/// Agent-based Bass diffusion of awareness.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AwarenessFile {
    pub p_base_per_month: f64,
    pub launch_p_per_month: f64,
    pub launch_decay_months: f64,
    pub word_of_mouth_per_month: f64,
    pub word_of_mouth_from: WordOfMouth,
    /// A user who hears of a new chatbot reconsiders its choice at once (trial).
    pub reconsider_on_awareness: bool,
    /// Extra utility of a chatbot at the moment the user first hears of it (curiosity, hype).
    pub trial_utility: f64,
}

impl Default for AwarenessFile {
    fn default() -> Self {
        AwarenessFile {
            p_base_per_month: 0.002,
            launch_p_per_month: 0.04,
            launch_decay_months: 4.0,
            word_of_mouth_per_month: 3.0,
            word_of_mouth_from: WordOfMouth::Users,
            reconsider_on_awareness: true,
            trial_utility: 1.5,
        }
    }
}

/// Free-to-paid conversion and churn.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SubscriptionsFile {
    /// Monthly conversion probability of an active free user whose willingness to pay covers the price.
    pub conversion_per_month: f64,
    /// Relative increase of conversion per 100 Elo of paid-tier quality uplift.
    pub uplift_per_100_elo: f64,
    pub churn_month1: f64,
    pub churn_months_2_6: f64,
    pub churn_after: f64,
}

impl Default for SubscriptionsFile {
    fn default() -> Self {
        SubscriptionsFile {
            conversion_per_month: 0.04,
            uplift_per_100_elo: 0.5,
            churn_month1: 0.15,
            churn_months_2_6: 0.06,
            churn_after: 0.03,
        }
    }
}

/// One user segment.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SegmentFile {
    pub share: f64,
    pub reconsider_per_month: f64,
    pub loyalty: f64,
    pub quality_weight: f64,
    pub price_weight_per_usd: f64,
    pub outside_utility: f64,
    pub taste_spread: f64,
    pub wtp_median_usd: f64,
    pub wtp_sigma: f64,
    pub queries_per_active_day: f64,
    pub active_days_per_month: f64,
    pub visits_per_active_day: f64,
    pub paid_usage_multiplier: f64,
    pub employed_share: f64,
    pub summer_activity: f64,
}

impl Default for SegmentFile {
    fn default() -> Self {
        SegmentFile {
            share: 0.25,
            reconsider_per_month: 0.10,
            loyalty: 0.6,
            quality_weight: 0.7,
            price_weight_per_usd: 0.15,
            outside_utility: 0.0,
            taste_spread: 0.5,
            wtp_median_usd: 5.0,
            wtp_sigma: 0.85,
            queries_per_active_day: 5.5,
            active_days_per_month: 6.0,
            visits_per_active_day: 1.1,
            paid_usage_multiplier: 3.0,
            employed_share: 0.0,
            summer_activity: 1.0,
        }
    }
}

/// The four user segments, by name.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SegmentsFile {
    pub consumer: SegmentFile,
    pub student: SegmentFile,
    pub professional: SegmentFile,
    pub developer: SegmentFile,
}

impl SegmentsFile {
    pub fn as_array(&self) -> [&SegmentFile; 4] {
        [&self.consumer, &self.student, &self.professional, &self.developer]
    }
}

/// A value per segment.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SegmentValues {
    pub consumer: f64,
    pub student: f64,
    pub professional: f64,
    pub developer: f64,
}

impl Default for SegmentValues {
    fn default() -> Self {
        SegmentValues { consumer: 1.0, student: 1.0, professional: 1.0, developer: 1.0 }
    }
}

impl SegmentValues {
    pub fn as_array(&self) -> [f64; 4] {
        [self.consumer, self.student, self.professional, self.developer]
    }
}

/// Organisations (enterprises and SMEs) adopting generative-AI APIs.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OrgsFile {
    pub agents: u64,
    pub population: f64,
    pub reconsider_per_month: f64,
    pub loyalty: f64,
    pub quality_weight: f64,
    /// Utility lost per unit of ln(API price in USD per million tokens).
    pub log_price_weight: f64,
    pub pilot_to_production_per_month: f64,
    pub tokens_per_day_pilot_m: f64,
    pub tokens_per_day_production_m: f64,
    pub token_growth_per_year: f64,
    pub ban_hazard_per_month: f64,
    pub ban_pressure_decay_months: f64,
    pub ban_lift_per_month: f64,
    pub shadow_use: f64,
    pub enterprise_adoption_per_month: f64,
    pub seat_take_up: f64,
    pub self_host_markup: f64,
    /// Share of organisations' API tokens that are output tokens (prices and costs are blended with it).
    pub output_token_share: f64,
    /// Top-tier queries per enterprise seat per day.
    pub seat_queries_per_day: f64,
    /// How many times likelier an adopted organisation that bans consumer chat is to buy enterprise seats.
    pub ban_contract_factor: f64,
    pub verticals: VerticalsFile,
}

impl Default for OrgsFile {
    fn default() -> Self {
        OrgsFile {
            agents: 20_000,
            population: 1.0e6,
            reconsider_per_month: 0.07,
            loyalty: 1.0,
            quality_weight: 1.0,
            log_price_weight: 0.8,
            pilot_to_production_per_month: 0.07,
            tokens_per_day_pilot_m: 0.5,
            tokens_per_day_production_m: 5.0,
            token_growth_per_year: 2.0,
            ban_hazard_per_month: 0.05,
            ban_pressure_decay_months: 6.0,
            ban_lift_per_month: 0.10,
            shadow_use: 0.4,
            enterprise_adoption_per_month: 0.01,
            seat_take_up: 0.1,
            self_host_markup: 2.0,
            output_token_share: 0.25,
            seat_queries_per_day: 5.0,
            ban_contract_factor: 2.0,
            verticals: VerticalsFile::default(),
        }
    }
}

/// One vertical (industry) of organisations.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VerticalFile {
    pub share: f64,
    pub adoption_p_per_month: f64,
    pub adoption_q_per_month: f64,
    pub seats: f64,
    pub tokens_factor: f64,
    pub ban_factor: f64,
    pub self_host_affinity: f64,
    /// Share of the vertical's API tokens sent to the provider's best tier (the rest to its first tier).
    pub top_tier_share: f64,
}

impl Default for VerticalFile {
    fn default() -> Self {
        VerticalFile {
            share: 0.2,
            adoption_p_per_month: 0.003,
            adoption_q_per_month: 0.04,
            seats: 50.0,
            tokens_factor: 1.0,
            ban_factor: 1.0,
            self_host_affinity: 0.0,
            top_tier_share: 0.2,
        }
    }
}

/// The five verticals, by name.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VerticalsFile {
    pub healthcare: VerticalFile,
    pub finance: VerticalFile,
    pub education: VerticalFile,
    pub tech: VerticalFile,
    pub other: VerticalFile,
}

impl VerticalsFile {
    pub fn as_array(&self) -> [&VerticalFile; 5] {
        [&self.healthcare, &self.finance, &self.education, &self.tech, &self.other]
    }
}

/// The parameters of the firms' decisions (docs/ODD.md §7.13), shared by every firm that decides.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecisionsFile {
    /// Firms decide from this date; before it everything follows the scenario's history (the calibration
    /// period).
    pub start: DateValue,
    /// Months between two reviews of a firm's training, capacity, prices and cuts.
    pub period_months: f64,
    /// R&D race: Elo per tenfold effective training compute.
    pub elo_per_decade: f64,
    /// Months in which algorithmic progress halves the compute a capability needs.
    pub efficiency_halving_months: f64,
    /// Training FLOP per US dollar on `start`, and the years in which it doubles.
    pub flop_per_usd: f64,
    pub flop_per_usd_doubling_years: f64,
    /// The frontier's gain firms expect, Elo per year (what a run must match to keep up).
    pub frontier_growth_elo_per_year: f64,
    /// Elo a firm aims to be ahead of the expected frontier (0: level with it).
    pub lead_elo: f64,
    /// A training run's length, months.
    pub run_months: f64,
    /// Standard deviation of a run's Elo gain around the scaling relation.
    pub gain_sd_elo: f64,
    /// Share of funds above the runway floor a firm may put into one run, and the floor in months of burn.
    pub max_training_share: f64,
    pub runway_floor_months: f64,
    /// Smallest run worth starting, USD, and the smallest expected Elo gain worth a run.
    pub min_run_usd: f64,
    pub min_gain_elo: f64,
    /// Runway months below which a firm cuts, in order: training, capacity growth, free tier, staff growth.
    pub cut_runway_months: [f64; 4],
    /// A cut is undone when the runway is back above its threshold times this.
    pub cut_recover: f64,
    /// Share of free-tier usage a firm limits when it cuts free-tier generosity.
    pub free_limit_share: f64,
    /// Prices: share of the gap to the target closed per review; quality band of comparable rivals (Elo);
    /// floor and ceiling as multiples of unit serving cost; subscription price bounds, USD per month.
    pub price_adjust: f64,
    pub match_band_elo: f64,
    pub min_markup: f64,
    pub max_markup: f64,
    pub sub_price_min_usd: f64,
    pub sub_price_max_usd: f64,
    /// Funding: valuation = TTM revenue × multiple × sentiment × growth factor; a round sells at most
    /// `dilution_cap` of it.
    pub revenue_multiple: f64,
    pub dilution_cap: f64,
    /// Investor sentiment: initial value, bounds, time constant (months), the sector's annual revenue growth
    /// that is neutral, and the sentiment per unit of growth above it.
    pub sentiment_initial: f64,
    pub sentiment_min: f64,
    pub sentiment_max: f64,
    pub sentiment_tau_months: f64,
    pub sentiment_neutral_growth: f64,
    pub sentiment_per_growth: f64,
    /// Runway (months) below which a firm whose funding is decided seeks a round (the scripted rule keeps each
    /// firm's `raise.trigger_runway_months`).
    pub raise_runway_months: f64,
    /// A firm that runs out of cash with at least this many users is acquired rather than bankrupt.
    pub acquisition_min_users: f64,
    /// A parent keeps funding a firm (whose funding is decided) only while its share of chatbot users stays
    /// at or above this, or has been below it for less than the firm's `parent_patience_months`.
    pub parent_min_user_share: f64,
}

impl Default for DecisionsFile {
    fn default() -> Self {
        DecisionsFile {
            start: DateValue(NaiveDate::from_ymd_opt(2023, 9, 1).unwrap()),
            period_months: 1.0,
            elo_per_decade: 75.0,
            efficiency_halving_months: 16.0,
            flop_per_usd: 2.15e17,
            flop_per_usd_doubling_years: 2.5,
            frontier_growth_elo_per_year: 100.0,
            lead_elo: 0.0,
            run_months: 6.0,
            gain_sd_elo: 15.0,
            max_training_share: 0.25,
            runway_floor_months: 12.0,
            min_run_usd: 1.0e6,
            min_gain_elo: 10.0,
            cut_runway_months: [18.0, 12.0, 9.0, 6.0],
            cut_recover: 1.25,
            free_limit_share: 0.5,
            price_adjust: 0.5,
            match_band_elo: 50.0,
            min_markup: 1.2,
            max_markup: 10.0,
            sub_price_min_usd: 5.0,
            sub_price_max_usd: 40.0,
            revenue_multiple: 25.0,
            dilution_cap: 0.25,
            sentiment_initial: 1.0,
            sentiment_min: 0.3,
            sentiment_max: 1.5,
            sentiment_tau_months: 6.0,
            sentiment_neutral_growth: 1.0,
            sentiment_per_growth: 0.25,
            raise_runway_months: 18.0,
            acquisition_min_users: 1.0e6,
            parent_min_user_share: 0.02,
        }
    }
}

/// Whether a decision follows the scenario's script (events, trends, the issue-12 rules) or the firm's
/// own rule from `decisions.start`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Scripted,
    Decided,
}

/// Which of a firm's decisions are its own (docs/ODD.md §7.13); each can be switched to isolate a mechanism.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StrategyFile {
    /// Training runs (the R&D race) instead of scripted releases, programmes and quality trends.
    pub training: Mode,
    /// Capacity orders reviewed each period, bounded by finances and cuts.
    pub capacity: Mode,
    /// API and subscription prices that respond to rivals and costs.
    pub prices: Mode,
    /// Cost cutting when the runway is short.
    pub cuts: Mode,
    /// Valuation-based rounds instead of the runway-triggered raise rule; acquisition or bankruptcy on exit.
    pub funding: Mode,
}

impl StrategyFile {
    /// Whether any decision is the firm's own.
    pub fn any(&self) -> bool {
        [self.training, self.capacity, self.prices, self.cuts, self.funding].contains(&Mode::Decided)
    }
}

/// The firm's last model before it decides: its training compute and date (the R&D race starts there).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelComputeFile {
    pub log10_flop: f64,
    pub trained: DateValue,
}

impl Default for ModelComputeFile {
    fn default() -> Self {
        ModelComputeFile { log10_flop: 24.0, trained: DateValue(NaiveDate::from_ymd_opt(2023, 3, 1).unwrap()) }
    }
}

/// Open-model quality closing the gap to the best frontier model.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CatchUpFile {
    pub gap0_elo: f64,
    pub tau_months: f64,
}

impl Default for CatchUpFile {
    fn default() -> Self {
        CatchUpFile { gap0_elo: 200.0, tau_months: 15.0 }
    }
}

/// Runway-triggered fund-raising.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RaiseFile {
    pub enabled: bool,
    pub trigger_runway_months: f64,
    pub size_months: f64,
    pub success_base: f64,
    pub success_per_growth: f64,
    pub cooldown_months: f64,
    pub acquihire_probability: f64,
    /// Share of a valuation-based round paid as compute credits (a strategic investor such as a cloud
    /// provider), spent on the compute bill before cash.
    pub compute_share: f64,
}

impl Default for RaiseFile {
    fn default() -> Self {
        RaiseFile {
            enabled: false,
            trigger_runway_months: 9.0,
            size_months: 18.0,
            success_base: 0.5,
            success_per_growth: 0.5,
            cooldown_months: 6.0,
            acquihire_probability: 0.5,
            compute_share: 0.0,
        }
    }
}

/// Simple firm pricing rules (off by default).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PricingFile {
    pub api_tracks_cost: bool,
    pub markup: f64,
    pub lag_months: f64,
    pub floor_usd_per_mtok: f64,
    pub match_undercut_per_month: f64,
}

impl Default for PricingFile {
    fn default() -> Self {
        PricingFile {
            api_tracks_cost: false,
            markup: 1.86,
            lag_months: 3.0,
            floor_usd_per_mtok: 0.1,
            match_undercut_per_month: 0.0,
        }
    }
}

/// A training programme: its cost is spread evenly over its duration.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainingFile {
    pub name: String,
    pub start: DateValue,
    pub months: f64,
    pub cost_usd: f64,
}

/// One model a firm serves (a tier): when it is released, its quality, what it costs to serve, how many
/// tokens a chat query takes, and its API list prices.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TierFile {
    pub name: String,
    /// First day the tier is served.
    pub release: DateValue,
    /// Quality relative to the firm's quality path, Elo: the paid tier's uplift over the free tier.
    pub elo_offset: f64,
    /// Serving cost at release at full utilisation of committed compute, USD per million input tokens.
    pub cost_in_usd_per_mtok: f64,
    /// The same per million output tokens.
    pub cost_out_usd_per_mtok: f64,
    /// Input tokens of one chat query (the prompt and the conversation sent again).
    pub chat_tokens_in_per_query: f64,
    /// Output tokens of one chat query.
    pub chat_tokens_out_per_query: f64,
    /// API list price, USD per million input tokens.
    pub api_price_in_usd_per_mtok: f64,
    /// API list price, USD per million output tokens.
    pub api_price_out_usd_per_mtok: f64,
    /// Paid users' queries on this tier per active day at most (0: no cap); the rest go to the free tier.
    pub message_cap_per_active_day: f64,
}

impl Default for TierFile {
    fn default() -> Self {
        TierFile {
            name: "model".into(),
            release: DateValue::default(),
            elo_offset: 0.0,
            cost_in_usd_per_mtok: 0.6,
            cost_out_usd_per_mtok: 0.8,
            chat_tokens_in_per_query: 4200.0,
            chat_tokens_out_per_query: 1300.0,
            api_price_in_usd_per_mtok: 2.0,
            api_price_out_usd_per_mtok: 2.0,
            message_cap_per_active_day: 0.0,
        }
    }
}

/// A firm's compute: committed GPUs, how it orders more, and what happens when demand exceeds them.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ComputeFile {
    /// GPUs (A100-equivalents) committed at the start of the run, for `commitment_months`.
    pub initial_gpus: f64,
    /// What one committed GPU costs per day, used or not, USD.
    pub gpu_cost_usd_per_day: f64,
    /// Share of committed GPUs that serve inference (the rest: outages, training, reallocation).
    pub usable_share: f64,
    /// Months from an order to its GPUs serving.
    pub lead_time_months: f64,
    /// Months an order commits the firm to pay for its GPUs.
    pub commitment_months: f64,
    /// Spare capacity ordered on top of the demand forecast (0.2: 20%).
    pub headroom: f64,
    /// Share of the money the firm can count on (cash, compute credits, its parent's budget, announced
    /// funding, a year of revenue) that outstanding commitments may take at most.
    pub max_commit_share: f64,
    /// Spot GPUs a firm may rent for peaks, as a share of its usable committed GPUs (0: none).
    pub spot_max_share: f64,
    /// Price of a spot GPU relative to a committed one.
    pub spot_premium: f64,
    /// Utility of the firm's chat app to users when all free demand is rationed ("at capacity"), scaled by
    /// the share rationed.
    pub at_capacity_utility: f64,
    /// Extra monthly churn of paying users when all paid demand is rationed (message caps), scaled by the
    /// share rationed.
    pub capped_churn_per_month: f64,
}

impl Default for ComputeFile {
    fn default() -> Self {
        ComputeFile {
            initial_gpus: 10_000.0,
            gpu_cost_usd_per_day: 24.0,
            usable_share: 1.0,
            lead_time_months: 3.0,
            commitment_months: 12.0,
            headroom: 0.2,
            max_commit_share: 0.5,
            spot_max_share: 0.0,
            spot_premium: 2.0,
            at_capacity_utility: -2.0,
            capped_churn_per_month: 0.2,
        }
    }
}

/// One firm (a chatbot / model family).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FirmFile {
    pub id: String,
    pub name: String,
    pub kind: FirmKind,
    pub launch: DateValue,
    /// When the consumer chat app opens, if later than `launch` (API first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chat_launch: Option<DateValue>,
    pub chat_app: bool,
    pub api: bool,
    pub self_hostable: bool,
    pub quality_elo: f64,
    pub quality_growth_elo_per_year: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catch_up: Option<CatchUpFile>,
    pub free_tier: bool,
    pub sub_price_usd_per_month: f64,
    /// Price of the first tier's API tokens (blended at `orgs.output_token_share`), USD per million tokens: a
    /// state that price and strategy events and the pricing rules move; the other tiers are at their list
    /// prices times the strategy events' `api_price_factor`s.
    pub api_price_usd_per_mtok: f64,
    pub seat_price_usd_per_month: f64,
    pub brand: f64,
    pub bundled: bool,
    pub bundle_utility: f64,
    pub reach_per_month: f64,
    pub awareness_by_segment: SegmentValues,
    pub launch_buzz: f64,
    pub org_trust: f64,
    pub cash_usd: f64,
    pub fixed_cost_usd_per_year: f64,
    pub fixed_cost_growth_per_year: f64,
    /// Serving cost per token falls by this factor per year after each tier's release (hardware and
    /// efficiency: a GPU serves `1 / factor` times more tokens each year).
    pub cost_decline_per_year: f64,
    /// The models the firm serves, from the smallest to the best (docs/ODD.md §7.8).
    pub tiers: Vec<TierFile>,
    /// Compute capacity, contracted ahead (docs/ODD.md §7.9).
    pub compute: ComputeFile,
    pub revenue_share: f64,
    pub parent_budget_usd: f64,
    /// Months a parent funds a firm whose user share stays below `decisions.parent_min_user_share` before it
    /// withdraws what is left of its budget (funding decided; 0: never withdraws).
    pub parent_patience_months: f64,
    pub raise: RaiseFile,
    pub pricing: PricingFile,
    pub training: Vec<TrainingFile>,
    /// Which decisions are the firm's own from `decisions.start` (all scripted unless the file says).
    pub strategy: StrategyFile,
    /// The last model's training compute, where the R&D race starts.
    pub model: ModelComputeFile,
}

impl Default for FirmFile {
    fn default() -> Self {
        FirmFile {
            id: String::new(),
            name: String::new(),
            kind: FirmKind::FrontierLab,
            launch: DateValue::default(),
            chat_launch: None,
            chat_app: true,
            api: true,
            self_hostable: false,
            quality_elo: 1100.0,
            quality_growth_elo_per_year: 100.0,
            catch_up: None,
            free_tier: true,
            sub_price_usd_per_month: 0.0,
            api_price_usd_per_mtok: 2.0,
            seat_price_usd_per_month: 0.0,
            brand: 0.0,
            bundled: false,
            bundle_utility: 0.0,
            reach_per_month: 0.0,
            awareness_by_segment: SegmentValues::default(),
            launch_buzz: 1.0,
            org_trust: 0.0,
            cash_usd: 0.0,
            fixed_cost_usd_per_year: 0.0,
            fixed_cost_growth_per_year: 1.0,
            cost_decline_per_year: 0.5,
            tiers: Vec::new(),
            compute: ComputeFile::default(),
            revenue_share: 0.0,
            parent_budget_usd: 0.0,
            parent_patience_months: 0.0,
            raise: RaiseFile::default(),
            pricing: PricingFile::default(),
            training: Vec::new(),
            strategy: StrategyFile::default(),
            model: ModelComputeFile::default(),
        }
    }
}

/// What a dated event does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// Cash injected into a firm (`amount_usd`).
    #[default]
    Funding,
    /// A model release: quality jumps by `quality_jump_elo`; may open the weights (`self_hostable`).
    Release,
    /// New prices and tiers (`sub_price_usd_per_month`, `api_price_usd_per_mtok`, `seat_price_usd_per_month`,
    /// `free_tier`).
    Price,
    /// A data-leak story that starts a wave of consumer-chat bans (`strength`).
    Leak,
    /// The "open strategy" switch (F15): API price cut (`api_price_factor`), trust of organisations
    /// (`org_trust_add`), open weights (`self_hostable`).
    Strategy,
    /// Changes one parameter (`key`, a key path as for `--set`) to `value` from `date` on; applied at the
    /// first tick on or after its date.
    Set,
}

fn default_true() -> bool {
    true
}

/// A dated event.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventFile {
    pub id: String,
    pub date: DateValue,
    pub kind: EventKind,
    /// Set to false in a scenario that `extends` another to drop this event.
    #[serde(default = "default_true")]
    pub enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub firm: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount_usd: Option<f64>,
    /// Share of a funding event's amount paid as compute credits (e.g. Azure compute), which pay the firm's
    /// compute costs before its cash does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compute_share: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality_jump_elo: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_price_usd_per_month: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_price_usd_per_mtok: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seat_price_usd_per_month: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub free_tier: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strength: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_price_factor: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org_trust_add: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub self_hostable: Option<bool>,
    /// For a `set` event: the key path it changes (`firms.openai.brand`, as for `--set`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// For a `set` event: the new value (any TOML value: number, bool, string, date, array, inline table).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<toml::Value>,
    pub note: String,
}

impl Default for EventFile {
    fn default() -> Self {
        EventFile {
            id: String::new(),
            date: DateValue::default(),
            kind: EventKind::Funding,
            enabled: true,
            firm: None,
            amount_usd: None,
            compute_share: None,
            quality_jump_elo: None,
            sub_price_usd_per_month: None,
            api_price_usd_per_mtok: None,
            seat_price_usd_per_month: None,
            free_tier: None,
            strength: None,
            api_price_factor: None,
            org_trust_add: None,
            self_hostable: None,
            key: None,
            value: None,
            note: String::new(),
        }
    }
}
