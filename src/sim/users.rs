//! User phases (3 awareness, 4 choice, 5 subscriptions) and the user tally of phase 7, as parallel loops.
//!
//! Each phase is a per-user kernel (`learn`, `reconsider`, `subscribe`, `count`) that reads only the user, its
//! own state and this tick's market view (`Offers`, `BanList`), none of which another user's phases change. So
//! the kernels can run phase by phase over all users (one system per phase: the reference, and what the phase
//! benchmarks time) or one user at a time through all of them ([`step_users`], one pass over memory), with
//! byte-identical results; a test checks this on every run it makes. These are the per-tick samplers: a draw
//! per user, tick and possible decision. Runs use the event-driven sampler (`sim::events`), which takes the
//! users with a decision due through the same kernels and agrees with these in distribution.
//!
//! The fused pass skips "quiet" users: those with no provider (and no switch to clear) whose draws this tick
//! all miss, to whom the kernels would do nothing (most users on most days). Where the CPU has AVX-512
//! (detected at run time) it finds them 64 at a time in vector registers; otherwise it tests one user at a
//! time for the commonest case. Either way the results are the kernels' own (`block_pass_equals_user_by_user`).
//!
//! Every user's draws come from a counter-based generator keyed by (seed, stream, tick, UserId), and the
//! tally sums integers per thread, so results are identical for any thread count.

use super::components::*;
use super::resources::*;
use crate::model::choice::{NONE, choose};
use crate::model::rng::{CounterRng, Stream, agent_key, counter_draw, tick_key};
use bevy_ecs::batching::BatchingStrategy;
use bevy_ecs::prelude::*;
use bevy_ecs::system::SystemParam;
use bevy_utils::Parallel;

/// What the user kernels read in one tick: the market view and the tick's random-stream keys.
#[derive(Clone, Copy)]
pub(super) struct TickView<'a> {
    pub(super) offers: &'a Offers,
    pub(super) bans: &'a BanList,
    pub(super) awareness_key: u64,
    pub(super) choice_key: u64,
    pub(super) subscription_key: u64,
    pub(super) capacity_key: u64,
}

/// The resources every user system reads: this tick's market view, the clock and the run's seed.
#[derive(SystemParam)]
pub struct MarketView<'w> {
    pub(super) offers: Res<'w, Offers>,
    pub(super) bans: Res<'w, BanList>,
    pub(super) clock: Res<'w, Clock>,
    pub(super) info: Res<'w, RunInfo>,
}

impl MarketView<'_> {
    pub(super) fn view(&self) -> TickView<'_> {
        let (seed, tick) = (self.info.seed, self.clock.tick);
        TickView {
            offers: &self.offers,
            bans: &self.bans,
            awareness_key: tick_key(seed, Stream::Awareness, tick),
            choice_key: tick_key(seed, Stream::Choice, tick),
            subscription_key: tick_key(seed, Stream::Subscription, tick),
            capacity_key: tick_key(seed, Stream::Capacity, tick),
        }
    }
}

/// How a pass over users is cut into tasks: many per thread, so that a thread slowed down (a shared machine,
/// another process) does not leave the others idle at the end of the pass; none too small to pay for itself.
fn batching() -> BatchingStrategy {
    BatchingStrategy::new().batches_per_thread(32).min_batch_size(4096)
}

/// A firm index (not `NONE`) as an index into per-firm tables (`MAX_FIRMS` = 32 entries).
#[inline(always)]
pub(super) fn firm(j: u8) -> usize {
    (j & 31) as usize
}

/// Awareness kernel: each open chatbot the user does not know yet is learnt with the tick's Bass hazard.
/// Sets `aware`; returns the chatbots learnt.
#[inline(always)]
fn learn(t: &TickView, u: &User, st: &mut UserState) -> u32 {
    let offers = t.offers;
    let mut candidates = offers.chat_open & !st.aware;
    if candidates == 0 {
        return 0;
    }
    let thr = &offers.aware_thr[u.segment()];
    let mut rng = CounterRng::new(t.awareness_key, u.id.0 as u64);
    let mut gained = 0u32;
    while candidates != 0 {
        let j = candidates.trailing_zeros() as usize;
        candidates &= candidates - 1;
        if rng.hit(thr[j]) {
            gained |= 1 << j;
        }
    }
    st.aware |= gained;
    gained
}

/// Choice kernel: a user reconsiders with the segment's attention hazard, at once on learning of a new
/// chatbot (`newly_aware`), and always when its provider closed or its employer banned it. Sets `provider`
/// (a switch cancels a subscription) and `switched`. A switch to a chatbot at capacity gets in with the
/// firm's admission probability (its own draw, on the capacity stream); a user turned away stays where it
/// was (with no provider if its provider closed). Returns the chatbot that turned the user away, or `NONE`.
#[inline(always)]
fn reconsider(t: &TickView, u: &User, st: &mut UserState, newly_aware: u32) -> u8 {
    reconsider_by(t, u, st, newly_aware, 1, |rng, thr| rng.hit(thr))
}

/// [`reconsider`] with the attention draw and the paid-plan mark given by the caller: `attention` gets the
/// user's choice-stream generator (its first draw is the attention draw; the logit draw is the next) and the
/// threshold, and says whether the user reconsiders (it is not called when the choice is forced); `paid_start` is what `paid_days` becomes on a switch to
/// a paid-only plan (1 for the per-tick sampler; the event-driven one stores a day mark, `sim::events`).
#[inline(always)]
pub(super) fn reconsider_by(
    t: &TickView,
    u: &User,
    st: &mut UserState,
    newly_aware: u32,
    paid_start: u16,
    attention: impl FnOnce(&mut CounterRng, u64) -> bool,
) -> u8 {
    if st.aware == 0 {
        return NONE;
    }
    let offers = t.offers;
    st.switched = false;
    let s = u.segment();
    let allowed = allowed(t, u, st.aware);
    let cur = st.provider;
    let cur_ok = cur == NONE || (allowed >> cur) & 1 == 1;
    let new = newly_aware & allowed;
    let forced = !cur_ok || (new != 0 && offers.reconsider_on_awareness);
    let mut rng = CounterRng::new(t.choice_key, u.id.0 as u64);
    if !forced && !attention(&mut rng, offers.reconsider_thr[s]) {
        return NONE;
    }
    let keep = if cur_ok { cur } else { NONE };
    let mut pick = choose(
        &offers.weight[s][u.taste()],
        allowed,
        keep,
        offers.loyalty[s],
        offers.outside[s],
        new,
        offers.trial[s],
        rng.uniform(),
    );
    let mut waitlisted = NONE;
    if pick != keep && pick != NONE && offers.admit_thr[firm(pick)] != u64::MAX {
        let mut wait = CounterRng::new(t.capacity_key, u.id.0 as u64);
        if !wait.hit(offers.admit_thr[firm(pick)]) {
            waitlisted = pick;
            pick = keep;
        }
    }
    if pick != cur {
        st.provider = pick;
        st.switched = true;
        st.paid_days = if pick != NONE && (offers.paid_only >> pick) & 1 == 1 { paid_start } else { 0 };
    }
    waitlisted
}

/// The chatbots open to a user who knows `aware` this tick: open, not banned by its employer (unless it uses
/// them in the shadow), and not a paid-only plan above what it would pay.
#[inline(always)]
pub(super) fn allowed(t: &TickView, u: &User, aware: u32) -> u32 {
    let offers = t.offers;
    let mut allowed = aware & offers.chat_open;
    // Without a branch (whether a user's employer bans is as good as random here): the chatbots subject to
    // bans are taken out when it bans and the user is not a shadow user.
    let banned = t.bans.bans(u.employer_index()) & !u.shadow();
    allowed &= !(offers.ban_subject & (banned as u32).wrapping_neg());
    let mut paid_only = allowed & offers.paid_only;
    while paid_only != 0 {
        let j = paid_only.trailing_zeros() as usize;
        paid_only &= paid_only - 1;
        if u.wtp < offers.sub_price[j] {
            allowed &= !(1 << j);
        }
    }
    allowed
}

/// How a paying user's tenure is kept in `UserState::paid_days`.
#[derive(Clone, Copy)]
pub(super) enum PaidClock {
    /// Per-tick samplers: 1 + days on the plan, counted up every tick.
    Count,
    /// Event-driven sampler: a day mark `m`; the tenure is `day + 1 − m` (`day`: days before this tick), and a
    /// user converting this tick gets the mark `convert` (tenure 0 at the next tick).
    Mark { day: u16, convert: u16 },
}

impl PaidClock {
    /// Days on the plan of a paying user whose `paid_days` is `paid` (above 0), before this tick's draw.
    #[inline(always)]
    pub(super) fn tenure(self, paid: u16) -> u16 {
        match self {
            PaidClock::Count => paid - 1,
            PaidClock::Mark { day, .. } => day.saturating_add(1).saturating_sub(paid),
        }
    }
}

/// Subscription kernel: free users whose willingness to pay covers the price convert; paying users churn
/// by tenure (at the first-month rate when the price rose above what they would pay). Sets `paid_days`
/// (and `provider` when a paid-only plan is cancelled).
#[inline(always)]
fn subscribe(t: &TickView, u: &User, st: &mut UserState) {
    subscribe_by(t, u, st, PaidClock::Count, None)
}

/// [`subscribe`] with the tenure kept by `clock` and, when `decided` is given, its outcome (whether a paying
/// user churns or a free one converts) decided by the caller instead of drawn here.
#[inline(always)]
pub(super) fn subscribe_by(t: &TickView, u: &User, st: &mut UserState, clock: PaidClock, decided: Option<bool>) {
    let j = st.provider;
    if j == NONE {
        return;
    }
    let (offers, id) = (t.offers, u.id.0 as u64);
    let price = offers.sub_price[firm(j)];
    if st.paid_days > 0 {
        if price <= 0.0 {
            st.paid_days = 0;
            return;
        }
        let churns = decided.unwrap_or_else(|| {
            let class = churn_class(u, price, clock.tenure(st.paid_days));
            // Message caps of a firm at capacity add their own churn, drawn on the capacity stream.
            let capped = offers.capped_churn_thr[firm(j)];
            let capped_out = capped != 0 && CounterRng::new(t.capacity_key, id ^ CAPPED).hit(capped);
            CounterRng::new(t.subscription_key, id).hit(offers.churn_thr[class]) || capped_out
        });
        if churns {
            st.paid_days = 0;
            if (offers.paid_only >> j) & 1 == 1 {
                st.provider = NONE;
            }
        } else if let PaidClock::Count = clock {
            st.paid_days = st.paid_days.saturating_add(offers.tick_days);
        }
    } else if price > 0.0 && u.wtp >= price {
        let converts = decided.unwrap_or_else(|| {
            let thr = if st.switched { offers.convert_half_thr[firm(j)] } else { offers.convert_thr[firm(j)] };
            CounterRng::new(t.subscription_key, id).hit(thr)
        });
        if converts {
            st.paid_days = match clock {
                PaidClock::Count => 1,
                PaidClock::Mark { convert, .. } => convert,
            };
        }
    }
}

/// The churn class of a paying user with `tenure` days on the plan: 0 (the first month's rate) in its first
/// month or when the price rose above what it would pay, 1 in months 2–6, 2 after.
#[inline(always)]
pub(super) fn churn_class(u: &User, price: f32, tenure: u16) -> usize {
    if u.wtp < price || tenure < 31 {
        0
    } else if tenure < 183 {
        1
    } else {
        2
    }
}

/// Tells a paying user's message-cap draw from its waitlist draw on the capacity stream (both keyed by user).
const CAPPED: u64 = 1 << 40;

/// Tally kernel: adds the user to the integer counts of its provider and segment and of the chatbots it knows.
#[inline(always)]
fn count(local: &mut UserTally, u: &User, st: &UserState) {
    count_learnt(local, 0, st.aware);
    count_provider(local, u, st);
}

/// Counts a sign-up turned away by chatbot `j` (`NONE`: none).
#[inline(always)]
pub(super) fn count_waitlisted(local: &mut UserTally, j: u8) {
    if j != NONE {
        local.waitlisted[firm(j)] += 1;
    }
}

/// Adds the user to the counts of its provider and segment.
#[inline(always)]
pub(super) fn count_provider(local: &mut UserTally, u: &User, st: &UserState) {
    if st.provider != NONE {
        let (j, s) = (firm(st.provider), u.segment());
        local.users[j][s] += 1;
        local.paying[j][s] += (st.paid_days > 0) as u64;
    }
}

/// Adds to the awareness counts what a user learnt: the chatbots in `after` but not in `before`.
#[inline(always)]
pub(super) fn count_learnt(local: &mut UserTally, before: u32, after: u32) {
    let mut learnt = after & !before;
    if learnt == 0 {
        return;
    }
    local.aware_any += (before == 0) as u64;
    while learnt != 0 {
        local.aware[learnt.trailing_zeros() as usize] += 1;
        learnt &= learnt - 1;
    }
}

/// Sums the per-thread partial tallies into `tally` and clears them for the next tick. The awareness
/// counts of the partials are either complete (`carry_awareness` false) or what was learnt this tick, added
/// to the last tick's counts: awareness is never lost, so the two agree (the fused-pass test checks it).
fn publish(partial: &mut Parallel<UserTally>, tally: &mut UserTally, carry_awareness: bool) {
    let mut total = UserTally::default();
    if carry_awareness {
        total.aware = tally.aware;
        total.aware_any = tally.aware_any;
    }
    for part in partial.iter_mut() {
        total.add(part);
        *part = UserTally::default();
    }
    *tally = total;
}

/// What the quiet tests read this tick, flattened so that a loop over a block of users vectorises.
#[derive(Clone, Copy)]
struct QuietView {
    open: u32,
    one_open: bool,
    awareness_key: u64,
    choice_key: u64,
    /// The lowest-numbered open chatbot (the only one when `one_open`).
    first_open: usize,
    reconsider_thr: [u64; 4],
    /// Per firm, then segment: the awareness thresholds.
    aware_thr: [[u64; 4]; MAX_FIRMS],
}

impl QuietView {
    fn new(t: &TickView) -> QuietView {
        let o = t.offers;
        QuietView {
            open: o.chat_open,
            one_open: o.chat_open.is_power_of_two(),
            awareness_key: t.awareness_key,
            choice_key: t.choice_key,
            // With no chatbot open this is chatbot 0, which nothing reads (`one_open` is false).
            first_open: firm(o.chat_open.trailing_zeros() as u8),
            reconsider_thr: o.reconsider_thr,
            aware_thr: std::array::from_fn(|j| std::array::from_fn(|s| o.aware_thr[s][j])),
        }
    }
}

// A user is *quiet* this tick when the four kernels would change nothing in its state and count nothing
// for it. That is the case for a user with no provider and no switch to clear (`switched` false) when none
// of its awareness draws hits (one per open chatbot it does not know) and, if it knows some chatbot, its
// attention draw misses (the first draw of `reconsider`, since nothing forces a choice: it has no provider
// to lose and learnt of nothing). Most users are quiet on most days; the pass skips them. Two tests find
// them, both exact (every user either test finds is quiet), neither complete:
// - `quiet`, one user at a time, only for users settled by a single draw (they know no chatbot while one is
//   open, or know every open one) — the common case early in a run, and all a scalar loop gains from;
// - `quiet_mask`, 64 users at a time in vector registers (AVX-512): every user with no provider, one lane
//   per user and open chatbot, which is most users at any date.

/// Whether one draw settles this user's tick: it has no provider (and no switch to clear) and either knows
/// no chatbot while exactly one is open (its one awareness draw) or knows every open chatbot (its
/// attention draw).
#[inline(always)]
fn one_draw_decides(q: &QuietView, st: &UserState) -> bool {
    let knows_none = st.aware == 0;
    let one_to_learn = knows_none & q.one_open;
    let all_known = !knows_none & (q.open & !st.aware == 0);
    (st.provider == NONE) & !st.switched & (one_to_learn | all_known)
}

/// For a user that [`one_draw_decides`] for: whether that draw misses. The key and threshold are
/// selected rather than branched on: early in a run almost every user is one of the two kinds, mixed at
/// random, and a branch on which one was the pass's main cost (about one misprediction per user).
#[inline(always)]
fn draw_misses(q: &QuietView, u: &User, st: &UserState) -> bool {
    let knows_none = st.aware == 0;
    let s = u.segment();
    let key = std::hint::select_unpredictable(knows_none, q.awareness_key, q.choice_key);
    let thr = std::hint::select_unpredictable(knows_none, q.aware_thr[q.first_open][s], q.reconsider_thr[s]);
    counter_draw(agent_key(key, u.id.0 as u64), 1) >= thr
}

/// The user-at-a-time quiet test (see above): true when one draw settles the user's tick and misses.
#[inline(always)]
fn quiet(q: &QuietView, u: &User, st: &UserState) -> bool {
    one_draw_decides(q, st) && draw_misses(q, u, st)
}

/// Users per block of the quiet mask (one bit each).
const BLOCK: usize = 64;

/// The block quiet test (see above): bit i set when user i of the block is quiet. Written as loops over
/// the block with no branch on a user, so that they vectorise. Each user's draws come from the stream it
/// needs first: awareness while some open chatbot is unknown to it, else attention. The awareness draws go
/// chatbot by chatbot, each over the whole block (the draw for chatbot j is the user's draw number 1 + the
/// number of unknown open chatbots below j, as in `learn`); a lane whose user knows j ignores its draw,
/// which costs less in vector registers than a branch would. For a user that knows every open chatbot that
/// draw is always its draw number 1 on the attention stream: the attention draw. Only users that know some
/// chatbot (open or closed) while an open one is unknown to them need a second stream (attention), computed
/// for blocks that hold one.
#[inline(always)]
fn quiet_mask(q: &QuietView, us: &[User], sts: &[UserState]) -> u64 {
    debug_assert!(us.len() == sts.len() && us.len() <= BLOCK);
    let n = us.len().min(sts.len()).min(BLOCK);
    let (us, sts) = (&us[..n], &sts[..n]);
    let mut key = [0u64; BLOCK];
    let mut mixed = false;
    for i in 0..n {
        let (aware, unknown) = (sts[i].aware, q.open & !sts[i].aware);
        mixed |= (unknown != 0) & (aware != 0);
        let stream = if unknown != 0 { q.awareness_key } else { q.choice_key };
        key[i] = agent_key(stream, us[i].id.0 as u64);
    }
    let mut hit = [false; BLOCK];
    // Ends as each user's attention draw (for the users that need one).
    let mut attention = [0u64; BLOCK];
    let mut open = q.open;
    while open != 0 {
        let j = open.trailing_zeros();
        open &= open - 1;
        let below = (1u32 << j) - 1;
        let thr = &q.aware_thr[j as usize];
        for i in 0..n {
            let unknown = q.open & !sts[i].aware;
            let d = counter_draw(key[i], (unknown & below).count_ones() as u64 + 1);
            hit[i] |= ((unknown >> j) & 1 == 1) & (d < thr[us[i].segment()]);
            attention[i] = d;
        }
    }
    if q.open == 0 {
        for i in 0..n {
            attention[i] = counter_draw(key[i], 1);
        }
    }
    if mixed {
        for i in 0..n {
            let (aware, unknown) = (sts[i].aware, q.open & !sts[i].aware);
            let draw = counter_draw(agent_key(q.choice_key, us[i].id.0 as u64), 1);
            attention[i] = if (unknown != 0) & (aware != 0) { draw } else { attention[i] };
        }
    }
    let mut quiet = [false; BLOCK];
    for i in 0..n {
        let (u, st) = (&us[i], &sts[i]);
        let attention_misses = attention[i] >= q.reconsider_thr[u.segment()];
        quiet[i] = (st.provider == NONE) & !st.switched & !hit[i] & ((st.aware == 0) | attention_misses);
    }
    quiet.iter().enumerate().fold(0, |m, (i, &b)| m | (b as u64) << i)
}

/// [`quiet_mask`] compiled for AVX-512 (eight 64-bit multiplications per instruction): call only where
/// [`Simd::detect`] found it.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx512bw")]
fn quiet_mask_avx512(q: &QuietView, us: &[User], sts: &[UserState]) -> u64 {
    quiet_mask(q, us, sts)
}

/// How the pass over a slice of users finds quiet users.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Simd {
    /// One user at a time ([`quiet`]): CPUs without AVX-512 (the block test compiled for them was slower).
    None,
    /// 64 users at a time ([`quiet_mask`]) compiled without vector extensions: tests only, so that the
    /// block path is checked on any CPU.
    #[cfg(test)]
    Portable,
    /// 64 users at a time, AVX-512 (detected at run time).
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Simd {
    /// What this CPU allows, unless the run's options turned the vector test off (`LLM_MARKET_SIMD=off` on
    /// the command line, for comparing the two ways; the results are the same).
    fn detect(vector_test: bool) -> Simd {
        static AVAILABLE: std::sync::OnceLock<Simd> = std::sync::OnceLock::new();
        if !vector_test {
            return Simd::None;
        }
        *AVAILABLE.get_or_init(Simd::available)
    }

    fn available() -> Simd {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512dq")
            && std::arch::is_x86_feature_detected!("avx512vl")
            && std::arch::is_x86_feature_detected!("avx512bw")
        {
            return Simd::Avx512;
        }
        Simd::None
    }

    /// The block quiet mask, or `None` for the user-at-a-time test.
    #[inline(always)]
    fn mask(self, q: &QuietView, us: &[User], sts: &[UserState]) -> Option<u64> {
        match self {
            Simd::None => None,
            #[cfg(test)]
            Simd::Portable => Some(quiet_mask(q, us, sts)),
            // SAFETY: `Simd::Avx512` is only ever detected on a CPU with these features.
            #[cfg(target_arch = "x86_64")]
            Simd::Avx512 => Some(unsafe { quiet_mask_avx512(q, us, sts) }),
        }
    }
}

/// The fused pass over a slice of users: quiet users are skipped, the others go through [`step_user`].
#[inline(always)]
fn step_slice(t: &TickView, q: &QuietView, simd: Simd, local: &mut UserTally, us: &[User], sts: &mut [UserState]) {
    if simd == Simd::None {
        for (u, st) in us.iter().zip(sts) {
            if !quiet(q, u, st) {
                step_user(t, local, u, st);
            }
        }
        return;
    }
    for (uc, sc) in us.chunks(BLOCK).zip(sts.chunks_mut(BLOCK)) {
        let quiet = simd.mask(q, uc, sc).unwrap_or(0);
        let mut busy = !quiet & (u64::MAX >> (BLOCK - uc.len().min(sc.len())));
        while busy != 0 {
            let i = busy.trailing_zeros() as usize;
            busy &= busy - 1;
            step_user(t, local, &uc[i], &mut sc[i]);
        }
    }
}

/// One user through the four kernels, in phase order, on a copy of its state that is stored back (storing
/// only what changed measured slower: the comparison costs more than the write-back it saves).
#[inline(always)]
pub(super) fn step_user(t: &TickView, local: &mut UserTally, u: &User, st: &mut UserState) {
    let before = *st;
    let mut s = before;
    let learnt = learn(t, u, &mut s);
    let waitlisted = reconsider(t, u, &mut s, learnt);
    subscribe(t, u, &mut s);
    count_waitlisted(local, waitlisted);
    count_learnt(local, before.aware, s.aware);
    count_provider(local, u, &s);
    *st = s;
}

/// Phases `Awareness`, `Choice`, `Subscriptions` and the user tally of `Accounting`, fused: one parallel
/// pass, on the run's own [`Workers`], that takes each user that is not quiet through the four kernels in
/// phase order. Reads `Offers`, `BanList`, `Clock`, `RunInfo`, `User`, last tick's `UserTally`; writes
/// `UserState` and `UserTally` (awareness counted as what was learnt added to last tick's counts; the
/// counts are integers summed per batch, so the split cannot change them). Equivalent to the four phase
/// systems because no system between them reads or writes what the kernels touch (`Orgs` reads neither
/// `UserState` nor `UserTally`); `tests/it/determinism.rs` compares the two schedules.
pub fn step_users(
    workers: Res<Workers>,
    mut tally: ResMut<UserTally>,
    market: MarketView,
    mut users: Query<(&User, &mut UserState)>,
) {
    let t = market.view();
    let q = QuietView::new(&t);
    let simd = Simd::detect(workers.vector_test);
    let mut total = UserTally { aware: tally.aware, aware_any: tally.aware_any, ..UserTally::default() };
    // Users live in one table, so the pass runs over its columns as slices: a plain loop the compiler
    // inlines whole, rather than a call per user; the slices are cut into batches for the threads.
    match users.contiguous_iter_mut() {
        Ok(tables) => {
            for (us, mut states) in tables {
                let parts = workers.map_batches(us, states.bypass_change_detection(), |us, sts| {
                    let mut local = UserTally::default();
                    step_slice(&t, &q, simd, &mut local, us, sts);
                    local
                });
                parts.iter().for_each(|p| total.add(p));
            }
        }
        // Not reached (users are stored in tables); kept so that a change of storage cannot fail a run.
        Err(_) => {
            for (u, mut st) in users.iter_mut() {
                if !quiet(&q, u, &st) {
                    step_user(&t, &mut total, u, st.bypass_change_detection());
                }
            }
        }
    }
    *tally = total;
}

/// Phase `Awareness` alone. Reads `Offers`, `Clock`, `RunInfo`, `User`; writes `UserState::aware` and
/// `NewlyAware`.
pub fn spread_awareness(market: MarketView, mut users: Query<(&User, &mut UserState, &mut NewlyAware)>) {
    let t = market.view();
    users.par_iter_mut().batching_strategy(batching()).for_each(|(u, mut st, mut newly)| {
        newly.bypass_change_detection().0 = learn(&t, u, st.bypass_change_detection());
    });
}

/// Phase `Choice` alone. Reads `Offers`, `BanList`, `Clock`, `RunInfo`, `User`; writes
/// `UserState::provider`, `switched` (and cancels a subscription on a switch) and `WaitlistTally`; clears
/// `NewlyAware`.
pub fn choose_provider(
    mut partial: Local<Parallel<UserTally>>,
    mut waitlist: ResMut<WaitlistTally>,
    market: MarketView,
    mut users: Query<(&User, &mut UserState, &mut NewlyAware)>,
) {
    let t = market.view();
    users.par_iter_mut().batching_strategy(batching()).for_each_init(
        || partial.borrow_local_mut(),
        |local, (u, mut st, mut newly)| {
            let newly = std::mem::take(&mut newly.bypass_change_detection().0);
            count_waitlisted(local, reconsider(&t, u, st.bypass_change_detection(), newly));
        },
    );
    let mut total = UserTally::default();
    for part in partial.iter_mut() {
        total.add(part);
        *part = UserTally::default();
    }
    waitlist.0 = total.waitlisted.to_vec();
}

/// Phase `Subscriptions` alone. Reads `Offers`, `Clock`, `RunInfo`, `User`; writes `UserState::paid_days`
/// (and `provider` when a paid-only plan is cancelled).
pub fn update_subscriptions(market: MarketView, mut users: Query<(&User, &mut UserState)>) {
    let t = market.view();
    users
        .par_iter_mut()
        .batching_strategy(batching())
        .for_each(|(u, mut st)| subscribe(&t, u, st.bypass_change_detection()));
}

/// Phase `Accounting` (first) when the user phases run one by one. Reads `User`, `UserState`,
/// `WaitlistTally`; writes
/// `UserTally` (integer counts per firm and segment, summed from per-thread partial tallies).
pub fn tally_users(
    mut partial: Local<Parallel<UserTally>>,
    mut tally: ResMut<UserTally>,
    waitlist: Res<WaitlistTally>,
    users: Query<(&User, &UserState)>,
) {
    users
        .par_iter()
        .batching_strategy(batching())
        .for_each_init(|| partial.borrow_local_mut(), |local, (u, st)| count(local, u, st));
    publish(&mut partial, &mut tally, false);
    for (j, n) in waitlist.0.iter().enumerate() {
        tally.waitlisted[j] = *n;
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::model::rng::{mix64, prob_threshold};

    /// A market with five chatbots and high hazards, so that in a few thousand users every path of the
    /// kernels is taken (learning, reconsidering, forced choices, bans, conversion, churn) next to quiet users.
    fn offers(chat_open: u32) -> Offers {
        let mut o = Offers { n_firms: 5, chat_open, ban_subject: 0b00111, paid_only: 0b01000, ..Offers::default() };
        for s in 0..4 {
            for j in 0..5 {
                o.aware_thr[s][j] = prob_threshold(0.05 * (1 + s + j) as f64);
                for c in 0..TASTE_CLASSES {
                    o.weight[s][c][j] = 0.5 + (s + c + j) as f32 * 0.25;
                }
            }
            o.outside[s] = 1.0;
            o.loyalty[s] = 3.0;
            o.trial[s] = 2.0;
            o.reconsider_thr[s] = prob_threshold(0.1 * (s + 1) as f64);
        }
        // The extremes: certain and impossible draws.
        o.aware_thr[0][2] = u64::MAX;
        o.aware_thr[1][2] = 0;
        o.reconsider_thr[3] = 0;
        o.reconsider_on_awareness = true;
        o.sub_price[..5].copy_from_slice(&[20.0, 0.0, 10.0, 5.0, 0.0]);
        for j in 0..5 {
            o.convert_thr[j] = prob_threshold(0.2);
            o.convert_half_thr[j] = prob_threshold(0.1);
        }
        o.churn_thr = [prob_threshold(0.3), prob_threshold(0.1), prob_threshold(0.05)];
        // Chatbot 1 is at capacity (half its sign-ups wait); chatbot 0's paying users meet message caps.
        o.admit_thr[1] = prob_threshold(0.5);
        o.capped_churn_thr[0] = prob_threshold(0.1);
        o.tick_days = 1;
        o
    }

    /// Users and states of every kind, quiet ones (knowing nothing, or every open chatbot, with no
    /// provider) among the most frequent.
    pub(in crate::sim) fn population(n: u32, open: u32) -> (Vec<User>, Vec<UserState>) {
        (0..n)
            .map(|i| {
                let r = mix64(0xA5A5 ^ i as u64);
                let employer = ((r >> 5) & 1 == 1).then_some(((r >> 6) % 12) as u32);
                let u = User::new(
                    UserId(3 * i + 1),
                    (r & 3) as u8,
                    ((r >> 2) & 3) as u8,
                    (r >> 4) & 1 == 1,
                    employer,
                    ((r >> 12) % 30) as f32,
                );
                let aware = match (r >> 24) % 5 {
                    0 | 1 => 0,
                    2 => open,
                    3 => open | 0b10000,
                    _ => (r >> 32) as u32 & 0b11111,
                };
                let known = aware & open;
                let provider =
                    if (r >> 40).is_multiple_of(3) && known != 0 { known.trailing_zeros() as u8 } else { NONE };
                let paid_days = if provider != NONE && (r >> 44) & 1 == 1 { ((r >> 45) % 300) as u16 + 1 } else { 0 };
                let st = UserState { aware, provider, switched: (r >> 56).is_multiple_of(8), paid_days };
                (u, st)
            })
            .unzip()
    }

    fn view<'a>(offers: &'a Offers, bans: &'a BanList, tick: u32) -> TickView<'a> {
        TickView {
            offers,
            bans,
            awareness_key: tick_key(9, Stream::Awareness, tick),
            choice_key: tick_key(9, Stream::Choice, tick),
            subscription_key: tick_key(9, Stream::Subscription, tick),
            capacity_key: tick_key(9, Stream::Capacity, tick),
        }
    }

    /// Skipping quiet users changes nothing: a pass over a slice leaves the states and tallies that the four
    /// kernels give every user, whichever way it finds the quiet ones (user by user, the block test compiled
    /// portably, the block test in AVX-512 registers where this CPU has them).
    #[test]
    fn block_pass_equals_user_by_user() {
        let mut bans = BanList::new(12);
        for org in [1, 4, 7] {
            bans.set(org, true);
        }
        let mut ways = vec![Simd::None, Simd::Portable];
        if Simd::available() != Simd::None {
            ways.push(Simd::available());
        }
        for open in [0b00000, 0b00001, 0b00100, 0b01011, 0b11111] {
            let offers = offers(open);
            let (us, start) = population(5000, open);
            for tick in 0..3 {
                let t = view(&offers, &bans, tick);
                let q = QuietView::new(&t);
                let (mut want, mut want_tally) = (start.clone(), UserTally::default());
                for (u, st) in us.iter().zip(&mut want) {
                    step_user(&t, &mut want_tally, u, st);
                }
                let changed = start.iter().zip(&want).filter(|(a, b)| a != b).count();
                // With nothing open only the `switched` flags change.
                let enough = if open == 0 { 100 } else { 500 };
                assert!(changed > enough, "open {open:b}: only {changed} users changed");
                // Neither test may be vacuous, and the block test finds every user the user-by-user one does.
                let (mut one_by_one, mut in_blocks) = (0, 0);
                for (uc, sc) in us.chunks(BLOCK).zip(start.chunks(BLOCK)) {
                    let single =
                        uc.iter().zip(sc).enumerate().fold(0u64, |m, (i, (u, st))| m | (quiet(&q, u, st) as u64) << i);
                    let block = quiet_mask(&q, uc, sc);
                    assert_eq!(single & !block, 0, "open {open:b}: a user quiet alone is not quiet in its block");
                    #[cfg(target_arch = "x86_64")]
                    if Simd::available() == Simd::Avx512 {
                        // SAFETY: the CPU has the features (just detected).
                        assert_eq!(unsafe { quiet_mask_avx512(&q, uc, sc) }, block);
                    }
                    (one_by_one, in_blocks) = (one_by_one + single.count_ones(), in_blocks + block.count_ones());
                }
                assert!(one_by_one > 300, "open {open:b}: {one_by_one} users quiet one by one");
                // With several chatbots open, users who know some but not all are quiet only in blocks.
                let more = if open.count_ones() > 1 { 300 } else { 0 };
                assert!(
                    in_blocks >= one_by_one + more && in_blocks < 4500,
                    "open {open:b}: {in_blocks} quiet in blocks"
                );
                for &simd in &ways {
                    let (mut got, mut tally) = (start.clone(), UserTally::default());
                    step_slice(&t, &q, simd, &mut tally, &us, &mut got);
                    assert!(got == want, "open {open:b}, tick {tick}, {simd:?}: user states differ");
                    assert_eq!(tally, want_tally, "open {open:b}, tick {tick}, {simd:?}: tallies differ");
                }
            }
        }
    }
}
