//! Phase 6, organisations: generative-AI adoption by vertical, API provider choice (including self-hosted
//! open models, whose hosting the organisations pay), pilot → production, consumer-chat bans after leaks,
//! and enterprise seats (bought by adopters only).

use super::components::*;
use super::firms::api_option;
use super::resources::*;
use crate::model::calendar::{DAYS_PER_MONTH, hazard, hazard_from_monthly_prob};
use crate::model::choice::{NONE, choose};
use crate::model::econ::{LOGIT_PER_ELO, trend};
use crate::model::rng::{CounterRng, Stream, prob_threshold, tick_key};
use bevy_ecs::prelude::*;

/// Phase `Orgs`. Reads `Clock`, `RunInfo`, `EventQueue` (leaks), the firms; writes every `Org`, `OrgTally`
/// and `BanList`. Sequential: organisations are few, and each draws from its own keyed generator.
pub fn update_orgs(
    clock: Res<Clock>,
    info: Res<RunInfo>,
    queue: Res<EventQueue>,
    mut tally: ResMut<OrgTally>,
    mut bans: ResMut<BanList>,
    firms: Query<(&FirmId, &Quality, &Offer, &Status, &Lineup)>,
    mut orgs: Query<&mut Org>,
) {
    let p = info.params();
    let o = &p.orgs;
    let verticals = o.verticals.as_array();
    let n_firms = info.firms().len();
    let dt = clock.dt_months;

    // Options and their logit weights per vertical.
    let mut api_mask = 0u32;
    let mut seat_mask = 0u32;
    let mut self_hosted = 0u32;
    let mut weights = [[0f32; MAX_FIRMS]; 5];
    let mut self_host_price = [0f64; MAX_FIRMS];
    for (id, q, offer, status, lineup) in firms.iter() {
        let j = id.0 as usize;
        let f = &info.firms()[j];
        if let Some((price, self_host)) =
            api_option(f, &lineup.0, offer, status, clock.date, o.output_token_share, o.self_host_markup)
        {
            self_host_price[j] = price;
            api_mask |= 1 << j;
            if self_host {
                self_hosted |= 1 << j;
            }
            for (v, vert) in verticals.iter().enumerate() {
                let u = o.quality_weight * (q.current - p.elo_reference) * LOGIT_PER_ELO
                    - o.log_price_weight * price.max(0.01).ln()
                    + f.org_trust
                    + offer.org_trust_add
                    + if self_host { vert.self_host_affinity } else { 0.0 };
                weights[v][j] = u.exp() as f32;
            }
        }
        if status.alive && offer.seat_price > 0.0 && clock.date >= f.launch {
            seat_mask |= 1 << j;
        }
    }

    let adopted_share: Vec<f64> = (0..5)
        .map(|v| {
            if tally.orgs_by_vertical[v] > 0 {
                tally.adopted_by_vertical[v] as f64 / tally.orgs_by_vertical[v] as f64
            } else {
                0.0
            }
        })
        .collect();
    let adopt_thr: Vec<u64> = verticals
        .iter()
        .enumerate()
        .map(|(v, vert)| {
            prob_threshold(hazard(vert.adoption_p_per_month + vert.adoption_q_per_month * adopted_share[v], dt))
        })
        .collect();
    let pressure: f64 = queue
        .leaks
        .iter()
        .map(|(d, s)| s * (-((clock.date - *d).num_days() as f64 / DAYS_PER_MONTH) / o.ban_pressure_decay_months).exp())
        .sum();
    let ban_thr: Vec<u64> = verticals
        .iter()
        .map(|vert| {
            prob_threshold(hazard_from_monthly_prob((o.ban_hazard_per_month * pressure * vert.ban_factor).min(1.0), dt))
        })
        .collect();
    let lift_thr = prob_threshold(hazard_from_monthly_prob(o.ban_lift_per_month, dt));
    let prod_thr = prob_threshold(hazard_from_monthly_prob(o.pilot_to_production_per_month, dt));
    let reconsider_thr = prob_threshold(hazard_from_monthly_prob(o.reconsider_per_month, dt));
    let enterprise_thr = prob_threshold(hazard_from_monthly_prob(o.enterprise_adoption_per_month, dt));
    let banning_enterprise_thr = prob_threshold(hazard_from_monthly_prob(
        (o.enterprise_adoption_per_month * o.ban_contract_factor).min(1.0),
        dt,
    ));
    let loyalty = o.loyalty.exp() as f32;
    let key = tick_key(info.seed, Stream::Org, clock.tick);
    bans.start_phase();

    // Integer counts per (firm, vertical, stage), turned into tokens and seats after the loop.
    let mut by_stage = vec![[[0u64; 3]; 5]; n_firms];
    let mut seat_orgs = vec![[0u64; 5]; n_firms];
    let mut new = OrgTally { api_orgs: vec![0; n_firms], ..Default::default() };
    for mut org in orgs.iter_mut() {
        let org = &mut *org;
        let v = org.vertical as usize;
        let w = &weights[v];
        let mut rng = CounterRng::new(key, org.id.0 as u64);
        if org.stage == 0 {
            if api_mask != 0 && rng.hit(adopt_thr[v]) {
                org.stage = 1;
                org.provider = choose(w, api_mask, NONE, 1.0, 0.0, 0, 1.0, rng.uniform());
            }
        } else {
            if org.stage == 1 && rng.hit(prod_thr) {
                org.stage = 2;
            }
            let cur_ok = org.provider != NONE && (api_mask >> org.provider) & 1 == 1;
            if !cur_ok || rng.hit(reconsider_thr) {
                let keep = if cur_ok { org.provider } else { NONE };
                org.provider =
                    if api_mask == 0 { NONE } else { choose(w, api_mask, keep, loyalty, 0.0, 0, 1.0, rng.uniform()) };
            }
        }
        if org.enterprise != NONE && (seat_mask >> org.enterprise) & 1 == 0 {
            org.enterprise = NONE;
        }
        // Enterprise seats are bought only by organisations that adopted generative AI and use it in
        // production; one that bans the consumer app buys them `ban_contract_factor` times likelier (the
        // contract's data guarantees are what it lacked), and lifts its ban once it has them. A ban alone
        // buys nothing.
        if !org.bans_chat {
            if rng.hit(ban_thr[v]) {
                org.bans_chat = true;
            } else if org.stage == 2 && org.enterprise == NONE && seat_mask != 0 && rng.hit(enterprise_thr) {
                org.enterprise = choose(w, seat_mask, org.provider, loyalty, 0.0, 0, 1.0, rng.uniform());
            }
        } else if org.enterprise == NONE {
            if org.stage == 2 && seat_mask != 0 && rng.hit(banning_enterprise_thr) {
                org.enterprise = choose(w, seat_mask, org.provider, loyalty, 0.0, 0, 1.0, rng.uniform());
                org.bans_chat = false;
            }
        } else if rng.hit(lift_thr) {
            org.bans_chat = false;
        }
        bans.set(org.id.0 as usize, org.bans_chat);
        new.orgs_by_vertical[v] += 1;
        new.banning += org.bans_chat as u64;
        if org.stage > 0 {
            new.adopted_by_vertical[v] += 1;
            if org.provider != NONE {
                new.api_orgs[org.provider as usize] += 1;
                by_stage[org.provider as usize][v][org.stage as usize] += 1;
            }
        }
        if org.enterprise != NONE {
            seat_orgs[org.enterprise as usize][v] += 1;
        }
    }
    let growth = trend(1.0, o.token_growth_per_year, clock.years);
    new.tokens_m_per_day = vec![0.0; n_firms];
    new.top_tokens_m_per_day = vec![0.0; n_firms];
    new.seats = vec![0.0; n_firms];
    for j in 0..n_firms {
        for (v, vert) in verticals.iter().enumerate() {
            let per_org = [0.0, o.tokens_per_day_pilot_m, o.tokens_per_day_production_m];
            for stage in 1..3 {
                let tokens = by_stage[j][v][stage] as f64 * per_org[stage] * vert.tokens_factor * growth;
                new.tokens_m_per_day[j] += tokens;
                new.top_tokens_m_per_day[j] += tokens * vert.top_tier_share;
            }
            new.seats[j] += seat_orgs[j][v] as f64 * vert.seats * o.seat_take_up;
        }
        if (self_hosted >> j) & 1 == 1 {
            new.open_tokens_m_per_day += new.tokens_m_per_day[j];
            // Self-hosting organisations pay for hosting the weights themselves (agent-weighted in record).
            new.self_host_usd_per_day += new.tokens_m_per_day[j] * self_host_price[j];
        }
    }
    *tally = new;
}
