//! User phases (3 awareness, 4 choice, 5 subscriptions) and the user tally of phase 7, as parallel loops.
//!
//! Each phase is a per-user kernel (`learn`, `reconsider`, `subscribe`, `count`) that reads only the user, its
//! own state and this tick's market view (`Offers`, `BanList`), none of which another user's phases change. So
//! the kernels can run phase by phase over all users (one system per phase: the reference, and what the phase
//! benchmarks time) or one user at a time through all of them ([`step_users`], one pass over memory: what a run
//! uses), with byte-identical results; a test checks this on every run it makes.
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
struct TickView<'a> {
    offers: &'a Offers,
    bans: &'a BanList,
    awareness_key: u64,
    choice_key: u64,
    subscription_key: u64,
}

/// The resources every user system reads: this tick's market view, the clock and the run's seed.
#[derive(SystemParam)]
pub struct MarketView<'w> {
    offers: Res<'w, Offers>,
    bans: Res<'w, BanList>,
    clock: Res<'w, Clock>,
    info: Res<'w, RunInfo>,
}

impl MarketView<'_> {
    fn view(&self) -> TickView<'_> {
        let (seed, tick) = (self.info.seed, self.clock.tick);
        TickView {
            offers: &self.offers,
            bans: &self.bans,
            awareness_key: tick_key(seed, Stream::Awareness, tick),
            choice_key: tick_key(seed, Stream::Choice, tick),
            subscription_key: tick_key(seed, Stream::Subscription, tick),
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
fn firm(j: u8) -> usize {
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
/// (a switch cancels a subscription) and `switched`.
#[inline(always)]
fn reconsider(t: &TickView, u: &User, st: &mut UserState, newly_aware: u32) {
    if st.aware == 0 {
        return;
    }
    let offers = t.offers;
    st.switched = false;
    let s = u.segment();
    let mut allowed = st.aware & offers.chat_open;
    if t.bans.bans(u.employer_index()) && !u.shadow() {
        allowed &= !offers.ban_subject;
    }
    let mut paid_only = allowed & offers.paid_only;
    while paid_only != 0 {
        let j = paid_only.trailing_zeros() as usize;
        paid_only &= paid_only - 1;
        if u.wtp < offers.sub_price[j] {
            allowed &= !(1 << j);
        }
    }
    let cur = st.provider;
    let cur_ok = cur == NONE || (allowed >> cur) & 1 == 1;
    let new = newly_aware & allowed;
    let forced = !cur_ok || (new != 0 && offers.reconsider_on_awareness);
    let mut rng = CounterRng::new(t.choice_key, u.id.0 as u64);
    if !forced && !rng.hit(offers.reconsider_thr[s]) {
        return;
    }
    let keep = if cur_ok { cur } else { NONE };
    let pick = choose(
        &offers.weight[s][u.taste()],
        allowed,
        keep,
        offers.loyalty[s],
        offers.outside[s],
        new,
        offers.trial[s],
        rng.uniform(),
    );
    if pick != cur {
        st.provider = pick;
        st.switched = true;
        st.paid_days = if pick != NONE && (offers.paid_only >> pick) & 1 == 1 { 1 } else { 0 };
    }
}

/// Subscription kernel: free users whose willingness to pay covers the price convert; paying users churn
/// by tenure (at the first-month rate when the price rose above what they would pay). Sets `paid_days`
/// (and `provider` when a paid-only plan is cancelled).
#[inline(always)]
fn subscribe(t: &TickView, u: &User, st: &mut UserState) {
    let j = st.provider;
    if j == NONE {
        return;
    }
    let offers = t.offers;
    let price = offers.sub_price[firm(j)];
    if st.paid_days > 0 {
        if price <= 0.0 {
            st.paid_days = 0;
            return;
        }
        let tenure = st.paid_days - 1;
        let class = if u.wtp < price || tenure < 31 {
            0
        } else if tenure < 183 {
            1
        } else {
            2
        };
        let mut rng = CounterRng::new(t.subscription_key, u.id.0 as u64);
        if rng.hit(offers.churn_thr[class]) {
            st.paid_days = 0;
            if (offers.paid_only >> j) & 1 == 1 {
                st.provider = NONE;
            }
        } else {
            st.paid_days = st.paid_days.saturating_add(offers.tick_days);
        }
    } else if price > 0.0 && u.wtp >= price {
        let mut rng = CounterRng::new(t.subscription_key, u.id.0 as u64);
        let thr = if st.switched { offers.convert_half_thr[firm(j)] } else { offers.convert_thr[firm(j)] };
        if rng.hit(thr) {
            st.paid_days = 1;
        }
    }
}

/// Tally kernel: adds the user to the integer counts of its provider and segment and of the chatbots it knows.
#[inline(always)]
fn count(local: &mut UserTally, u: &User, st: &UserState) {
    count_learnt(local, 0, st.aware);
    count_provider(local, u, st);
}

/// Adds the user to the counts of its provider and segment.
#[inline(always)]
fn count_provider(local: &mut UserTally, u: &User, st: &UserState) {
    if st.provider != NONE {
        let (j, s) = (firm(st.provider), u.segment());
        local.users[j][s] += 1;
        local.paying[j][s] += (st.paid_days > 0) as u64;
    }
}

/// Adds to the awareness counts what a user learnt: the chatbots in `after` but not in `before`.
#[inline(always)]
fn count_learnt(local: &mut UserTally, before: u32, after: u32) {
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

/// The common case, settled by one draw and no branch on what kind of user this is: a user with no
/// provider (and no switch to clear) that either knows no chatbot while exactly one is open (its one
/// awareness draw) or knows every open chatbot (its attention draw, which comes first in `reconsider`
/// because nothing forces a choice). When that draw misses, the kernels would change nothing and count
/// nothing, so this returns true; otherwise the kernels run and make the same draw again.
///
/// Early in a run almost every user is one of the two, mixed at random: branching on which one was the
/// pass's main cost (a mispredicted branch per user or so), so the key and threshold are selected instead.
#[inline(always)]
fn quiet(t: &TickView, u: &User, st: &UserState) -> bool {
    let offers = t.offers;
    let open = offers.chat_open;
    let knows_none = st.aware == 0;
    let one_to_learn = knows_none & open.is_power_of_two();
    let all_known = !knows_none & (open & !st.aware == 0);
    if !((st.provider == NONE) & !st.switched & (one_to_learn | all_known)) {
        return false;
    }
    let s = u.segment();
    let key = std::hint::select_unpredictable(knows_none, t.awareness_key, t.choice_key);
    let thr = std::hint::select_unpredictable(
        knows_none,
        offers.aware_thr[s][firm(open.trailing_zeros() as u8)],
        offers.reconsider_thr[s],
    );
    counter_draw(agent_key(key, u.id.0 as u64), 1) >= thr
}

/// One user through the four kernels, in phase order, on a copy of its state that is stored back (storing
/// only what changed measured slower: the comparison costs more than the write-back it saves), unless
/// [`quiet`] shows that nothing happens to it this tick.
#[inline(always)]
fn step_user(t: &TickView, local: &mut UserTally, u: &User, st: &mut UserState) {
    let before = *st;
    if quiet(t, u, &before) {
        return;
    }
    let mut s = before;
    let learnt = learn(t, u, &mut s);
    reconsider(t, u, &mut s, learnt);
    subscribe(t, u, &mut s);
    count_learnt(local, before.aware, s.aware);
    count_provider(local, u, &s);
    *st = s;
}

/// Phases `Awareness`, `Choice`, `Subscriptions` and the user tally of `Accounting`, fused: one parallel
/// pass that takes each user through the four kernels in phase order. Reads `Offers`, `BanList`, `Clock`,
/// `RunInfo`, `User`, last tick's `UserTally`; writes `UserState` and `UserTally` (awareness counted as
/// what was learnt added to last tick's counts). Equivalent to the four phase systems because no
/// system between them reads or writes what the kernels touch (`Orgs` reads neither `UserState` nor
/// `UserTally`); `tests/it/determinism.rs` compares the two schedules.
pub fn step_users(
    mut partial: Local<Parallel<UserTally>>,
    mut tally: ResMut<UserTally>,
    market: MarketView,
    mut users: Query<(&User, &mut UserState)>,
) {
    let t = market.view();
    // Users live in one table, so the pass runs over its columns as slices: a plain loop the compiler
    // inlines whole, rather than a call per user. Debug builds take the per-user path instead: bevy 0.20's
    // parallel slice iteration checks (with a debug assertion only) each batch's slice against the whole
    // table's length, which fails as soon as a table is cut into more than one batch; its release build
    // hands out the batch's rows as it should (`.ci/run` compares 1 and 2 threads on a release build).
    // Both paths run the same kernel, so they give the same results.
    let contiguous = if cfg!(debug_assertions) { None } else { users.contiguous_par_iter_mut().ok() };
    match contiguous {
        Some(iter) => iter.batching_strategy(batching()).for_each_init(
            || partial.borrow_local_mut(),
            |local, (us, mut states)| {
                for (u, st) in us.iter().zip(states.bypass_change_detection()) {
                    step_user(&t, local, u, st);
                }
            },
        ),
        None => users.par_iter_mut().batching_strategy(batching()).for_each_init(
            || partial.borrow_local_mut(),
            |local, (u, mut st)| step_user(&t, local, u, st.bypass_change_detection()),
        ),
    }
    publish(&mut partial, &mut tally, true);
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
/// `UserState::provider`, `switched` (and cancels a subscription on a switch); clears `NewlyAware`.
pub fn choose_provider(market: MarketView, mut users: Query<(&User, &mut UserState, &mut NewlyAware)>) {
    let t = market.view();
    users.par_iter_mut().batching_strategy(batching()).for_each(|(u, mut st, mut newly)| {
        let newly = std::mem::take(&mut newly.bypass_change_detection().0);
        reconsider(&t, u, st.bypass_change_detection(), newly);
    });
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

/// Phase `Accounting` (first) when the user phases run one by one. Reads `User`, `UserState`; writes
/// `UserTally` (integer counts per firm and segment, summed from per-thread partial tallies).
pub fn tally_users(
    mut partial: Local<Parallel<UserTally>>,
    mut tally: ResMut<UserTally>,
    users: Query<(&User, &UserState)>,
) {
    users
        .par_iter()
        .batching_strategy(batching())
        .for_each_init(|| partial.borrow_local_mut(), |local, (u, st)| count(local, u, st));
    publish(&mut partial, &mut tally, false);
}
