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

/// A user's fixed traits, drawn at set-up; read-only during the run. Packed into 12 bytes: the pass over
/// users is bound by memory bandwidth at scale (ARCHITECTURE.md, "Performance").
#[derive(Component, Clone, Copy, Debug, PartialEq)]
pub struct User {
    pub id: UserId,
    /// Employer org index in bits 0..27 (all ones: none), segment in bits 27..29, taste class in 29..31,
    /// shadow use in bit 31.
    traits: u32,
    /// Willingness to pay for a paid tier, USD per month.
    pub wtp: f32,
}

const EMPLOYER_BITS: u32 = 27;
const NO_EMPLOYER: u32 = (1 << EMPLOYER_BITS) - 1;

impl User {
    /// A user of `segment` (0..4) and taste class (0..[`TASTE_CLASSES`]); `employer` below
    /// [`crate::config::validate::MAX_ORG_AGENTS`]; `shadow`: keeps using a chatbot its employer banned.
    pub fn new(id: UserId, segment: u8, taste: u8, shadow: bool, employer: Option<u32>, wtp: f32) -> User {
        debug_assert!(segment < 4 && (taste as usize) < TASTE_CLASSES);
        debug_assert!(employer.is_none_or(|e| e < NO_EMPLOYER));
        let traits = employer.unwrap_or(NO_EMPLOYER).min(NO_EMPLOYER)
            | ((segment as u32 & 3) << EMPLOYER_BITS)
            | ((taste as u32 & 3) << (EMPLOYER_BITS + 2))
            | ((shadow as u32) << 31);
        User { id, traits, wtp }
    }

    /// Index into `[consumer, student, professional, developer]`.
    #[inline(always)]
    pub fn segment(&self) -> usize {
        ((self.traits >> EMPLOYER_BITS) & 3) as usize
    }

    /// Taste class (0..[`TASTE_CLASSES`]): how much this user weighs quality.
    #[inline(always)]
    pub fn taste(&self) -> usize {
        ((self.traits >> (EMPLOYER_BITS + 2)) & 3) as usize
    }

    /// Keeps using a chatbot its employer banned (shadow use).
    #[inline(always)]
    pub fn shadow(&self) -> bool {
        self.traits >> 31 == 1
    }

    /// Employer org index, if employed.
    #[inline(always)]
    pub fn employer(&self) -> Option<u32> {
        let e = self.employer_index();
        (e != NO_EMPLOYER).then_some(e)
    }

    /// Employer org index, or a number at least [`crate::config::validate::MAX_ORG_AGENTS`] when none.
    #[inline(always)]
    pub fn employer_index(&self) -> u32 {
        self.traits & NO_EMPLOYER
    }
}

/// A user's mutable state: the hot fields of every user phase, kept together in one 8-byte component.
#[derive(Component, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UserState {
    /// Bit j set when the user knows chatbot j.
    pub aware: u32,
    /// Current provider (a `FirmId`), or [`crate::model::choice::NONE`].
    pub provider: u8,
    /// The provider changed this tick: the user was with it for about half the tick, so its conversion
    /// hazard this tick is the half-tick one (keeps daily and weekly ticks in agreement).
    pub switched: bool,
    /// 0 when on the free tier (or no provider). Otherwise, under the per-tick samplers, 1 + days on the paid
    /// plan; under the event-driven sampler (which touches a user only when it decides) a day mark `m` such
    /// that the tenure is `days before this tick + 1 − m` (`sim::events`).
    pub paid_days: u16,
}

/// The tick of a user's next candidate decision under the event-driven sampler (`sim::events`): the user is
/// touched at that tick, or earlier only when a change of the market forces its choice. `Due::NEVER`: no
/// decision can come (nothing left to learn or decide at the current hazards) until a change redraws it.
/// Kept in a column of its own (`EventState`, 2 bytes a user, not a component: bevy would add 8 bytes of
/// change ticks), so that the pass finds due users by scanning it alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(transparent)]
pub struct Due(pub u16);

impl Due {
    pub const NEVER: Due = Due(u16::MAX);
}

/// Chatbots a user learnt of this tick (they trigger a reconsideration, with the trial bonus). Only the
/// phase-by-phase schedule stores it, from awareness to choice; the fused pass keeps it in a register.
#[derive(Component, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NewlyAware(pub u32);

/// The number of taste classes per segment.
pub const TASTE_CLASSES: usize = 4;

/// An organisation's state.
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq)]
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
    /// For an open model (catch-up) whose training is decided: where the catch-up stood on
    /// `decisions.start`; from then on its quality is this plus its jumps (capped at the frontier).
    pub anchor: Option<f64>,
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
    /// Product of the strategy events' API price factors: scales the list prices of tiers after the first.
    pub api_factor: f64,
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

/// A firm's compute: its committed GPUs (serving and ordered), recent demand for the forecast, and how much
/// of last tick's demand went unserved (what users meet this tick).
#[derive(Component, Clone, Debug, Default)]
pub struct Compute {
    pub tranches: Vec<crate::model::compute::Tranche>,
    /// Demanded GPUs (all classes) at recent ticks, most recent last (≈ the forecast window).
    pub demand_history: std::collections::VecDeque<(NaiveDate, f64)>,
    /// Share of free-chat demand not served at the last tick.
    pub ration_free: f64,
    /// Share of paid-chat demand not served at the last tick.
    pub ration_paid: f64,
    /// Compute credits from an investor (funding paid as compute), spent on compute before cash.
    pub credits: Cents,
}

/// Compute rates at the end of a tick (per day), for the next tick's trapezoid.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ComputeRates {
    /// Committed GPUs serving (all of them, usable or not): what the commitment costs.
    pub installed: f64,
    /// GPUs that can serve: usable committed GPUs plus the spot GPUs the firm may rent.
    pub capacity: f64,
    /// Spot GPUs rented.
    pub spot: f64,
    /// GPUs demanded and served per class (contract, paid, free).
    pub demand: [f64; 3],
    pub served: [f64; 3],
    /// Tokens per day demanded and served (all classes).
    pub tokens_demand: f64,
    pub tokens_served: f64,
    /// GPUs serving API tokens (part of the contract class), and API revenue per day (billed as served).
    pub api_served: f64,
    pub api_revenue: f64,
    /// GPUs serving the best tier when it is another model than the free tier.
    pub best_served: f64,
}

/// The models a firm serves, in release order: its scenario tiers (for a firm whose training is decided,
/// those released before `decisions.start`) and the models its own training runs released.
#[derive(Component, Clone, Debug)]
pub struct Lineup(pub Vec<crate::config::domain::Tier>);

/// A training run the firm decided (or a scripted programme running when the firm starts to decide).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Run {
    pub start: NaiveDate,
    pub end: NaiveDate,
    /// What the run costs per day while it runs (0 for a scripted programme, paid by its script).
    pub usd_per_day: f64,
    /// Its training compute, log10 FLOP.
    pub log10_flop: f64,
}

/// A firm's own decisions: the state its rules keep between reviews (docs/ODD.md §7.13).
#[derive(Component, Clone, Debug)]
pub struct Decisions {
    /// Date and number of the last review (training, capacity, prices, cuts); review k is due at the first
    /// tick on or after `decisions.start` + k periods.
    pub last_review: Option<NaiveDate>,
    pub review_number: Option<u32>,
    /// Training runs started so far (a run's outcome draws on the stream by its number, so that the n-th run
    /// of a firm has the same luck in every scenario and at every tick length).
    pub runs: u32,
    /// Funding rounds attempted so far (the same for rounds).
    pub rounds: u32,
    /// Since when the firm's user share is below `decisions.parent_min_user_share` (parent patience).
    pub below_share_since: Option<NaiveDate>,
    /// Cost-cutting level: 0 none; 1 training stopped; 2 + capacity growth; 3 + free-tier limits; 4 + staff.
    pub cut_level: u8,
    /// Share of free-tier usage the firm limits (cut level 3 and above).
    pub free_limit: f64,
    /// Staff growth: years (since the start) of the fixed-cost trend that were frozen, and since when the
    /// current freeze runs.
    pub frozen_years: f64,
    pub frozen_since: Option<f64>,
    /// The last model: its training compute (log10 FLOP) and when it was done.
    pub model_log10_flop: f64,
    pub model_date: NaiveDate,
    pub run: Option<Run>,
    /// Models released by the firm's own runs.
    pub released: u32,
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
    /// Compute rates at the end of the tick.
    pub rates: ComputeRates,
    /// GPU-days over the tick: capacity, demanded and served (all classes), and spot rented.
    pub capacity_gpu_days: f64,
    pub demanded_gpu_days: f64,
    pub served_gpu_days: f64,
    /// Tokens over the tick (chat, seats and API), demanded and served.
    pub tokens_demanded: f64,
    pub tokens_served: f64,
    /// Sign-ups turned away by the waitlist this tick (people).
    pub waitlisted: f64,
    /// Users whose demand is rationed at the end of the tick: free users × the free share rationed plus
    /// paying users × the paid share rationed (people).
    pub rationed_users: f64,
    /// The inference cost split: commitments and spot rentals; and by use (free chat, paid chat, seats,
    /// API) with the idle rest.
    pub cost_commitment: Cents,
    pub cost_spot: Cents,
    pub cost_by_use: [Cents; 4],
    pub cost_idle: Cents,
    /// The served part of the inference cost by model: the first (free) tier and the best tier when it is
    /// another model.
    pub cost_by_tier: [Cents; 2],
    /// Funding received as compute credits and spent this tick (part of `funding`).
    pub funding_in_kind: Cents,
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

impl IntervalFlows {
    /// Adds a tick: flows are summed, stocks (users, paying users, API organisations, seats, rates, rationed
    /// users) take the tick's end values.
    pub fn add(&mut self, flows: &TickFlows) {
        let acc = &mut self.0;
        acc.users = flows.users;
        acc.paying_users = flows.paying_users;
        acc.api_orgs = flows.api_orgs;
        acc.seats = flows.seats;
        acc.rates = flows.rates;
        acc.rationed_users = flows.rationed_users;
        acc.queries += flows.queries;
        acc.tokens += flows.tokens;
        acc.visits += flows.visits;
        acc.revenue_sub += flows.revenue_sub;
        acc.revenue_api += flows.revenue_api;
        acc.revenue_seats += flows.revenue_seats;
        acc.cost_inference += flows.cost_inference;
        acc.cost_training += flows.cost_training;
        acc.cost_fixed += flows.cost_fixed;
        acc.cost_revenue_share += flows.cost_revenue_share;
        acc.funding += flows.funding;
        acc.capacity_gpu_days += flows.capacity_gpu_days;
        acc.demanded_gpu_days += flows.demanded_gpu_days;
        acc.served_gpu_days += flows.served_gpu_days;
        acc.tokens_demanded += flows.tokens_demanded;
        acc.tokens_served += flows.tokens_served;
        acc.waitlisted += flows.waitlisted;
        acc.cost_commitment += flows.cost_commitment;
        acc.cost_spot += flows.cost_spot;
        acc.cost_idle += flows.cost_idle;
        acc.funding_in_kind += flows.funding_in_kind;
        for (a, b) in
            acc.cost_by_use.iter_mut().zip(flows.cost_by_use).chain(acc.cost_by_tier.iter_mut().zip(flows.cost_by_tier))
        {
            *a += b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::validate::MAX_ORG_AGENTS;

    #[test]
    fn packed_traits_round_trip() {
        for (segment, taste, shadow, employer) in [
            (0, 0, false, None),
            (3, 3, true, Some(0)),
            (2, 1, true, Some(MAX_ORG_AGENTS as u32 - 1)),
            (1, 2, false, None),
        ] {
            let u = User::new(UserId(7), segment, taste, shadow, employer, 12.5);
            assert_eq!(
                (u.segment(), u.taste(), u.shadow(), u.employer()),
                (segment as usize, taste as usize, shadow, employer)
            );
            assert_eq!(u.employer_index() as u64 >= MAX_ORG_AGENTS, employer.is_none());
        }
        assert_eq!(std::mem::size_of::<User>(), 12);
        assert_eq!(std::mem::size_of::<UserState>(), 8);
    }
}
