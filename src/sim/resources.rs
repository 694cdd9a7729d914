//! ECS resources: the run's fixed inputs, the clock, the dated events, the per-tick market view that user
//! phases read, tallies, and the recorder's buffers.

use super::components::TASTE_CLASSES;
use super::rows::{AnnualRow, DecisionRow, MarketRow, SummaryRow, TraceRow};
use crate::config::Scenario;
use crate::config::domain::Firm;
use crate::config::file::EventFile;
use crate::config::validate::{COUNT_LIMIT, FLOW_LIMIT_USD, STOCK_LIMIT_USD};
use crate::model::calendar::{MonthDay, Period, TickCalendar};
use crate::model::econ::Cents;
use bevy_ecs::prelude::Resource;
use chrono::NaiveDate;
use std::sync::Arc;

/// Segments in the order every per-segment array uses.
pub const SEGMENTS: [&str; 4] = ["consumer", "student", "professional", "developer"];
/// Verticals in the order every per-vertical array uses.
pub const VERTICALS: [&str; 5] = ["healthcare", "finance", "education", "tech", "other"];
/// Upper bound on firms (bit width of awareness sets).
pub const MAX_FIRMS: usize = 32;

/// The run's fixed inputs.
#[derive(Resource, Clone)]
pub struct RunInfo {
    pub scenario: Arc<Scenario>,
    pub run_id: u64,
    pub seed: u64,
    /// Real people per user agent.
    pub weight: f64,
    /// Real organisations per org agent.
    pub org_weight: f64,
    pub calendar: TickCalendar,
    pub record_every: Period,
    pub summer: (MonthDay, MonthDay),
    pub n_users: u32,
    pub n_orgs: u32,
    /// Fault injection for tests: phase 1 panics at this tick (see [`super::RunOptions::panic_at_tick`]).
    pub panic_at_tick: Option<u32>,
    /// Index of the scenario's epoch in force (dated `set` events; see [`crate::config::Epoch`]).
    pub epoch: usize,
}

impl RunInfo {
    /// The parameters in force this tick (dated `set` events change them).
    pub fn params(&self) -> &crate::config::file::ScenarioFile {
        self.scenario.epochs().get(self.epoch).map(|e| &*e.params).unwrap_or_else(|| self.scenario.params())
    }
    /// The firms with the parameters in force this tick.
    pub fn firms(&self) -> &[Firm] {
        self.scenario.epochs().get(self.epoch).map(|e| &*e.firms).unwrap_or_else(|| self.scenario.firms())
    }
}

/// This run's own worker threads for the user pass (a pool per run, so that a process can run scenarios
/// with different thread counts one after another or side by side), and whether quiet users may be found
/// with vector instructions. Neither changes the results.
#[derive(Resource)]
pub struct Workers {
    /// `None`: the calling thread does all the work.
    pool: Option<bevy_tasks::TaskPool>,
    threads: usize,
    /// False: find quiet users one at a time even where the CPU has vector instructions.
    pub vector_test: bool,
}

impl Workers {
    pub fn new(threads: usize, vector_test: bool) -> Workers {
        let threads = threads.clamp(1, super::MAX_THREADS);
        let pool = (threads > 1).then(|| {
            bevy_tasks::TaskPoolBuilder::new().num_threads(threads).thread_name("llm-market worker".into()).build()
        });
        Workers { pool, threads, vector_test }
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `f` over matching batches of `a` and `b` (the same length) and returns what each batch gave, in
    /// batch order. Batches are many per thread, so that a thread slowed down (a shared machine, another
    /// process) does not leave the others idle at the end of the pass, none smaller than 4,096 items, and a
    /// multiple of 64 long so that vector blocks stay whole.
    pub fn map_batches<A: Sync, B: Send, R: Send + 'static>(
        &self,
        a: &[A],
        b: &mut [B],
        f: impl Fn(&[A], &mut [B]) -> R + Sync,
    ) -> Vec<R> {
        let n = a.len().min(b.len());
        let size = self.batch_size(n);
        match &self.pool {
            Some(pool) if n > size => pool.scope(|s| {
                for (ac, bc) in a[..n].chunks(size).zip(b[..n].chunks_mut(size)) {
                    let f = &f;
                    s.spawn(async move { f(ac, bc) });
                }
            }),
            _ => vec![f(&a[..n], &mut b[..n])],
        }
    }

    /// [`Workers::map_batches`] over three matching slices, the last two written.
    /// Here batches are at least `min_batch` items (rounded up to a multiple of 64).
    pub fn map_batches3<A: Sync, B: Send, C: Send, R: Send + 'static>(
        &self,
        min_batch: usize,
        a: &[A],
        b: &mut [B],
        c: &mut [C],
        f: impl Fn(&[A], &mut [B], &mut [C]) -> R + Sync,
    ) -> Vec<R> {
        let n = a.len().min(b.len()).min(c.len());
        let size = self.batch_size(n).max(min_batch.next_multiple_of(64));
        match &self.pool {
            Some(pool) if n > size => pool.scope(|s| {
                for ((ac, bc), cc) in a[..n].chunks(size).zip(b[..n].chunks_mut(size)).zip(c[..n].chunks_mut(size)) {
                    let f = &f;
                    s.spawn(async move { f(ac, bc, cc) });
                }
            }),
            _ => vec![f(&a[..n], &mut b[..n], &mut c[..n])],
        }
    }

    /// Items per batch for `n` items: 32 batches per thread, at least 4,096 items, a multiple of 64.
    fn batch_size(&self, n: usize) -> usize {
        n.div_ceil(self.threads * 32).max(4096).next_multiple_of(64)
    }
}

/// Where the run is in time.
#[derive(Resource, Clone, Debug)]
pub struct Clock {
    pub tick: u32,
    pub date: NaiveDate,
    pub prev_date: NaiveDate,
    pub dt_days: f64,
    pub dt_months: f64,
    /// Years since the start of the run (at the end of this tick).
    pub years: f64,
    /// Students are on their summer break.
    pub summer: bool,
}

/// Dated events in date order (file order breaks ties); `next` is the first not yet applied.
#[derive(Resource, Clone, Debug, Default)]
pub struct EventQueue {
    pub events: Vec<(EventFile, Option<usize>)>,
    pub next: usize,
    /// Leak events so far: (date, strength); they drive the ban pressure.
    pub leaks: Vec<(NaiveDate, f64)>,
}

/// What user phases need to know this tick, precomputed per segment and firm (docs/ODD.md §7.5).
#[derive(Resource, Clone, Debug)]
pub struct Offers {
    pub n_firms: usize,
    /// Firms whose chat app is open this tick (alive and launched).
    pub chat_open: u32,
    /// Firms a consumer-chat ban applies to: every chat app except open-source ones.
    pub ban_subject: u32,
    /// Firms with no free tier: choosing one means paying.
    pub paid_only: u32,
    /// Threshold (of 2^64) for becoming aware of firm j this tick, per segment.
    pub aware_thr: [[u64; MAX_FIRMS]; 4],
    /// `exp(V)` per segment, taste class and firm.
    pub weight: [[[f32; MAX_FIRMS]; TASTE_CLASSES]; 4],
    /// `exp(u0)` per segment.
    pub outside: [f32; 4],
    /// `exp(γ)` per segment.
    pub loyalty: [f32; 4],
    /// `exp(trial utility)` per segment: the pull of a chatbot just heard of.
    pub trial: [f32; 4],
    /// Threshold for reconsidering this tick, per segment.
    pub reconsider_thr: [u64; 4],
    pub reconsider_on_awareness: bool,
    /// Subscription price per firm (0 = no paid tier).
    pub sub_price: [f32; MAX_FIRMS],
    /// Conversion threshold per firm for users whose willingness to pay covers the price.
    pub convert_thr: [u64; MAX_FIRMS],
    /// The same over half a tick, for users who joined the firm this tick.
    pub convert_half_thr: [u64; MAX_FIRMS],
    /// Churn thresholds by tenure: month 1, months 2–6, after.
    pub churn_thr: [u64; 3],
    /// Per firm: threshold for a sign-up to get in (the rest wait: the firm is at capacity).
    pub admit_thr: [u64; MAX_FIRMS],
    /// Per firm: extra churn threshold of paying users meeting message caps.
    pub capped_churn_thr: [u64; MAX_FIRMS],
    pub tick_days: u16,
    /// Word-of-mouth sources per firm at the end of the last tick (users or aware people).
    pub talkers: [f64; MAX_FIRMS],
}

impl Default for Offers {
    fn default() -> Self {
        Offers {
            n_firms: 0,
            chat_open: 0,
            ban_subject: 0,
            paid_only: 0,
            aware_thr: [[0; MAX_FIRMS]; 4],
            weight: [[[0.0; MAX_FIRMS]; TASTE_CLASSES]; 4],
            outside: [1.0; 4],
            loyalty: [1.0; 4],
            trial: [1.0; 4],
            reconsider_thr: [0; 4],
            reconsider_on_awareness: true,
            sub_price: [0.0; MAX_FIRMS],
            convert_thr: [0; MAX_FIRMS],
            convert_half_thr: [0; MAX_FIRMS],
            churn_thr: [0; 3],
            admit_thr: [u64::MAX; MAX_FIRMS],
            capped_churn_thr: [0; MAX_FIRMS],
            tick_days: 1,
            talkers: [0.0; MAX_FIRMS],
        }
    }
}

/// Counts over user agents (unweighted), refreshed at accounting; integer sums, so the result does not
/// depend on how the parallel loop was split.
#[derive(Resource, Clone, Debug, PartialEq, Eq)]
pub struct UserTally {
    /// Users per firm and segment (free and paying).
    pub users: [[u64; 4]; MAX_FIRMS],
    /// Paying users per firm and segment.
    pub paying: [[u64; 4]; MAX_FIRMS],
    /// Users aware of each firm.
    pub aware: [u64; MAX_FIRMS],
    /// Users aware of at least one firm.
    pub aware_any: u64,
    /// Sign-ups to each firm turned away this tick (the firm was at capacity).
    pub waitlisted: [u64; MAX_FIRMS],
}

impl Default for UserTally {
    fn default() -> Self {
        UserTally {
            users: [[0; 4]; MAX_FIRMS],
            paying: [[0; 4]; MAX_FIRMS],
            aware: [0; MAX_FIRMS],
            aware_any: 0,
            waitlisted: [0; MAX_FIRMS],
        }
    }
}

impl UserTally {
    pub fn add(&mut self, o: &UserTally) {
        for j in 0..MAX_FIRMS {
            for s in 0..4 {
                self.users[j][s] += o.users[j][s];
                self.paying[j][s] += o.paying[j][s];
            }
            self.aware[j] += o.aware[j];
            self.waitlisted[j] += o.waitlisted[j];
        }
        self.aware_any += o.aware_any;
    }
}

/// Organisation counts per firm and vertical, refreshed by the organisation phase (unweighted).
#[derive(Resource, Clone, Debug, Default)]
pub struct OrgTally {
    /// Orgs whose API provider is firm j.
    pub api_orgs: Vec<u64>,
    /// Million tokens per day served by firm j's models (API or self-hosted).
    pub tokens_m_per_day: Vec<f64>,
    /// Enterprise seats bought from firm j (unweighted org agents × seats).
    pub seats: Vec<f64>,
    pub adopted_by_vertical: [u64; 5],
    pub orgs_by_vertical: [u64; 5],
    pub banning: u64,
    /// Million tokens per day served by self-hosted open models.
    pub open_tokens_m_per_day: f64,
    /// Of `tokens_m_per_day`, those sent to the provider's top tier.
    pub top_tokens_m_per_day: Vec<f64>,
    /// What self-hosting organisations spend on hosting open models, USD per day.
    pub self_host_usd_per_day: f64,
}

/// Sign-ups turned away per firm in the phase-by-phase reference schedule (the choice system counts them,
/// the tally system adds them to `UserTally`); the fused pass counts them in its tally directly.
#[derive(Resource, Clone, Debug, Default)]
pub struct WaitlistTally(pub Vec<u64>);

/// Which org agents ban consumer chat, indexed by org id; read by the user phases. One more entry than
/// there are orgs, always `false`: what a user without an employer looks up (no branch in the user pass).
/// Also the orgs that started banning at the last organisation phase (the event-driven user pass looks at
/// their staff only).
#[derive(Resource, Clone, Debug)]
pub struct BanList {
    bans: Vec<bool>,
    newly: Vec<u32>,
}

impl BanList {
    /// No org bans anything yet.
    pub fn new(n_orgs: usize) -> BanList {
        BanList { bans: vec![false; n_orgs + 1], newly: Vec::new() }
    }

    /// Starts an organisation phase: no org has started banning in it yet.
    pub fn start_phase(&mut self) {
        self.newly.clear();
    }

    /// Records whether org `org` bans consumer chat.
    pub fn set(&mut self, org: usize, bans: bool) {
        let last = self.bans.len() - 1;
        if org < last {
            if bans && !self.bans[org] {
                self.newly.push(org as u32);
            }
            self.bans[org] = bans;
        }
    }

    /// The orgs that started banning since the organisation phase started, in the order they did.
    pub fn newly_banning(&self) -> &[u32] {
        &self.newly
    }

    /// The number of orgs.
    pub fn len(&self) -> usize {
        self.bans.len() - 1
    }

    /// Whether there are no orgs.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the employer with index `employer` (an org id, or anything at or beyond the number of orgs
    /// for none) bans consumer chat.
    #[inline(always)]
    pub fn bans(&self, employer: u32) -> bool {
        let last = self.bans.len() - 1;
        self.bans[(employer as usize).min(last)]
    }
}

/// Rows waiting for the runner to stream them out.
#[derive(Resource, Clone, Debug, Default)]
pub struct Trace {
    pub rows: Vec<TraceRow>,
    pub market: Vec<MarketRow>,
    pub decisions: Vec<DecisionRow>,
}

/// Decisions made this tick, in the order made (moved to `Trace` by the recorder).
#[derive(Resource, Clone, Debug, Default)]
pub struct DecisionLog(pub Vec<DecisionRow>);

/// The sector's shared state: investor sentiment, which follows the market's revenue growth.
#[derive(Resource, Clone, Debug)]
pub struct Sector {
    pub sentiment: f64,
    /// The sector's annualised revenue growth (last quarter against the trailing year) at the last tick.
    pub growth: f64,
}

/// Per-firm running statistics for `annual.csv` and `summary.csv`.
#[derive(Clone, Debug, Default)]
pub struct FirmBook {
    pub years: Vec<AnnualRow>,
    pub user_days: f64,
    pub days: f64,
    pub month: (i32, u32),
    pub month_profit: Cents,
    pub month_revenue: Cents,
    pub month_active: bool,
    pub break_even: Option<NaiveDate>,
    pub min_cash: Option<(Cents, NaiveDate)>,
    pub peak_users: (u64, NaiveDate),
    pub ttm_crossed: Vec<Option<NaiveDate>>,
    pub total_revenue: Cents,
    pub total_cost: Cents,
    pub total_funding: Cents,
}

/// Books of every firm, by `FirmId`.
#[derive(Resource, Clone, Debug, Default)]
pub struct Books {
    pub firms: Vec<FirmBook>,
    /// Self-hosting spend of organisations since the last recorded tick, USD, and its rate (USD per day) at
    /// the end of the last tick.
    pub self_host_spend: f64,
    pub self_host_rate: f64,
}

/// The final tables of a run.
#[derive(Clone, Debug, Default)]
pub struct RunTables {
    pub annual: Vec<AnnualRow>,
    pub summary: Vec<SummaryRow>,
}

/// Set when a system detects an impossible state (a NaN, an infinity); the runner stops the run.
#[derive(Resource, Clone, Debug, Default)]
pub struct Health {
    pub error: Option<String>,
}

impl Health {
    /// Flags a non-finite value, or one the accounts cannot hold: a money flow of one tick beyond
    /// [`FLOW_LIMIT_USD`] (computed in `f64`, rounded to cents), cash or funding (a stock, in `i64` cents)
    /// beyond [`STOCK_LIMIT_USD`], queries or visits of one tick beyond [`COUNT_LIMIT`]. Validation bounds
    /// every one of these over the whole run (`config::validate`), so this is an overflow guard that a
    /// validated scenario does not meet; the message names the firm, the quantity and the keys behind it.
    pub fn check(&mut self, what: &str, firm: &str, v: f64) {
        if self.error.is_some() {
            return;
        }
        let (kind, limit, unit) = match what {
            "cash" | "funding" => ("stock", STOCK_LIMIT_USD, " USD"),
            "queries" | "visits" => ("count per tick", COUNT_LIMIT, ""),
            _ => ("flow per tick", FLOW_LIMIT_USD, " USD"),
        };
        let keys = Self::driver(what);
        if !v.is_finite() {
            self.error =
                Some(format!("{what} ({kind}) of firm {firm} is not a finite number ({v}); it comes from {keys}"));
        } else if v.abs() > limit {
            self.error = Some(format!(
                "{what} ({kind}) of firm {firm} is {v:e}{unit}, beyond the {limit:e}{unit} the accounts hold; \
                 it comes from {keys}"
            ));
        }
    }

    /// The scenario keys behind a quantity checked by [`Health::check`].
    fn driver(what: &str) -> &'static str {
        match what {
            "subscription revenue" => "sub_price_usd_per_month and population",
            "API revenue" => "api_price_usd_per_mtok and the orgs' tokens (orgs.token_growth_per_year)",
            "seat revenue" => "seat_price_usd_per_month and orgs.verticals.*.seats",
            "inference cost" => "the tiers' serving costs, compute.gpu_cost_usd_per_day and compute.initial_gpus",
            "fixed cost" => "fixed_cost_usd_per_year and fixed_cost_growth_per_year",
            "training cost" => "training[].cost_usd and training[].months",
            "funding" => "funding events' amount_usd, parent_budget_usd and raise.size_months",
            "cash" => "cash_usd, the flows and funding",
            _ => "population and the segments' usage",
        }
    }

    /// The largest flow per tick the accounts accept, USD (see [`FLOW_LIMIT_USD`]).
    pub const LIMIT: f64 = FLOW_LIMIT_USD;
}
