//! ECS components of the three kinds of agent: firms, users and organisations.

use crate::model::econ::Cents;
use bevy_ecs::prelude::Component;
use chrono::NaiveDate;

/// A firm's stable identity: its index in the scenario's `firms` list. Outputs are sorted by it.
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FirmId(pub u16);

impl std::fmt::Display for FirmId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "firm#{}", self.0)
    }
}

/// A user's stable identity (also its random-number key).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserId(pub u32);

/// An organisation's stable identity (also its random-number key and its index in `BanList`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OrgId(pub u32);

/// Marker meaning "no employer".
pub const NO_EMPLOYER: u32 = u32::MAX;

/// A user's fixed traits, drawn at set-up. Read-only during the run.
#[derive(Component, Clone, Copy, Debug)]
pub struct User {
    pub id: UserId,
    /// Index into `[consumer, student, professional, developer]`.
    pub segment: u8,
    /// Taste class (0..TASTE_CLASSES): how much this user weighs quality.
    pub taste: u8,
    /// Keeps using a chatbot its employer banned (shadow use).
    pub shadow: bool,
    /// Employer org index, or [`NO_EMPLOYER`].
    pub employer: u32,
    /// Willingness to pay for a paid tier, USD per month.
    pub wtp: f32,
}

/// A user's mutable state: the hot fields of every user phase, kept together in one component.
#[derive(Component, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UserState {
    /// Bit j set when the user knows chatbot j.
    pub aware: u32,
    /// Current provider (a `FirmId`), or [`crate::model::choice::NONE`].
    pub provider: u8,
    /// The provider changed this tick: the user was with it for about half the tick, so its conversion
    /// hazard this tick is the half-tick one (keeps daily and weekly ticks in agreement).
    pub switched: bool,
    /// Chatbots learnt of this tick (they trigger a reconsideration, with the trial bonus).
    pub newly_aware: u32,
    /// 0 when on the free tier (or no provider); otherwise 1 + days on the paid plan.
    pub paid_days: u16,
}

/// The number of taste classes per segment.
pub const TASTE_CLASSES: usize = 4;

/// An organisation's state.
#[derive(Component, Clone, Copy, Debug)]
pub struct Org {
    pub id: OrgId,
    /// Index into `[healthcare, finance, education, tech, other]`.
    pub vertical: u8,
    /// 0 = not adopted, 1 = pilot, 2 = production.
    pub stage: u8,
    /// API provider (firm index), or NONE.
    pub provider: u8,
    /// Enterprise-seat vendor (firm index), or NONE.
    pub enterprise: u8,
    /// Bans employees from consumer chatbots.
    pub bans_chat: bool,
}

/// Where a firm's quality comes from; `current` is the Elo at this tick.
#[derive(Component, Clone, Copy, Debug)]
pub struct Quality {
    pub current: f64,
    /// Sum of release jumps so far.
    pub jumps: f64,
}

/// A firm's current offer.
#[derive(Component, Clone, Copy, Debug)]
pub struct Offer {
    pub free_tier: bool,
    pub sub_price: f64,
    pub api_price: f64,
    pub seat_price: f64,
    pub self_hostable: bool,
    /// Added to the firm's organisation trust by strategy events.
    pub org_trust_add: f64,
}

/// Cash and the bookkeeping needed for runway and raises.
#[derive(Component, Clone, Debug, Default)]
pub struct Finance {
    pub cash: Cents,
    /// Funding that arrived from events this tick, added at accounting.
    pub pending_funding: Cents,
    /// Parent money used so far (big tech).
    pub parent_used: Cents,
    /// Tick of the last runway-triggered raise attempt.
    pub last_raise_tick: Option<u32>,
    /// Net burn (cost − revenue) per tick with its length in days, most recent last (≈ the last 90 days).
    pub burn_window: std::collections::VecDeque<(f64, Cents)>,
    /// Revenue per tick with its date, kept for a trailing year.
    pub revenue_window: std::collections::VecDeque<(NaiveDate, Cents)>,
    /// Trailing-year revenue a year ago (for the growth used by raises).
    pub ttm_revenue: Cents,
}

/// Alive or exited.
#[derive(Component, Clone, Debug)]
pub struct Status {
    pub alive: bool,
    pub exit_date: Option<NaiveDate>,
    pub exit_reason: Option<&'static str>,
}

/// This tick's demand and money flows of one firm (overwritten every tick). Flows over a tick use the
/// average of the stocks at its start and end (trapezoid rule), so that results agree across tick lengths.
#[derive(Component, Clone, Copy, Debug, Default)]
pub struct TickFlows {
    /// Queries, visits and million tokens per day at the end of the tick (for the next tick's average).
    pub queries_per_day: f64,
    pub visits_per_day: f64,
    pub mtok_per_day: f64,
    pub users: f64,
    pub paying_users: f64,
    pub api_orgs: f64,
    pub seats: f64,
    pub queries: f64,
    pub tokens: f64,
    pub visits: f64,
    pub revenue_sub: Cents,
    pub revenue_api: Cents,
    pub revenue_seats: Cents,
    pub cost_inference: Cents,
    pub cost_training: Cents,
    pub cost_fixed: Cents,
    pub cost_revenue_share: Cents,
    pub funding: Cents,
}

impl TickFlows {
    pub fn revenue(&self) -> Cents {
        self.revenue_sub + self.revenue_api + self.revenue_seats
    }
    pub fn cost(&self) -> Cents {
        self.cost_inference + self.cost_training + self.cost_fixed + self.cost_revenue_share
    }
    pub fn profit(&self) -> Cents {
        self.revenue() - self.cost()
    }
}

/// Flows summed over the current recording interval (reset when a row is written).
#[derive(Component, Clone, Copy, Debug, Default)]
pub struct IntervalFlows(pub TickFlows);
