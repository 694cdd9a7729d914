//! User phases (3 awareness, 4 choice, 5 subscriptions) and the user tally of phase 7, as parallel loops.
//!
//! Every user's draws come from a counter-based generator keyed by (seed, stream, tick, UserId), and the
//! tally sums integers per thread, so results are identical for any thread count.

use super::components::*;
use super::resources::*;
use crate::model::choice::{NONE, choose};
use crate::model::rng::{CounterRng, Stream, tick_key};
use bevy_ecs::prelude::*;
use bevy_utils::Parallel;

/// Phase `Awareness`. Reads `Offers`, `Clock`, `RunInfo`, `User`; writes `UserState::aware` and
/// `newly_aware`: each open chatbot the user does not know yet is learnt with the tick's Bass hazard.
pub fn spread_awareness(
    offers: Res<Offers>,
    clock: Res<Clock>,
    info: Res<RunInfo>,
    mut users: Query<(&User, &mut UserState)>,
) {
    let key = tick_key(info.seed, Stream::Awareness, clock.tick);
    let offers = &*offers;
    users.par_iter_mut().for_each(|(u, mut st)| {
        let st = st.bypass_change_detection();
        let mut candidates = offers.chat_open & !st.aware;
        if candidates == 0 {
            st.newly_aware = 0;
            return;
        }
        let thr = &offers.aware_thr[u.segment as usize];
        let mut rng = CounterRng::new(key, u.id.0 as u64);
        let mut gained = 0u32;
        while candidates != 0 {
            let j = candidates.trailing_zeros() as usize;
            candidates &= candidates - 1;
            if rng.hit(thr[j]) {
                gained |= 1 << j;
            }
        }
        st.aware |= gained;
        st.newly_aware = gained;
    });
}

/// Phase `Choice`. Reads `Offers`, `BanList`, `Clock`, `RunInfo`, `User`; writes `UserState::provider`
/// (and cancels a subscription on a switch). A user reconsiders with the segment's attention hazard, at
/// once on learning of a new chatbot, and always when its provider closed or its employer banned it.
pub fn choose_provider(
    offers: Res<Offers>,
    bans: Res<BanList>,
    clock: Res<Clock>,
    info: Res<RunInfo>,
    mut users: Query<(&User, &mut UserState)>,
) {
    let key = tick_key(info.seed, Stream::Choice, clock.tick);
    let offers = &*offers;
    let bans = &bans.0;
    users.par_iter_mut().for_each(|(u, mut st)| {
        let st = st.bypass_change_detection();
        if st.aware == 0 {
            return;
        }
        st.switched = false;
        let s = u.segment as usize;
        let mut allowed = st.aware & offers.chat_open;
        if u.employer != NO_EMPLOYER && !u.shadow && bans.get(u.employer as usize).copied().unwrap_or(false) {
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
        let new = std::mem::take(&mut st.newly_aware) & allowed;
        let forced = !cur_ok || (new != 0 && offers.reconsider_on_awareness);
        let mut rng = CounterRng::new(key, u.id.0 as u64);
        if !forced && !rng.hit(offers.reconsider_thr[s]) {
            return;
        }
        let keep = if cur_ok { cur } else { NONE };
        let pick = choose(
            &offers.weight[s][u.taste as usize],
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
    });
}

/// Phase `Subscriptions`. Reads `Offers`, `Clock`, `RunInfo`, `User`; writes `UserState::paid_days`:
/// free users whose willingness to pay covers the price convert; paying users churn by tenure (at the
/// first-month rate when the price rose above what they would pay).
pub fn update_subscriptions(
    offers: Res<Offers>,
    clock: Res<Clock>,
    info: Res<RunInfo>,
    mut users: Query<(&User, &mut UserState)>,
) {
    let key = tick_key(info.seed, Stream::Subscription, clock.tick);
    let offers = &*offers;
    users.par_iter_mut().for_each(|(u, mut st)| {
        let st = st.bypass_change_detection();
        let j = st.provider;
        if j == NONE {
            return;
        }
        let price = offers.sub_price[j as usize];
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
            let mut rng = CounterRng::new(key, u.id.0 as u64);
            if rng.hit(offers.churn_thr[class]) {
                st.paid_days = 0;
                if (offers.paid_only >> j) & 1 == 1 {
                    st.provider = NONE;
                }
            } else {
                st.paid_days = st.paid_days.saturating_add(offers.tick_days);
            }
        } else if price > 0.0 && u.wtp >= price {
            let mut rng = CounterRng::new(key, u.id.0 as u64);
            let thr = if st.switched { offers.convert_half_thr[j as usize] } else { offers.convert_thr[j as usize] };
            if rng.hit(thr) {
                st.paid_days = 1;
            }
        }
    });
}

/// Phase `Accounting` (first). Reads `User`, `UserState`; writes `UserTally` (integer counts per firm and
/// segment, summed from per-thread partial tallies).
pub fn tally_users(
    mut partial: Local<Parallel<UserTally>>,
    mut tally: ResMut<UserTally>,
    users: Query<(&User, &UserState)>,
) {
    users.par_iter().for_each_init(
        || partial.borrow_local_mut(),
        |local, (u, st)| {
            if st.aware != 0 {
                local.aware_any += 1;
                let mut bits = st.aware;
                while bits != 0 {
                    let j = bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    local.aware[j] += 1;
                }
            }
            if st.provider != NONE {
                let (j, s) = (st.provider as usize, u.segment as usize);
                local.users[j][s] += 1;
                local.paying[j][s] += (st.paid_days > 0) as u64;
            }
        },
    );
    let mut total = UserTally::default();
    for part in partial.iter_mut() {
        total.add(part);
        *part = UserTally::default();
    }
    *tally = total;
}
