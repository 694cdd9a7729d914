//! The validated firm the simulator reads: built by `config` from a checked [`FirmFile`], with dates
//! resolved (`chat_launch` defaults to `launch`), awareness by segment as an array, and tiers and training
//! programmes with plain dates. The simulator never sees the serde wire types of firms; leaf tables of plain
//! numbers that need no resolution (`raise`, `pricing`, `compute`, `catch_up`) are shared with the file.

use super::file::{
    CatchUpFile, ComputeFile, FirmFile, FirmKind, ModelComputeFile, PricingFile, RaiseFile, StrategyFile, TierFile,
    TrainingFile,
};
use chrono::NaiveDate;

/// One model a firm serves (docs/ODD.md §7.8).
#[derive(Clone, Debug, PartialEq)]
pub struct Tier {
    pub name: String,
    pub release: NaiveDate,
    pub elo_offset: f64,
    pub cost_in_usd_per_mtok: f64,
    pub cost_out_usd_per_mtok: f64,
    pub chat_tokens_in_per_query: f64,
    pub chat_tokens_out_per_query: f64,
    pub api_price_in_usd_per_mtok: f64,
    pub api_price_out_usd_per_mtok: f64,
    pub message_cap_per_active_day: f64,
}

impl From<&TierFile> for Tier {
    fn from(t: &TierFile) -> Tier {
        Tier {
            name: t.name.clone(),
            release: t.release.0,
            elo_offset: t.elo_offset,
            cost_in_usd_per_mtok: t.cost_in_usd_per_mtok,
            cost_out_usd_per_mtok: t.cost_out_usd_per_mtok,
            chat_tokens_in_per_query: t.chat_tokens_in_per_query,
            chat_tokens_out_per_query: t.chat_tokens_out_per_query,
            api_price_in_usd_per_mtok: t.api_price_in_usd_per_mtok,
            api_price_out_usd_per_mtok: t.api_price_out_usd_per_mtok,
            message_cap_per_active_day: t.message_cap_per_active_day,
        }
    }
}

/// A training programme: its cost spread evenly from `start` over `months`.
#[derive(Clone, Debug, PartialEq)]
pub struct Training {
    pub name: String,
    pub start: NaiveDate,
    pub months: f64,
    pub cost_usd: f64,
}

impl From<&TrainingFile> for Training {
    fn from(t: &TrainingFile) -> Training {
        Training { name: t.name.clone(), start: t.start.0, months: t.months, cost_usd: t.cost_usd }
    }
}

/// A firm as the simulator reads it (docs/ODD.md §2.1; the keys of `configs/baseline.toml`).
#[derive(Clone, Debug)]
pub struct Firm {
    pub id: String,
    pub name: String,
    pub kind: FirmKind,
    pub launch: NaiveDate,
    /// When the consumer chat app opens (the launch date unless the file says later).
    pub chat_launch: NaiveDate,
    pub chat_app: bool,
    pub api: bool,
    pub self_hostable: bool,
    pub quality_elo: f64,
    pub quality_growth_elo_per_year: f64,
    pub catch_up: Option<CatchUpFile>,
    pub free_tier: bool,
    pub sub_price_usd_per_month: f64,
    pub api_price_usd_per_mtok: f64,
    pub seat_price_usd_per_month: f64,
    pub brand: f64,
    pub bundled: bool,
    pub bundle_utility: f64,
    pub reach_per_month: f64,
    /// Awareness factor per segment, in the segments' order (consumer, student, professional, developer).
    pub awareness_by_segment: [f64; 4],
    pub launch_buzz: f64,
    pub org_trust: f64,
    pub cash_usd: f64,
    pub fixed_cost_usd_per_year: f64,
    pub fixed_cost_growth_per_year: f64,
    pub cost_decline_per_year: f64,
    /// At least one (validation), in release order.
    pub tiers: Vec<Tier>,
    pub compute: ComputeFile,
    pub revenue_share: f64,
    pub parent_budget_usd: f64,
    pub parent_patience_months: f64,
    pub raise: RaiseFile,
    pub pricing: PricingFile,
    pub training: Vec<Training>,
    pub strategy: StrategyFile,
    pub model: ModelComputeFile,
}

impl Firm {
    /// Builds the firm from a file that passed validation.
    pub fn from_file(f: &FirmFile) -> Firm {
        Firm {
            id: f.id.clone(),
            name: f.name.clone(),
            kind: f.kind,
            launch: f.launch.0,
            chat_launch: f.chat_launch.map(|d| d.0).unwrap_or(f.launch.0),
            chat_app: f.chat_app,
            api: f.api,
            self_hostable: f.self_hostable,
            quality_elo: f.quality_elo,
            quality_growth_elo_per_year: f.quality_growth_elo_per_year,
            catch_up: f.catch_up.clone(),
            free_tier: f.free_tier,
            sub_price_usd_per_month: f.sub_price_usd_per_month,
            api_price_usd_per_mtok: f.api_price_usd_per_mtok,
            seat_price_usd_per_month: f.seat_price_usd_per_month,
            brand: f.brand,
            bundled: f.bundled,
            bundle_utility: f.bundle_utility,
            reach_per_month: f.reach_per_month,
            awareness_by_segment: f.awareness_by_segment.as_array(),
            launch_buzz: f.launch_buzz,
            org_trust: f.org_trust,
            cash_usd: f.cash_usd,
            fixed_cost_usd_per_year: f.fixed_cost_usd_per_year,
            fixed_cost_growth_per_year: f.fixed_cost_growth_per_year,
            cost_decline_per_year: f.cost_decline_per_year,
            tiers: f.tiers.iter().map(Tier::from).collect(),
            compute: f.compute.clone(),
            revenue_share: f.revenue_share,
            parent_budget_usd: f.parent_budget_usd,
            parent_patience_months: f.parent_patience_months,
            raise: f.raise.clone(),
            pricing: f.pricing.clone(),
            training: f.training.iter().map(Training::from).collect(),
            strategy: f.strategy.clone(),
            model: f.model.clone(),
        }
    }
}
