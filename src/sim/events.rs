//! The event-driven user pass: a user is touched only at the ticks when it has something to decide.
//!
//! The per-tick samplers ([`super::users`]) draw, for every user and tick, whether each of its rare decisions
//! happens: learning of an open chatbot it does not know (one Bernoulli draw per such chatbot), reconsidering
//! (the attention draw), and converting or churning. This pass draws the same decisions as *waiting times*.
//! It is a change of sampling, not of the model: the decisions happen with the same probabilities in every
//! tick (docs/ODD.md §7.14).
//!
//! **Thinning in discrete time.** Each kind of decision `k` a user may take has, this tick, the probability
//! `p_k(t)` of the per-tick sampler. The pass keeps for each kind an upper bound `b_k ≥ p_k(t)` (a table per
//! segment and firm, [`Rates`]) and runs, per user, the Bernoulli(`b_k`) processes of its kinds superposed: the
//! tick of the next *candidate* is a geometric waiting time with success probability `1 − Π(1 − b_k)`, stored
//! in [`Due`]. At that tick the pass draws which kinds are candidates (given that at least one is: the first
//! by inversion, the later ones independently) and accepts each candidate with probability `p_k(t) / b_k`. A
//! kind thus happens in each tick with probability `p_k(t)`, independently of other ticks and kinds — exactly
//! the per-tick model. After the user's decisions its waiting time is drawn afresh from its new state (the
//! processes are memoryless, so redrawing from any tick is exact).
//!
//! **Changes that redraw.** When a probability outgrows its bound (word of mouth rising, a launch, a price
//! introduced) that bound is raised with its kind's margin ([`Rates::update`]) and the users with a kind of that
//! bound get a new waiting time ([`Changed::affects`]); bounds far above need (a launch shock decayed, a firm
//! gone) are lowered the same way, at most every [`SHRINK_AFTER_TICKS`] ticks. Changes of the market that can
//! force a user's choice (its chatbot closed, a plan made paid-only or dearer, a paid plan made free) make the
//! pass look at every user that tick; an org that starts banning makes it look at that org's staff only (they
//! are marked in the due column, through an index of each org's staff built at the first tick).
//!
//! **Within a tick** a user's decisions run through the same kernels as the per-tick samplers, in phase order
//! (learn → reconsider → subscribe). A decision whose probability depends on what an earlier one changed this
//! tick (a conversion after a switch of provider, attention after a first chatbot was learnt) is drawn afresh
//! from the kernels' own streams rather than thinned: what changed it is independent of its draw.
//!
//! **Paid tenure.** A user is not touched every day, so `UserState::paid_days` holds a day mark `m` instead of
//! a running count: the tenure at a tick is `days before the tick + 1 − m`, which is what the per-tick count
//! would be.
//!
//! Every draw is keyed by (seed, stream, tick, user), the counts are integers summed per batch, and a user's
//! update reads only the user and this tick's market: results do not depend on the thread count.

use super::components::*;
use super::resources::*;
use super::users::{
    MarketView, PaidClock, TickView, allowed, churn_class, count_learnt, count_provider, count_waitlisted, firm,
    subscribe_by,
};
use crate::model::choice::NONE;
use crate::model::rng::{CounterRng, Stream, prob_threshold, tick_key};
use bevy_ecs::prelude::*;
use rand_distr::Distribution;

/// The fewest ticks between two rebuilds that only lower bounds (raising one is never delayed).
pub const SHRINK_AFTER_TICKS: u32 = 90;

/// The fewest users per batch of the pass (a batch's counts are about 5 KB to clear and add).
const MIN_BATCH: usize = 1 << 13;

/// A bound is lowered when it is more than this many times what is needed.
const SLACK: f64 = 4.0;

/// Per-tick probabilities of each kind of user decision: needed now, or their bounds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rates {
    /// Learning of firm j's chatbot, per segment.
    pub aware: [[f64; MAX_FIRMS]; 4],
    /// Reconsidering (attention), per segment.
    pub attention: [f64; 4],
    /// A free user of firm j converting (full tick; a user who switched this tick is drawn afresh).
    pub convert: [f64; MAX_FIRMS],
    /// A paying user of firm j churning (the highest tenure class, with message caps).
    pub churn: [f64; MAX_FIRMS],
}

/// The probability a threshold (of 2^64) stands for.
fn prob(thr: u64) -> f64 {
    thr as f64 / 18_446_744_073_709_551_616.0
}

/// Churn of a paying user of a firm whose message caps churn with probability `capped`, in tenure `class`.
fn churn_prob(o: &Offers, class: usize, capped: f64) -> f64 {
    1.0 - (1.0 - prob(o.churn_thr[class])) * (1.0 - capped)
}

impl Rates {
    /// What this tick's offers need.
    pub fn needed(o: &Offers) -> Rates {
        let mut r = Rates::default();
        for s in 0..4 {
            r.attention[s] = prob(o.reconsider_thr[s]);
            // Only open chatbots can be learnt of (as in `learn`), whatever a closed one's threshold says.
            for j in 0..o.n_firms.min(MAX_FIRMS) {
                r.aware[s][j] = if (o.chat_open >> j) & 1 == 1 { prob(o.aware_thr[s][j]) } else { 0.0 };
            }
        }
        for j in 0..o.n_firms.min(MAX_FIRMS) {
            r.convert[j] = prob(o.convert_thr[j]);
            let capped = prob(o.capped_churn_thr[j]);
            r.churn[j] = (0..3).map(|c| churn_prob(o, c, capped)).fold(0.0, f64::max);
        }
        r
    }

    fn map(&self, f: impl Fn(f64) -> f64) -> Rates {
        Rates {
            aware: self.aware.map(|a| a.map(&f)),
            attention: self.attention.map(&f),
            convert: self.convert.map(&f),
            churn: self.churn.map(&f),
        }
    }

    /// Brings the bounds in `self` up to what `needed` holds where a probability outgrew its bound, and
    /// (when `shrink`) down where a bound is more than [`SLACK`] times what is needed; every other bound stays
    /// as it is, so that only users with a kind whose bound changed need a new waiting time. A bound is set to
    /// what is needed times its kind's margin (at most 1): learning (word of mouth grows, launch shocks decay)
    /// and churn (message caps come and go with capacity) twice; conversion, which steps up with each model
    /// release, a quarter more; attention, constant per tick for a given tick length, none (its candidates
    /// are never rejected). Returns what changed, and whether some bound was lowered.
    pub fn update(&mut self, needed: &Rates, shrink: bool) -> (Changed, bool) {
        let mut lowered = false;
        let mut set = |b: &mut f64, p: f64, margin: f64| {
            let (moved, down) = move_bound(b, p, margin, shrink);
            lowered |= down;
            moved
        };
        let mut c = Changed::default();
        for s in 0..4 {
            for j in 0..MAX_FIRMS {
                c.aware[s] |= (set(&mut self.aware[s][j], needed.aware[s][j], 2.0) as u32) << j;
            }
            c.attention[s] = set(&mut self.attention[s], needed.attention[s], 1.0);
        }
        for j in 0..MAX_FIRMS {
            c.convert |= (set(&mut self.convert[j], needed.convert[j], 1.25) as u32) << j;
            c.churn |= (set(&mut self.churn[j], needed.churn[j], 2.0) as u32) << j;
        }
        (c, lowered)
    }
}

/// The rule of every bound of both event-driven passes: a bound `b` that the probability `p` outgrew, or (when
/// `shrink`) that is more than [`SLACK`] times `p`, is set to `margin · p` (at most 1). Returns whether it moved,
/// and whether it was lowered.
#[inline]
pub(super) fn move_bound(b: &mut f64, p: f64, margin: f64, shrink: bool) -> (bool, bool) {
    let down = shrink && *b > SLACK * p;
    let moved = p > *b || down;
    if moved {
        *b = (margin * p).min(1.0);
    }
    (moved, down)
}

/// Which bounds an update changed: per segment the chatbots whose learning bound moved and whether attention's
/// did; the firms whose conversion and churn bounds moved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Changed {
    aware: [u32; 4],
    attention: [bool; 4],
    convert: u32,
    churn: u32,
}

impl Changed {
    /// Whether any bound changed.
    pub fn any(&self) -> bool {
        *self != Changed::default()
    }

    /// Whether a kind of decision open to a user in state `st` had its bound changed (its waiting time must
    /// be redrawn; the others' stay exact, drawn with the same bounds).
    #[inline(always)]
    fn affects(&self, u: &User, st: &UserState) -> bool {
        let s = u.segment();
        let sub = if st.provider == NONE {
            false
        } else {
            let mask = if st.paid_days > 0 { self.churn } else { self.convert };
            (mask >> firm(st.provider)) & 1 == 1
        };
        self.aware[s] & !st.aware != 0 || (st.aware != 0 && self.attention[s]) || sub
    }
}

/// What the market looked like to users at the last tick: what can force a choice when it changes.
#[derive(Clone, Debug)]
struct Market {
    chat_open: u32,
    ban_subject: u32,
    paid_only: u32,
    sub_price: [f32; MAX_FIRMS],
}

impl Market {
    /// Whether some user's provider may no longer be open to it, or a paid plan became free: the chatbot
    /// closed or became subject to bans, a firm's plan became paid-only or dearer, or its price went to 0.
    /// (An employer that starts banning concerns its own staff only: [`EventState::employees`].)
    fn may_force(&self, o: &Offers) -> bool {
        let dearer = (0..MAX_FIRMS).any(|j| (o.paid_only >> j) & 1 == 1 && o.sub_price[j] > self.sub_price[j]);
        let free = (0..MAX_FIRMS).any(|j| o.sub_price[j] <= 0.0 && self.sub_price[j] > 0.0);
        self.chat_open & !o.chat_open != 0
            || o.ban_subject & !self.ban_subject != 0
            || o.paid_only & !self.paid_only != 0
            || dearer
            || free
    }

    fn update(&mut self, o: &Offers) {
        (self.chat_open, self.ban_subject, self.paid_only, self.sub_price) =
            (o.chat_open, o.ban_subject, o.paid_only, o.sub_price);
    }
}

/// The event-driven pass's state between ticks, and what it did (the `bench` command reports it).
#[derive(Resource, Clone, Debug)]
pub struct EventState {
    /// The bounds the users' waiting times were drawn with, `ln(1 − b)` and `1 − b` of each.
    bound: Rates,
    ln: Rates,
    keep: Rates,
    /// Folds of `ln` and `keep` over the sets of chatbots a user may still learn of.
    unknown: UnknownSets,
    /// The last tick at which bounds were lowered.
    last_shrink: Option<u32>,
    /// Days of the ticks before this one (the tenure clock of paying users).
    day: u32,
    market: Market,
    /// Ticks at which some bound changed (and the waiting times of the users concerned were redrawn).
    pub rebuilds: u32,
    /// Ticks on which a change of the market made the pass look for users whose choice it forces.
    pub forced_ticks: u32,
    /// Ticks at which the pass looked at every user (bounds changed, or the market may force a choice).
    pub full_ticks: u32,
    /// Users taken through the kernels so far (a user counts once per tick it is touched).
    pub touched: u64,
    /// Each user's next candidate tick, by row of the users' tables (in table order). Not a component: bevy
    /// keeps two change ticks per component and entity, 8 bytes for a 2-byte value.
    due: Vec<Due>,
    /// Each org's staff, as rows (compressed: org o's rows are
    /// `employee_rows[employee_start[o]..employee_start[o + 1]]`), built at the first tick.
    employee_start: Vec<u32>,
    employee_rows: Vec<u32>,
    n_orgs: usize,
}

impl EventState {
    pub fn new(n_orgs: usize) -> EventState {
        EventState {
            bound: Rates::default(),
            ln: Rates::default(),
            // No bound yet (b = 0): nothing is ever a candidate before the first tick's update.
            keep: Rates::default().map(|_| 1.0),
            unknown: UnknownSets::default(),
            last_shrink: None,
            day: 0,
            market: Market { chat_open: 0, ban_subject: 0, paid_only: 0, sub_price: [0.0; MAX_FIRMS] },
            rebuilds: 0,
            forced_ticks: 0,
            full_ticks: 0,
            touched: 0,
            due: Vec::new(),
            employee_start: Vec::new(),
            employee_rows: Vec::new(),
            n_orgs,
        }
    }

    /// Indexes the staff of each org from the users' table (one counting pass, one filling pass).
    fn index_employees<'a>(&mut self, us: impl Iterator<Item = &'a User> + Clone) {
        let n_orgs = self.n_orgs;
        let mut start = vec![0u32; n_orgs + 1];
        for u in us.clone() {
            let e = u.employer_index() as usize;
            if e < n_orgs {
                start[e + 1] += 1;
            }
        }
        for o in 0..n_orgs {
            start[o + 1] += start[o];
        }
        let mut next = start.clone();
        let mut rows = vec![0u32; start[n_orgs] as usize];
        for (row, u) in us.enumerate() {
            let e = u.employer_index() as usize;
            if e < n_orgs {
                rows[next[e] as usize] = row as u32;
                next[e] += 1;
            }
        }
        (self.employee_start, self.employee_rows) = (start, rows);
    }
}

/// A `Due` value that marks a user to look at this tick (its employer started banning): its waiting time
/// is redrawn from this tick (exact: the processes are memoryless) and its choice checked. It is tick 0, the
/// initial state, which no pass runs at, so that one unsigned comparison (`due <= tick`) finds due users and
/// marked ones alike.
const MARKED: u16 = 0;

/// The most chatbots (by index) whose sets [`UnknownSets`] tabulates: `2^MEMO_BITS` entries per segment.
const MEMO_BITS: u32 = 10;

/// Per segment, for every set of learnable chatbots a user may not know yet (indexed by its bits): the sum of
/// their `ln(1 − b)` from `-0.0` and the product of their `1 − b` from 1, added and multiplied in kind order —
/// the first part of each fold of [`Ctx::fold_kinds`], with the same roundings, computed once per rebuild
/// instead of once per touched user. A segment with a learnable chatbot of index `MEMO_BITS` or more has no
/// table (its sets are folded one by one).
#[derive(Clone, Debug, Default)]
struct UnknownSets {
    ln: [Vec<f64>; 4],
    keep: [Vec<f64>; 4],
}

impl UnknownSets {
    /// The tables for bounds whose `ln(1 − b)` and `1 − b` are `ln` and `keep`, `learnable[s]` being the
    /// chatbots with a learning bound above 0 in segment `s`.
    fn new(ln: &Rates, keep: &Rates, learnable: [u32; 4]) -> UnknownSets {
        let mut sets = UnknownSets::default();
        for (s, chatbots) in learnable.iter().enumerate() {
            let top = u32::BITS - chatbots.leading_zeros();
            if top > MEMO_BITS {
                continue;
            }
            let n = 1usize << top;
            let (mut l, mut k) = (vec![-0.0; n], vec![1.0; n]);
            for set in 1..n {
                // The set without its highest chatbot, then that chatbot: the order of a walk from the lowest.
                let j = (usize::BITS - 1 - set.leading_zeros()) as usize;
                let rest = set & !(1 << j);
                (l[set], k[set]) = (l[rest] + ln.aware[s][j], k[rest] * keep.aware[s][j]);
            }
            (sets.ln[s], sets.keep[s]) = (l, k);
        }
        sets
    }
}

/// Per segment, the chatbots with a learning bound above 0 (what a user may learn of, as candidates).
fn learnable(bound: &Rates) -> [u32; 4] {
    std::array::from_fn(|s| bound.aware[s].iter().enumerate().fold(0, |m, (j, &x)| m | ((x > 0.0) as u32) << j))
}

/// The ticks until the next candidate of superposed Bernoulli processes whose probabilities `b_k` give
/// `ln_none = Σ ln(1 − b_k)`: a geometric waiting time (0: this tick), infinite when no kind can happen.
/// It is `⌊E / −ln_none⌋` for a standard exponential `E` (`P(wait ≥ n) = e^{n·ln_none} = Π(1 − b_k)^n`),
/// drawn by the ziggurat method (rarely more than one number, and no logarithm; the same draws whatever
/// `ln_none` is).
#[inline(always)]
fn waiting_ticks(ln_none: f64, rng: &mut CounterRng) -> f64 {
    let e: f64 = rand_distr::Exp1.sample(rng);
    if ln_none.is_nan() || ln_none >= 0.0 {
        return f64::INFINITY;
    }
    (e / -ln_none).floor()
}

/// The tick of the next candidate at or after `from` ([`waiting_ticks`]), as a due tick: `u16::MAX`
/// ([`Due::NEVER`]) when it is never or beyond what the column holds.
#[inline(always)]
pub(super) fn due_tick(from: u32, ln_none: f64, rng: &mut CounterRng) -> u16 {
    let due = from as f64 + waiting_ticks(ln_none, rng);
    if due >= Due::NEVER.0 as f64 { Due::NEVER.0 } else { due as u16 }
}

/// Which kinds are candidates in a tick known to hold at least one, kind `k` (in order) being a candidate
/// with probability `1 − keep_k`: [`Candidates::next`] is called once per kind, in order, and says whether
/// it is one.
///
/// The first candidate is `k` with probability `Π_{i<k}(1 − b_i) · b_k / P(any)`: the first `k` at which
/// `Π_{i≤k}(1 − b_i)` falls to `1 − U·P(any)` for one uniform `U`; the kinds after it are candidates
/// independently, each with its own `b`.
pub(super) struct Candidates {
    level: f64,
    prefix: f64,
    first_found: bool,
    /// Kinds not yet asked about.
    left: usize,
}

impl Candidates {
    /// For `n` kinds whose `keep`s multiply to `none` (in kind order, from 1): draws the level.
    #[inline(always)]
    pub(super) fn new(none: f64, n: usize, rng: &mut CounterRng) -> Candidates {
        Candidates { level: 1.0 - rng.uniform() * (1.0 - none), prefix: 1.0, first_found: false, left: n }
    }

    /// Whether the next kind, with `keep`, is a candidate.
    #[inline(always)]
    pub(super) fn next(&mut self, keep: f64, rng: &mut CounterRng) -> bool {
        self.left -= 1;
        if self.first_found {
            return rng.uniform() >= keep;
        }
        self.prefix *= keep;
        // The last kind is the first candidate if none before was (rounding cannot skip it).
        self.first_found = self.prefix <= self.level || self.left == 0;
        self.first_found
    }
}

/// Acceptance threshold of a candidate: probability `p / b`.
pub(super) fn accept_thr(p: f64, b: f64) -> u64 {
    if b > 0.0 { prob_threshold(p / b) } else { 0 }
}

/// What one tick of the pass reads.
struct Ctx<'a> {
    view: TickView<'a>,
    tick: u16,
    /// Days before this tick, and the paid mark of a user converting this tick (tenure 0 next tick).
    day: u16,
    convert_mark: u16,
    due_key: u64,
    ln: &'a Rates,
    keep: &'a Rates,
    unknown: &'a UnknownSets,
    /// Per segment: the chatbots with a learning bound above 0.
    learnable: [u32; 4],
    acc_aware: [[u64; MAX_FIRMS]; 4],
    acc_attention: [u64; 4],
    acc_convert: [u64; MAX_FIRMS],
    /// Per tenure class and firm.
    acc_churn: [[u64; MAX_FIRMS]; 3],
    /// Bounds changed this tick (`None`: none did).
    changed: Option<Changed>,
    force: bool,
}

impl<'a> Ctx<'a> {
    fn new(view: TickView<'a>, state: &'a EventState, needed: &Rates, seed: u64, tick: u32) -> Ctx<'a> {
        let (o, b) = (view.offers, &state.bound);
        let mut acc_churn = [[0; MAX_FIRMS]; 3];
        for j in 0..o.n_firms.min(MAX_FIRMS) {
            let capped = prob(o.capped_churn_thr[j]);
            for (c, row) in acc_churn.iter_mut().enumerate() {
                row[j] = accept_thr(churn_prob(o, c, capped), b.churn[j]);
            }
        }
        let day = state.day.min(u16::MAX as u32 - 1) as u16;
        Ctx {
            view,
            tick: tick.min(u16::MAX as u32 - 1) as u16,
            day,
            convert_mark: day.saturating_add(o.tick_days).saturating_add(1),
            due_key: tick_key(seed, Stream::Due, tick),
            ln: &state.ln,
            keep: &state.keep,
            unknown: &state.unknown,
            learnable: learnable(b),
            acc_aware: std::array::from_fn(|s| std::array::from_fn(|j| accept_thr(needed.aware[s][j], b.aware[s][j]))),
            acc_attention: std::array::from_fn(|s| accept_thr(needed.attention[s], b.attention[s])),
            acc_convert: std::array::from_fn(|j| accept_thr(needed.convert[j], b.convert[j])),
            acc_churn,
            changed: None,
            force: false,
        }
    }

    /// This tick's paid-tenure clock (day marks).
    #[inline(always)]
    fn clock(&self) -> PaidClock {
        PaidClock::Mark { day: self.day, convert: self.convert_mark }
    }

    /// Folds `op` from `init` over the entries of `t` (`ln(1 − b)` or `1 − b`) of the kinds of decision open to
    /// a user in state `st`, in kind order: learning of each chatbot it does not know yet, attention (if it
    /// knows one), and subscription (if it has a provider: churn if paying, conversion if not). The chatbots'
    /// part comes from `sets` (that fold of `t` over each set, [`UnknownSets`]) where the segment has a table.
    /// Returns the fold and the number of kinds.
    #[inline(always)]
    fn fold_kinds(
        &self,
        u: &User,
        st: &UserState,
        t: &Rates,
        sets: &[Vec<f64>; 4],
        init: f64,
        op: impl Fn(f64, f64) -> f64,
    ) -> (f64, u32) {
        let s = u.segment();
        let unknown = self.learnable[s] & !st.aware;
        let mut x = match sets[s].get(unknown as usize) {
            Some(&x) => x,
            None => {
                let (mut x, mut left) = (init, unknown);
                while left != 0 {
                    let j = left.trailing_zeros() as usize;
                    left &= left - 1;
                    x = op(x, t.aware[s][j]);
                }
                x
            }
        };
        if st.aware != 0 {
            x = op(x, t.attention[s]);
        }
        if st.provider != NONE {
            x = op(x, Self::subscription_entry(st, t));
        }
        (x, unknown.count_ones() + (st.aware != 0) as u32 + (st.provider != NONE) as u32)
    }

    /// The entry of `t` for the subscription decision of a user with a provider: churn if paying, conversion
    /// if not.
    #[inline(always)]
    fn subscription_entry(st: &UserState, t: &Rates) -> f64 {
        let j = firm(st.provider);
        if st.paid_days > 0 { t.churn[j] } else { t.convert[j] }
    }

    /// The tick of the user's next candidate at or after `from` (a geometric waiting time).
    #[inline(always)]
    fn next_due(&self, from: u16, u: &User, st: &UserState, rng: &mut CounterRng) -> Due {
        // Summed in kind order from -0.0, as `Iterator::sum` does.
        let (ln_none, _) = self.fold_kinds(u, st, self.ln, &self.unknown.ln, -0.0, |x, ln| x + ln);
        Due(due_tick(from as u32, ln_none, rng))
    }

    /// At a due tick: which kinds are candidates (at least one, [`Candidates`]), each accepted with `p / b`,
    /// in the order of [`Self::fold_kinds`] (written out kind by kind: a loop over kinds with a match per
    /// kind mispredicted that match about once per touched user). Returns the chatbots learnt, the attention
    /// outcome (`None`: the user knows no chatbot, so attention was not one of its kinds) and the
    /// subscription outcome (`None`: no provider).
    #[inline(always)]
    fn decide(&self, u: &User, st: &UserState, rng: &mut CounterRng) -> (u32, Option<bool>, Option<bool>) {
        let s = u.segment();
        let (none, n) = self.fold_kinds(u, st, self.keep, &self.unknown.keep, 1.0, |x, keep| x * keep);
        let mut candidates = Candidates::new(none, n as usize, rng);
        let mut learnt = 0u32;
        let mut unknown = self.learnable[s] & !st.aware;
        while unknown != 0 {
            let j = unknown.trailing_zeros() as usize;
            unknown &= unknown - 1;
            let accepted = candidates.next(self.keep.aware[s][j], rng) && rng.hit(self.acc_aware[s][j]);
            learnt |= (accepted as u32) << j;
        }
        let attention =
            (st.aware != 0).then(|| candidates.next(self.keep.attention[s], rng) && rng.hit(self.acc_attention[s]));
        let subscription = (st.provider != NONE).then(|| {
            candidates.next(Self::subscription_entry(st, self.keep), rng) && rng.hit(self.subscription_thr(u, st))
        });
        (learnt, attention, subscription)
    }

    /// The acceptance threshold of a subscription candidate for a user with a provider, in state `st`, this
    /// tick: churn by tenure class if paying; conversion if not and the plan is priced within its
    /// willingness to pay; otherwise 0.
    #[inline(always)]
    fn subscription_thr(&self, u: &User, st: &UserState) -> u64 {
        let j = firm(st.provider);
        let price = self.view.offers.sub_price[j];
        if st.paid_days > 0 {
            self.acc_churn[churn_class(u, price, self.clock().tenure(st.paid_days))][j]
        } else if price > 0.0 && u.wtp >= price {
            self.acc_convert[j]
        } else {
            0
        }
    }

    /// Whether this tick's market forces the user's choice: its provider is no longer open to it (the test of
    /// `reconsider`), or its paid plan became free (that of `subscribe`).
    #[inline(always)]
    fn forced(&self, u: &User, st: &UserState) -> bool {
        if st.provider == NONE {
            return false;
        }
        let j = firm(st.provider);
        (allowed(&self.view, u, st.aware) >> j) & 1 == 0 || (st.paid_days > 0 && self.view.offers.sub_price[j] <= 0.0)
    }
}

/// What one batch of the pass counted: users and payers added and removed, what was learnt, the waitlist.
#[derive(Default)]
struct Counts {
    plus: UserTally,
    minus: UserTally,
    touched: u64,
}

/// One user's decisions this tick (it is due, or forced), through the kernels in phase order.
#[inline(always)]
fn decide_user(ctx: &Ctx, c: &mut Counts, u: &User, st: &mut UserState, rng: &mut CounterRng, due: bool) {
    let before = *st;
    let (learnt, attention, subscription) = if due {
        ctx.decide(u, st, rng)
    } else {
        // Forced off its due tick: none of its own decisions is a candidate now.
        (0, (st.aware != 0).then_some(false), (st.provider != NONE).then_some(false))
    };
    st.aware |= learnt;
    let waitlisted = super::users::reconsider_by(&ctx.view, u, st, learnt, ctx.day.saturating_add(1), |rng, thr| {
        let fresh = rng.hit(thr);
        attention.unwrap_or(fresh)
    });
    let same_plan = st.provider == before.provider && (st.paid_days > 0) == (before.paid_days > 0);
    subscribe_by(&ctx.view, u, st, ctx.clock(), if same_plan { subscription } else { None });
    st.switched = false;
    count_waitlisted(&mut c.plus, waitlisted);
    count_learnt(&mut c.plus, before.aware, st.aware);
    count_provider(&mut c.minus, u, &before);
    count_provider(&mut c.plus, u, st);
    c.touched += 1;
}

/// A user whose waiting time is redrawn from this tick (`redraw`: a rebuild, or it was marked) or whose
/// choice may be forced (`check`): it goes through the kernels if due now or forced.
#[inline(always)]
fn visit(ctx: &Ctx, c: &mut Counts, u: &User, st: &mut UserState, due: &mut Due, redraw: bool, check: bool) {
    if !redraw && due.0 > ctx.tick && !(check && ctx.forced(u, st)) {
        return;
    }
    let mut rng = CounterRng::new(ctx.due_key, u.id.0 as u64);
    if redraw {
        *due = ctx.next_due(ctx.tick, u, st, &mut rng);
    }
    let is_due = due.0 <= ctx.tick;
    if is_due || (check && ctx.forced(u, st)) {
        decide_user(ctx, c, u, st, &mut rng, is_due);
        *due = ctx.next_due(ctx.tick + 1, u, st, &mut rng);
    }
}

/// [`pass`] compiled for AVX2 (the scan for due users compares 16 due ticks per instruction instead of 8):
/// call only where [`avx2`] found it.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn pass_avx2(ctx: &Ctx, c: &mut Counts, us: &[User], sts: &mut [UserState], dues: &mut [Due]) {
    pass::<true>(ctx, c, us, sts, dues)
}

/// Whether the pass may use AVX2: the CPU has it and the run's options allow vector code.
fn avx2(vector_test: bool) -> bool {
    #[cfg(target_arch = "x86_64")]
    if vector_test {
        return std::arch::is_x86_feature_detected!("avx2");
    }
    let _ = vector_test;
    false
}

/// The pass over a slice of users. On most ticks it only scans `Due` for users due now or marked, 64 at a
/// time; when bounds changed, or a change of the market may force anyone's choice, it looks at every user.
#[inline(always)]
fn pass<const AVX2: bool>(ctx: &Ctx, c: &mut Counts, us: &[User], sts: &mut [UserState], dues: &mut [Due]) {
    if ctx.changed.is_some() || ctx.force {
        let changed = ctx.changed.unwrap_or_default();
        for ((u, st), due) in us.iter().zip(sts).zip(dues) {
            let redraw = changed.affects(u, st);
            visit(ctx, c, u, st, due, redraw, ctx.force);
        }
        return;
    }
    // Due users are few and scattered: each chunk's are found first and their rows prefetched together, so
    // that their cache misses overlap instead of coming one after another.
    let tick = ctx.tick;
    let mut found = [0u16; CHUNK];
    for ((uc, sc), dc) in us.chunks(CHUNK).zip(sts.chunks_mut(CHUNK)).zip(dues.chunks_mut(CHUNK)) {
        let mut n = 0;
        for (b, block) in dc.chunks(64).enumerate() {
            let mut due = due_bits::<AVX2>(block, tick);
            while due != 0 {
                found[n] = (b * 64 + due.trailing_zeros() as usize) as u16;
                due &= due - 1;
                n += 1;
            }
        }
        for &i in &found[..n] {
            prefetch(&uc[i as usize]);
            prefetch(&sc[i as usize]);
        }
        for &i in &found[..n] {
            let i = i as usize;
            let marked = dc[i].0 == MARKED;
            visit(ctx, c, &uc[i], &mut sc[i], &mut dc[i], marked, marked);
        }
    }
}

/// Bit `i` set where `block[i]` (at most 64 due ticks) is at most `tick`: the users due now or marked. With
/// `AVX2` (only inside [`pass_avx2`]) a whole block takes 4 loads, 4 comparisons and 2 masks.
#[inline(always)]
fn due_bits<const AVX2: bool>(block: &[Due], tick: u16) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if AVX2 && let Ok(block) = <&[Due; 64]>::try_from(block) {
        // SAFETY: `AVX2` is true only in `pass_avx2`, called only where `avx2` found the feature.
        return unsafe { due_bits_avx2(block, tick) };
    }
    block.iter().enumerate().fold(0u64, |m, (i, d)| m | ((d.0 <= tick) as u64) << i)
}

/// [`due_bits`] of a full block with AVX2: 16 due ticks per comparison (`min(d, tick) == d`, unsigned).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
fn due_bits_avx2(block: &[Due; 64], tick: u16) -> u64 {
    use std::arch::x86_64::*;
    let t = _mm256_set1_epi16(tick as i16);
    let p = block.as_ptr().cast::<__m256i>();
    // SAFETY: `Due` is a transparent u16, so the block is 128 bytes: four unaligned 32-byte loads.
    let at_most = |k: usize| unsafe {
        let v = _mm256_loadu_si256(p.add(k));
        _mm256_cmpeq_epi16(_mm256_min_epu16(v, t), v)
    };
    // Packing two masks of 16 words into 32 bytes interleaves their 8-word halves: the permutation puts the
    // 64-bit quarters back in order (0, 2, 1, 3) before the bytes' top bits are taken.
    let bytes = |a: __m256i, b: __m256i| _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_packs_epi16(a, b));
    let lo = _mm256_movemask_epi8(bytes(at_most(0), at_most(1))) as u32 as u64;
    let hi = _mm256_movemask_epi8(bytes(at_most(2), at_most(3))) as u32 as u64;
    lo | hi << 32
}

/// Users per chunk of the pass's scan (their due rows are prefetched together).
const CHUNK: usize = 2048;

/// Asks the CPU to bring `x`'s cache line in (a hint: no effect on results; nothing on other CPUs).
#[inline(always)]
fn prefetch<T>(x: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch reads nothing the program sees and cannot fault, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>((x as *const T).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = x;
}

/// A table of users as slices: ids and traits, states.
type Slices<'a> = (&'a [User], &'a mut [UserState]);

/// One tick of the pass over the users' tables (their rows in table order, which no system changes during a
/// run): decides whether to rebuild, marks the staff of newly banning orgs, takes each user due or forced
/// through the kernels on `workers`, and returns what changed.
fn tick_pass(
    state: &mut EventState,
    workers: &Workers,
    view: TickView,
    seed: u64,
    tick: u32,
    tables: &mut [Slices],
) -> Counts {
    let needed = Rates::needed(view.offers);
    let shrink = state.last_shrink.is_none_or(|t| tick >= t + SHRINK_AFTER_TICKS);
    let (changed, lowered) = state.bound.update(&needed, shrink);
    let rebuild = changed.any();
    if rebuild {
        state.ln = state.bound.map(|b| (-b).ln_1p());
        state.keep = state.bound.map(|b| 1.0 - b);
        state.unknown = UnknownSets::new(&state.ln, &state.keep, learnable(&state.bound));
        state.rebuilds += 1;
    }
    if lowered {
        state.last_shrink = Some(tick);
    }
    let n: usize = tables.iter().map(|(us, _)| us.len()).sum();
    if state.due.len() != n {
        // The first tick (the user count never changes during a run): every user is drawn now.
        state.due = vec![Due::NEVER; n];
        state.index_employees(tables.iter().flat_map(|(us, _)| us.iter()));
    }
    // Staff of newly banning orgs are marked (on a tick that visits everyone anyway, every user's choice is
    // checked instead).
    let newly_banning = view.bans.newly_banning();
    debug_assert_eq!(state.n_orgs, view.bans.len(), "the ban list and the staff index cover the same orgs");
    debug_assert!(tick < MARKED.wrapping_sub(1) as u32, "ticks fit the due column (runs are at most 50 years)");
    let mut force = state.market.may_force(view.offers);
    if !newly_banning.is_empty() {
        if rebuild || force {
            force = true;
        } else {
            let EventState { due, employee_start, employee_rows, .. } = &mut *state;
            for &o in newly_banning {
                let (a, b) = (employee_start[o as usize] as usize, employee_start[o as usize + 1] as usize);
                for &row in &employee_rows[a..b] {
                    due[row as usize].0 = MARKED;
                }
            }
        }
    }
    state.forced_ticks += (force || !newly_banning.is_empty()) as u32;
    state.full_ticks += (force || rebuild) as u32;
    let vector = avx2(workers.vector_test);
    let mut due = std::mem::take(&mut state.due);
    let mut total = Counts::default();
    {
        let mut ctx = Ctx::new(view, state, &needed, seed, tick);
        (ctx.changed, ctx.force) = (rebuild.then_some(changed), force);
        let mut rest = &mut due[..];
        for (us, sts) in tables.iter_mut() {
            let (dues, tail) = std::mem::take(&mut rest).split_at_mut(us.len());
            rest = tail;
            // Most ticks touch few users: batches large enough to pay for their counts.
            // Boxed: a batch's counts are kilobytes, moved a few times on their way back from a task.
            let parts = workers.map_batches3(MIN_BATCH, us, sts, dues, |us, sts, dues| {
                let mut c = Box::<Counts>::default();
                #[cfg(target_arch = "x86_64")]
                if vector {
                    // SAFETY: `avx2` found the feature on this CPU.
                    unsafe { pass_avx2(&ctx, &mut c, us, sts, dues) };
                    return c;
                }
                pass::<false>(&ctx, &mut c, us, sts, dues);
                c
            });
            for p in &parts {
                total.plus.add(&p.plus);
                total.minus.add(&p.minus);
                total.touched += p.touched;
            }
        }
    }
    state.due = due;
    state.touched += total.touched;
    state.market.update(view.offers);
    state.day += view.offers.tick_days as u32;
    total
}

/// Last tick's tally plus what changed this tick; the waitlist is this tick's alone.
fn apply(tally: &mut UserTally, total: &Counts) {
    for j in 0..MAX_FIRMS {
        for s in 0..4 {
            tally.users[j][s] =
                tally.users[j][s].wrapping_add(total.plus.users[j][s]).wrapping_sub(total.minus.users[j][s]);
            tally.paying[j][s] =
                tally.paying[j][s].wrapping_add(total.plus.paying[j][s]).wrapping_sub(total.minus.paying[j][s]);
        }
        tally.aware[j] += total.plus.aware[j];
        tally.waitlisted[j] = total.plus.waitlisted[j];
    }
    tally.aware_any += total.plus.aware_any;
}

/// Phases `Awareness`, `Choice`, `Subscriptions` and the user tally of `Accounting`, event-driven (what runs
/// use): only users with a candidate decision due this tick, or whose choice a change of the market forces,
/// go through the kernels. Reads `Offers`, `BanList`, `Clock`, `RunInfo`, `User`; writes `UserState`, `Due`,
/// `EventState` and `UserTally` (last tick's counts plus what changed: integers summed per batch).
pub fn step_users_by_events(
    workers: Res<Workers>,
    mut tally: ResMut<UserTally>,
    mut state: ResMut<EventState>,
    market: MarketView,
    mut users: Query<(&User, &mut UserState)>,
) {
    let view = market.view();
    let (seed, tick) = (market.info.seed, market.clock.tick);
    match users.contiguous_iter_mut() {
        Ok(tables) => {
            let mut tables: Vec<_> = tables.collect();
            let mut slices: Vec<Slices> =
                tables.iter_mut().map(|(us, sts)| (*us, sts.bypass_change_detection())).collect();
            let total = tick_pass(&mut state, &workers, view, seed, tick, &mut slices);
            apply(&mut tally, &total);
        }
        // Not reached (users are stored in tables); kept so that a change of storage cannot fail a run: the
        // same pass over copies of the columns (in the query's order, which is the tables'), written back.
        Err(_) => {
            let mut rows: Vec<_> = users.iter_mut().collect();
            let us: Vec<User> = rows.iter().map(|(u, _)| **u).collect();
            let mut sts: Vec<UserState> = rows.iter().map(|(_, st)| **st).collect();
            let total = tick_pass(&mut state, &workers, view, seed, tick, &mut [(&us, &mut sts)]);
            for ((_, st), s) in rows.iter_mut().zip(sts) {
                *st.bypass_change_detection() = s;
            }
            apply(&mut tally, &total);
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::model::rng::prob_threshold;
    use crate::sim::users::{TickView, step_user, tests::population};

    const ORGS: usize = 12;
    const TICKS: u32 = 240;
    /// The time of an event that never came (ticks run from 1 to `TICKS`).
    const NEVER_T: f64 = (TICKS + 1) as f64;

    /// A market with three chatbots (hazards × `k`, ticks of `days` days) that changes over time the ways a
    /// run's market does: word of mouth triples the learning hazards at tick 100 (a rebuild), an org starts
    /// banning at tick 60 and another at 150 (its staff marked), chatbot 1 becomes paid-only and dearer at tick
    /// 120, chatbot 2 closes at tick 180 (every user checked; its learning threshold is left above 0 on
    /// purpose: a closed chatbot must not be learnt of whatever it says), chatbot 0's paid plan becomes free at
    /// tick 210. Chatbot 0 is at capacity (a waitlist, message caps) throughout.
    fn market(tick: u32, k: f64, days: u16) -> (Offers, BanList) {
        let mut o = Offers { n_firms: 3, chat_open: 0b111, ban_subject: 0b011, ..Offers::default() };
        let wom = if tick >= 100 { 3.0 } else { 1.0 };
        for s in 0..4 {
            for j in 0..3 {
                o.aware_thr[s][j] = prob_threshold(k * wom * 0.004 * (1 + s + j) as f64);
                for c in 0..TASTE_CLASSES {
                    o.weight[s][c][j] = 0.5 + (s + c + j) as f32 * 0.25;
                }
            }
            o.outside[s] = 1.0;
            o.loyalty[s] = 3.0;
            o.trial[s] = 2.0;
            o.reconsider_thr[s] = prob_threshold(k * 0.01 * (s + 1) as f64);
        }
        o.sub_price[..3].copy_from_slice(&[20.0, 10.0, 5.0]);
        if tick >= 120 {
            o.paid_only = 0b010;
            o.sub_price[1] = 25.0;
        }
        for j in 0..3 {
            o.convert_thr[j] = prob_threshold(k * 0.01 * (1 + j) as f64);
            o.convert_half_thr[j] = prob_threshold(k * 0.005 * (1 + j) as f64);
        }
        o.churn_thr = [0.02, 0.01, 0.005].map(|p| prob_threshold(k * p));
        o.admit_thr[0] = prob_threshold(0.7);
        o.capped_churn_thr[0] = prob_threshold(0.004);
        if tick >= 180 {
            o.chat_open = 0b011;
        }
        if tick >= 210 {
            (o.sub_price[0], o.convert_thr[0], o.convert_half_thr[0]) = (0.0, 0, 0);
        }
        o.tick_days = days;
        // The list as the last organisation phase left it: org 3 starts banning at tick 60, org 7 at 150.
        let mut bans = BanList::new(ORGS);
        bans.set(3, tick > 60);
        bans.set(7, tick > 150);
        bans.start_phase();
        bans.set(3, tick >= 60);
        bans.set(7, tick >= 150);
        (o, bans)
    }

    fn view<'a>(o: &'a Offers, bans: &'a BanList, seed: u64, tick: u32) -> TickView<'a> {
        TickView {
            offers: o,
            bans,
            awareness_key: tick_key(seed, Stream::Awareness, tick),
            choice_key: tick_key(seed, Stream::Choice, tick),
            subscription_key: tick_key(seed, Stream::Subscription, tick),
            capacity_key: tick_key(seed, Stream::Capacity, tick),
        }
    }

    /// What happened to each user: the first tick it knew a chatbot, had a provider, paid; the tick it last
    /// changed provider; its provider at the end (`NEVER_T` where an event never came).
    #[derive(Default)]
    struct Times {
        aware: Vec<f64>,
        adopted: Vec<f64>,
        paid: Vec<f64>,
        last_switch: Vec<f64>,
        end_provider: Vec<u8>,
        /// Switches to a chatbot, and those after which the user pays (decisions in one tick that depend on
        /// each other: a conversion at half the hazard, or a paid-only plan's first churn draw).
        switches: usize,
        paid_at_switch: usize,
        /// The first tick a paying user stopped paying.
        churned: Vec<f64>,
        /// At the end: the chatbots each user knows, and whether it pays.
        end_aware: Vec<u32>,
        end_paying: Vec<bool>,
    }

    impl Times {
        fn new(n: usize) -> Times {
            let never = vec![NEVER_T; n];
            Times {
                aware: never.clone(),
                adopted: never.clone(),
                paid: never.clone(),
                last_switch: never.clone(),
                churned: never,
                ..Times::default()
            }
        }

        fn end(&mut self, sts: &[UserState]) {
            self.end_provider = sts.iter().map(|st| st.provider).collect();
            self.end_aware = sts.iter().map(|st| st.aware).collect();
            self.end_paying = sts.iter().map(|st| st.paid_days > 0).collect();
        }

        fn observe(&mut self, tick: u32, before: &[UserState], after: &[UserState]) {
            for (i, (b, a)) in before.iter().zip(after).enumerate() {
                let t = tick as f64;
                if a.aware != 0 && b.aware == 0 {
                    self.aware[i] = t;
                }
                if a.provider != NONE && self.adopted[i] == NEVER_T {
                    self.adopted[i] = t;
                }
                if a.paid_days > 0 && self.paid[i] == NEVER_T {
                    self.paid[i] = t;
                }
                if a.provider != b.provider {
                    self.last_switch[i] = t;
                }
                if a.paid_days == 0 && b.paid_days > 0 && self.churned[i] == NEVER_T {
                    self.churned[i] = t;
                }
                if a.provider != b.provider && a.provider != NONE {
                    self.switches += 1;
                    self.paid_at_switch += (a.paid_days > 0) as usize;
                }
            }
        }
    }

    /// The per-tick sampler (the fused kernels) over `us` for `TICKS` ticks; `scale` multiplies the learning
    /// thresholds (1: the model).
    fn per_tick(us: &[User], (k, days): (f64, u16), seed: u64, scale: f64) -> Times {
        let mut sts = vec![UserState { provider: NONE, ..UserState::default() }; us.len()];
        let mut times = Times::new(us.len());
        for tick in 1..=TICKS {
            let (mut o, bans) = market(tick, k, days);
            for row in o.aware_thr.iter_mut() {
                for x in row.iter_mut() {
                    *x = prob_threshold(*x as f64 / 18_446_744_073_709_551_616.0 * scale);
                }
            }
            let t = view(&o, &bans, seed, tick);
            let before = sts.clone();
            let mut tally = UserTally::default();
            for (u, st) in us.iter().zip(&mut sts) {
                step_user(&t, &mut tally, u, st);
            }
            times.observe(tick, &before, &sts);
        }
        times.end(&sts);
        times
    }

    /// The event-driven pass over `us` for `TICKS` ticks on `threads` threads; checks at every tick that its
    /// tally (last tick's plus what changed) equals a count of the users' states.
    fn by_events(us: &[User], (k, days): (f64, u16), seed: u64, threads: usize) -> (Times, EventState) {
        let mut sts = vec![UserState { provider: NONE, ..UserState::default() }; us.len()];
        let mut state = EventState::new(ORGS);
        let workers = Workers::new(threads, false);
        let mut tally = UserTally::default();
        let mut times = Times::new(us.len());
        for tick in 1..=TICKS {
            let (o, bans) = market(tick, k, days);
            let before = sts.clone();
            let total = tick_pass(&mut state, &workers, view(&o, &bans, seed, tick), seed, tick, &mut [(us, &mut sts)]);
            apply(&mut tally, &total);
            let mut counted = UserTally::default();
            for (u, st) in us.iter().zip(&sts) {
                count_provider(&mut counted, u, st);
                count_learnt(&mut counted, 0, st.aware);
            }
            assert_eq!(
                (tally.users, tally.paying, tally.aware, tally.aware_any),
                (counted.users, counted.paying, counted.aware, counted.aware_any),
                "tick {tick}"
            );
            assert!(sts.iter().all(|st| !st.switched), "tick {tick}: a switch flag outlived its tick");
            // Every choice the market forced was made this tick: each provider is open to its user.
            for (u, st) in us.iter().zip(&sts).filter(|(_, st)| st.provider != NONE) {
                let j = firm(st.provider);
                let banned = bans.bans(u.employer_index()) && !u.shadow() && (o.ban_subject >> j) & 1 == 1;
                let unaffordable = (o.paid_only >> j) & 1 == 1 && u.wtp < o.sub_price[j];
                let closed = (o.chat_open >> j) & 1 == 0;
                assert!(!banned && !unaffordable && !closed, "tick {tick}: user {} kept chatbot {j}", u.id.0);
                let free = st.paid_days > 0 && o.sub_price[j] <= 0.0;
                assert!(!free, "tick {tick}: user {} still pays for a free plan", u.id.0);
            }
            assert!(state.due.iter().all(|d| d.0 > tick as u16), "tick {tick}: a user due now was left behind");
            times.observe(tick, &before, &sts);
        }
        times.end(&sts);
        (times, state)
    }

    /// Two-sample Kolmogorov–Smirnov test: the asymptotic p-value of the largest gap between the empirical
    /// distribution functions (ties are stepped over together, which makes the test conservative).
    pub(in crate::sim) fn ks_p(a: &[f64], b: &[f64]) -> f64 {
        let (mut a, mut b) = (a.to_vec(), b.to_vec());
        a.sort_by(f64::total_cmp);
        b.sort_by(f64::total_cmp);
        let (na, nb) = (a.len() as f64, b.len() as f64);
        let (mut i, mut j, mut d) = (0, 0, 0f64);
        while i < a.len() && j < b.len() {
            let x = a[i].min(b[j]);
            while i < a.len() && a[i] <= x {
                i += 1;
            }
            while j < b.len() && b[j] <= x {
                j += 1;
            }
            d = d.max((i as f64 / na - j as f64 / nb).abs());
        }
        let ne = na * nb / (na + nb);
        let lambda = (ne.sqrt() + 0.12 + 0.11 / ne.sqrt()) * d;
        // Q(λ) is 1 to within 1e-9 below 0.2, where the series below has not converged after 100 terms.
        if lambda < 0.2 {
            return 1.0;
        }
        let q: f64 = (1..=100)
            .map(|k| (if k % 2 == 1 { 2.0 } else { -2.0 }) * (-2.0 * (k * k) as f64 * lambda * lambda).exp())
            .sum();
        q.clamp(0.0, 1.0)
    }

    /// Two-proportion z-test p-value (two-sided) of `x1` of `n1` against `x2` of `n2`.
    pub(in crate::sim) fn two_proportions_p(x1: usize, n1: usize, x2: usize, n2: usize) -> f64 {
        let (p1, p2) = (x1 as f64 / n1 as f64, x2 as f64 / n2 as f64);
        let p = (x1 + x2) as f64 / (n1 + n2) as f64;
        let se = (p * (1.0 - p) * (1.0 / n1 as f64 + 1.0 / n2 as f64)).sqrt();
        if se == 0.0 {
            return if p1 == p2 { 1.0 } else { 0.0 };
        }
        let z = ((p1 - p2) / se).abs();
        use statrs::distribution::{ContinuousCDF, Normal};
        2.0 * Normal::standard().sf(z)
    }

    /// The p-values of every comparison between two samplers' event times and final choices.
    fn compare(a: &Times, b: &Times) -> Vec<(String, f64)> {
        let mut out = vec![
            ("first learnt".to_string(), ks_p(&a.aware, &b.aware)),
            ("first provider".to_string(), ks_p(&a.adopted, &b.adopted)),
            ("first paid".to_string(), ks_p(&a.paid, &b.paid)),
            ("last switch".to_string(), ks_p(&a.last_switch, &b.last_switch)),
        ];
        out.push((
            "paid at a switch".to_string(),
            two_proportions_p(a.paid_at_switch, a.switches, b.paid_at_switch, b.switches),
        ));
        out.push(("first churn".to_string(), ks_p(&a.churned, &b.churned)));
        let n = a.end_provider.len();
        for j in [0, 1, 2, NONE] {
            let count = |t: &Times| t.end_provider.iter().filter(|&&p| p == j).count();
            out.push((format!("provider {j} at the end"), two_proportions_p(count(a), n, count(b), n)));
            let paying =
                |t: &Times| t.end_provider.iter().zip(&t.end_paying).filter(|(p, pays)| **p == j && **pays).count();
            out.push((format!("paying for {j} at the end"), two_proportions_p(paying(a), n, paying(b), n)));
            if j != NONE {
                let knows = |t: &Times| t.end_aware.iter().filter(|&&x| (x >> j) & 1 == 1).count();
                out.push((format!("knows {j} at the end"), two_proportions_p(knows(a), n, knows(b), n)));
            }
        }
        out
    }

    /// The event-driven sampler is a change of sampling, not of the model: on a market with rising word of
    /// mouth, bans, a plan turned paid-only, a chatbot closing and a paid plan made free, the times at which
    /// users first learn, adopt
    /// and pay, their last switch and their final choice have the same distributions as under the per-tick
    /// sampler (two-sample tests over 40,000 independent users each: with the market fixed, users do not
    /// interact), and so do their first churn and, per chatbot, the users who know it and who pay for it at the
    /// end. Three times: at hazards like a run's, ten times higher (several decisions of a user often fall in
    /// one tick), and ten times higher with weekly ticks (the tenure clock in steps of 7 days). The same tests
    /// tell a 10% change of one hazard apart.
    #[test]
    fn event_driven_sampler_agrees_with_per_tick_in_distribution() {
        let (us, _) = population(40_000, 0);
        for (k, days) in [(1.0, 1), (10.0, 1), (10.0, 7)] {
            let case = format!("×{k}, {days}-day ticks");
            let reference = per_tick(&us, (k, days), 11, 1.0);
            let (events, state) = by_events(&us, (k, days), 12, 1);
            let touched = state.touched as f64 / (us.len() as f64 * TICKS as f64);
            eprintln!(
                "{case}: {} rebuilds, {} forced ticks, {touched:.4} of user-ticks touched",
                state.rebuilds, state.forced_ticks
            );
            assert!(
                state.rebuilds >= 2 && state.forced_ticks >= 5,
                "{case}: {} rebuilds, {} forced ticks",
                state.rebuilds,
                state.forced_ticks
            );
            for (what, p) in compare(&reference, &events) {
                eprintln!("{case}, {what}: p = {p:.3}");
                assert!(p > 1e-3, "{case}, {what}: the samplers differ (p = {p:.2e})");
            }
            // Power: learning hazards 10% higher are told apart.
            let faster = per_tick(&us, (k, days), 13, 1.1);
            let p = ks_p(&reference.aware, &faster.aware);
            eprintln!("{case}, 10% faster learning: p = {p:.2e}");
            assert!(p < 1e-3, "{case}: a 10% faster learning hazard went unnoticed (p = {p:.2e})");
        }
    }

    /// The AVX2 scan of the due column finds the same users as the plain one: blocks of random due ticks
    /// around the tick, the extremes (0 = marked, `Due::NEVER`) and the ticks at the ends of the range.
    #[test]
    fn vector_scan_of_the_due_column_equals_the_plain_one() {
        #[cfg(target_arch = "x86_64")]
        if !std::arch::is_x86_feature_detected!("avx2") {
            eprintln!("skipped: this CPU has no AVX2 (the vector scan is never used on it)");
            return;
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            eprintln!("skipped: not an x86-64 CPU (the vector scan is never used on it)");
            return;
        }
        #[allow(unreachable_code)]
        let mut rng = CounterRng::new(tick_key(1, Stream::Due, 0), 0);
        for case in 0..2000u32 {
            let tick = match case % 4 {
                0 => 0,
                1 => u16::MAX - 1,
                _ => (rng.draw() % 2000) as u16,
            };
            let block: Vec<Due> = (0..64)
                .map(|_| match rng.draw() % 8 {
                    0 => Due(MARKED),
                    1 => Due::NEVER,
                    2 => Due(tick),
                    3 => Due(tick.saturating_add(1)),
                    _ => Due(tick.saturating_sub(3).saturating_add((rng.draw() % 7) as u16)),
                })
                .collect();
            // The plain scan, written out as a count of the users due: it must agree with the bits.
            let plain = due_bits::<false>(&block, tick);
            assert_eq!(plain.count_ones() as usize, block.iter().filter(|d| d.0 <= tick).count());
            assert_eq!(due_bits::<true>(&block, tick), plain, "case {case}, tick {tick}: {block:?}");
            // A short last block takes the plain path either way.
            assert_eq!(due_bits::<true>(&block[..37], tick), plain & ((1 << 37) - 1));
        }
    }

    /// The folds over a user's kinds read from the tables of [`UnknownSets`] give the bits the walk over the
    /// chatbots gives, for every set of chatbots still to learn of, with and without a provider; a segment
    /// with a learnable chatbot of index `MEMO_BITS` or more has no table and is walked.
    #[test]
    fn tabulated_folds_over_unknown_chatbots_equal_the_walk() {
        let mut bound = Rates::default();
        let mut x = 0.37f64;
        for s in 0..4 {
            // Segment 3 can learn of chatbot MEMO_BITS + 2 too (no table there).
            let n = if s == 3 { MEMO_BITS as usize + 3 } else { 7 };
            for j in (0..n).filter(|j| (j + s) % 4 != 1) {
                x = (x * 3.7 + 0.11).fract();
                bound.aware[s][j] = 0.2 * x * x;
            }
            bound.attention[s] = 0.01 * (s + 1) as f64;
        }
        bound.convert[2] = 0.03;
        bound.churn[2] = 0.004;
        let mut state = EventState::new(ORGS);
        state.ln = bound.map(|b| (-b).ln_1p());
        state.keep = bound.map(|b| 1.0 - b);
        state.unknown = UnknownSets::new(&state.ln, &state.keep, learnable(&bound));
        state.bound = bound;
        assert!((0..3).all(|s| !state.unknown.ln[s].is_empty()) && state.unknown.ln[3].is_empty());
        let (o, bans) = market(1, 1.0, 1);
        let ctx = Ctx::new(view(&o, &bans, 1, 1), &state, &Rates::needed(&o), 1, 1);
        let none = [const { Vec::new() }; 4];
        let (us, _) = population(400, 0);
        let mut checked = 0;
        for u in &us {
            let s = u.segment();
            for aware in (0..1u32 << (MEMO_BITS + 3)).step_by(if s == 3 { 37 } else { 1 }) {
                for (provider, paid_days) in [(NONE, 0), (2, 0), (2, 5)] {
                    let st = UserState { aware, provider, paid_days, switched: false };
                    let tabulated = ctx.fold_kinds(u, &st, ctx.ln, &ctx.unknown.ln, -0.0, |a, b| a + b);
                    let walked = ctx.fold_kinds(u, &st, ctx.ln, &none, -0.0, |a, b| a + b);
                    assert_eq!((tabulated.0.to_bits(), tabulated.1), (walked.0.to_bits(), walked.1));
                    let tabulated = ctx.fold_kinds(u, &st, ctx.keep, &ctx.unknown.keep, 1.0, |a, b| a * b);
                    let walked = ctx.fold_kinds(u, &st, ctx.keep, &none, 1.0, |a, b| a * b);
                    assert_eq!((tabulated.0.to_bits(), tabulated.1), (walked.0.to_bits(), walked.1));
                    checked += 1;
                }
            }
            if checked > 200_000 {
                break;
            }
        }
        assert!(checked > 200_000);
    }

    /// The event-driven pass gives the same states whatever the thread count (batches of `MIN_BATCH` users
    /// summed in order).
    #[test]
    fn event_driven_pass_is_independent_of_threads() {
        let (us, _) = population(3 * MIN_BATCH as u32 + 100, 0);
        let (a, sa) = by_events(&us, (1.0, 1), 5, 1);
        let (b, sb) = by_events(&us, (1.0, 1), 5, 3);
        assert_eq!(a.end_provider, b.end_provider);
        assert_eq!(a.paid, b.paid);
        assert_eq!((sa.touched, sa.rebuilds), (sb.touched, sb.rebuilds));
    }
}
