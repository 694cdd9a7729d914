//! Phase 6, organisations: generative-AI adoption by vertical, API provider choice (including self-hosted
//! open models, whose hosting the organisations pay), pilot → production, consumer-chat bans after leaks,
//! and enterprise seats (bought by adopters only).
//!
//! One kernel ([`decide_org`]) holds an organisation's rule for one tick. The per-tick sampler
//! ([`update_orgs`], the reference) asks it, for every organisation and tick, whether each rare decision
//! happens by one Bernoulli draw; the event-driven pass ([`super::org_events`], what runs use) calls it only
//! for organisations with a decision due. Both build the tally from the same integer counts ([`OrgCounts`]).

use super::components::*;
use super::firms::api_option;
use super::resources::*;
use crate::model::calendar::{DAYS_PER_MONTH, hazard, hazard_from_monthly_prob};
use crate::model::choice::{NONE, choose};
use crate::model::econ::{LOGIT_PER_ELO, trend};
use crate::model::rng::{CounterRng, Stream, prob_threshold, tick_key};
use bevy_ecs::prelude::*;
use bevy_ecs::system::SystemParam;

/// The verticals of `orgs.verticals`: healthcare, finance, education, tech, other.
pub(super) const VERTICALS: usize = 5;

/// The rare decisions of an organisation, each a Bernoulli draw per tick with its own probability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum OrgKind {
    /// A non-adopter adopts (Bass: innovation plus imitation of its vertical's adopters).
    Adopt,
    /// A pilot goes into production.
    Production,
    /// An adopter reconsiders its API provider.
    Reconsider,
    /// An organisation starts banning consumer chat (leak pressure).
    Ban,
    /// A producer that does not ban buys enterprise seats.
    Enterprise,
    /// A producer that bans buys enterprise seats (and lifts its ban).
    BanningEnterprise,
    /// A banning organisation with seats lifts its ban.
    Lift,
}

pub(super) const ORG_KINDS: usize = 7;

impl OrgKind {
    pub(super) const ALL: [OrgKind; ORG_KINDS] = [
        OrgKind::Adopt,
        OrgKind::Production,
        OrgKind::Reconsider,
        OrgKind::Ban,
        OrgKind::Enterprise,
        OrgKind::BanningEnterprise,
        OrgKind::Lift,
    ];

    /// The kinds of decision open to `org` in a market with these API and seat vendors, as a bit set
    /// (`1 << kind`): those the kernel may ask about this tick before anything changed.
    #[inline]
    pub(super) fn open_to(org: &Org, api_mask: u32, seat_mask: u32) -> u8 {
        let bit = |k: OrgKind, on: bool| (on as u8) << k as u8;
        let seats_for_producer = org.stage == 2 && org.enterprise == NONE && seat_mask != 0;
        bit(OrgKind::Adopt, org.stage == 0 && api_mask != 0)
            | bit(OrgKind::Production, org.stage == 1)
            | bit(OrgKind::Reconsider, org.stage >= 1)
            | bit(OrgKind::Ban, !org.bans_chat)
            | bit(OrgKind::Enterprise, !org.bans_chat && seats_for_producer)
            | bit(OrgKind::BanningEnterprise, org.bans_chat && seats_for_producer)
            | bit(OrgKind::Lift, org.bans_chat && org.enterprise != NONE)
    }
}

/// What the organisation phase reads of this tick's market.
#[derive(Clone, Debug)]
pub(super) struct OrgMarket {
    /// Firms with an API option (bit j), those of them self-hosted open models, and firms selling seats.
    pub(super) api_mask: u32,
    pub(super) seat_mask: u32,
    self_hosted: u32,
    /// Logit weight of each API option per vertical.
    pub(super) weights: [[f32; MAX_FIRMS]; VERTICALS],
    self_host_price: [f64; MAX_FIRMS],
    /// This tick's probability of each kind of decision per vertical, and its threshold.
    pub(super) p: [[f64; VERTICALS]; ORG_KINDS],
    thr: [[u64; VERTICALS]; ORG_KINDS],
    pub(super) loyalty: f32,
}

impl OrgMarket {
    /// A market with these options and per-tick probabilities (thresholds computed from them).
    pub(super) fn new(
        api_mask: u32,
        seat_mask: u32,
        weights: [[f32; MAX_FIRMS]; VERTICALS],
        p: [[f64; VERTICALS]; ORG_KINDS],
        loyalty: f32,
    ) -> OrgMarket {
        OrgMarket {
            api_mask,
            seat_mask,
            self_hosted: 0,
            weights,
            self_host_price: [0.0; MAX_FIRMS],
            thr: p.map(|row| row.map(prob_threshold)),
            p,
            loyalty,
        }
    }

    /// The threshold of a decision of `kind` for an organisation of vertical `v`.
    #[inline]
    pub(super) fn thr(&self, kind: OrgKind, v: usize) -> u64 {
        self.thr[kind as usize][v]
    }
}

/// Builds this tick's [`OrgMarket`] from the firms' offers, the leaks so far and last tick's adoption.
fn org_market(
    clock: &Clock,
    info: &RunInfo,
    queue: &EventQueue,
    tally: &OrgTally,
    firms: &Query<(&FirmId, &Quality, &Offer, &Status, &Lineup)>,
) -> OrgMarket {
    let p = info.params();
    let o = &p.orgs;
    let verticals = o.verticals.as_array();
    let dt = clock.dt_months;

    // Options and their logit weights per vertical.
    let mut api_mask = 0u32;
    let mut seat_mask = 0u32;
    let mut self_hosted = 0u32;
    let mut weights = [[0f32; MAX_FIRMS]; VERTICALS];
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

    let pressure: f64 = queue
        .leaks
        .iter()
        .map(|(d, s)| s * (-((clock.date - *d).num_days() as f64 / DAYS_PER_MONTH) / o.ban_pressure_decay_months).exp())
        .sum();
    let mut prob = [[0f64; VERTICALS]; ORG_KINDS];
    for (v, vert) in verticals.iter().enumerate() {
        let adopted_share = if tally.orgs_by_vertical[v] > 0 {
            tally.adopted_by_vertical[v] as f64 / tally.orgs_by_vertical[v] as f64
        } else {
            0.0
        };
        let monthly = |x: f64| hazard_from_monthly_prob(x, dt);
        for (kind, x) in [
            (OrgKind::Adopt, hazard(vert.adoption_p_per_month + vert.adoption_q_per_month * adopted_share, dt)),
            (OrgKind::Production, monthly(o.pilot_to_production_per_month)),
            (OrgKind::Reconsider, monthly(o.reconsider_per_month)),
            (OrgKind::Ban, monthly((o.ban_hazard_per_month * pressure * vert.ban_factor).min(1.0))),
            (OrgKind::Enterprise, monthly(o.enterprise_adoption_per_month)),
            (OrgKind::BanningEnterprise, monthly((o.enterprise_adoption_per_month * o.ban_contract_factor).min(1.0))),
            (OrgKind::Lift, monthly(o.ban_lift_per_month)),
        ] {
            prob[kind as usize][v] = x;
        }
    }
    OrgMarket {
        self_hosted,
        self_host_price,
        ..OrgMarket::new(api_mask, seat_mask, weights, prob, o.loyalty.exp() as f32)
    }
}

/// One organisation's decisions in one tick, in a fixed order. `hit(rng, kind)` says whether a decision of
/// `kind` happens this tick; it is asked only about kinds open to the organisation at that point (a kind
/// may open within the tick: seats once in production, or once a vendor left), at most once each. Choices
/// among providers and vendors draw from `rng`.
#[inline]
pub(super) fn decide_org(
    org: &mut Org,
    m: &OrgMarket,
    rng: &mut CounterRng,
    mut hit: impl FnMut(&mut CounterRng, OrgKind) -> bool,
) {
    let w = &m.weights[org.vertical as usize];
    if org.stage == 0 {
        if m.api_mask != 0 && hit(rng, OrgKind::Adopt) {
            org.stage = 1;
            org.provider = choose(w, m.api_mask, NONE, 1.0, 0.0, 0, 1.0, rng.uniform());
        }
    } else {
        if org.stage == 1 && hit(rng, OrgKind::Production) {
            org.stage = 2;
        }
        let cur_ok = org.provider != NONE && (m.api_mask >> org.provider) & 1 == 1;
        if !cur_ok || hit(rng, OrgKind::Reconsider) {
            let keep = if cur_ok { org.provider } else { NONE };
            org.provider =
                if m.api_mask == 0 { NONE } else { choose(w, m.api_mask, keep, m.loyalty, 0.0, 0, 1.0, rng.uniform()) };
        }
    }
    if org.enterprise != NONE && (m.seat_mask >> org.enterprise) & 1 == 0 {
        org.enterprise = NONE;
    }
    // Enterprise seats are bought only by organisations that adopted generative AI and use it in
    // production; one that bans the consumer app buys them `ban_contract_factor` times likelier (the
    // contract's data guarantees are what it lacked), and lifts its ban once it has them. A ban alone
    // buys nothing.
    if !org.bans_chat {
        if hit(rng, OrgKind::Ban) {
            org.bans_chat = true;
        } else if org.stage == 2 && org.enterprise == NONE && m.seat_mask != 0 && hit(rng, OrgKind::Enterprise) {
            org.enterprise = choose(w, m.seat_mask, org.provider, m.loyalty, 0.0, 0, 1.0, rng.uniform());
        }
    } else if org.enterprise == NONE {
        if org.stage == 2 && m.seat_mask != 0 && hit(rng, OrgKind::BanningEnterprise) {
            org.enterprise = choose(w, m.seat_mask, org.provider, m.loyalty, 0.0, 0, 1.0, rng.uniform());
            org.bans_chat = false;
        }
    } else if hit(rng, OrgKind::Lift) {
        org.bans_chat = false;
    }
}

/// Whether this tick's market forces a choice of `org` whatever it draws: its API provider left, or it has
/// none while adopted and some API is on offer again, or its seat vendor stopped selling. (An adopter
/// without a provider while no API is on offer has nothing to choose: the kernel leaves it as it is.)
#[inline]
pub(super) fn forced(org: &Org, m: &OrgMarket) -> bool {
    let provider_gone =
        org.stage >= 1 && if org.provider == NONE { m.api_mask != 0 } else { (m.api_mask >> org.provider) & 1 == 0 };
    let vendor_gone = org.enterprise != NONE && (m.seat_mask >> org.enterprise) & 1 == 0;
    provider_gone || vendor_gone
}

/// Integer counts of organisations per vertical, firm and stage: what the tally is computed from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct OrgCounts {
    pub(super) orgs_by_vertical: [u64; VERTICALS],
    pub(super) adopted_by_vertical: [u64; VERTICALS],
    pub(super) banning: u64,
    /// Adopters with an API provider, per provider, vertical and stage (pilot 1, production 2).
    pub(super) by_stage: [[[u64; 3]; VERTICALS]; MAX_FIRMS],
    /// Organisations with seats, per vendor and vertical.
    pub(super) seat_orgs: [[u64; VERTICALS]; MAX_FIRMS],
}

impl Default for OrgCounts {
    fn default() -> Self {
        OrgCounts {
            orgs_by_vertical: [0; VERTICALS],
            adopted_by_vertical: [0; VERTICALS],
            banning: 0,
            by_stage: [[[0; 3]; VERTICALS]; MAX_FIRMS],
            seat_orgs: [[0; VERTICALS]; MAX_FIRMS],
        }
    }
}

impl OrgCounts {
    /// Adds (`plus`) or removes one organisation's contribution.
    #[inline]
    pub(super) fn count(&mut self, org: &Org, plus: bool) {
        let add = |x: &mut u64| *x = if plus { x.wrapping_add(1) } else { x.wrapping_sub(1) };
        let v = org.vertical as usize;
        add(&mut self.orgs_by_vertical[v]);
        if org.bans_chat {
            add(&mut self.banning);
        }
        if org.stage > 0 {
            add(&mut self.adopted_by_vertical[v]);
            if org.provider != NONE {
                add(&mut self.by_stage[org.provider as usize][v][org.stage as usize]);
            }
        }
        if org.enterprise != NONE {
            add(&mut self.seat_orgs[org.enterprise as usize][v]);
        }
    }

    /// The tally these counts make in this tick's market (tokens grow with the clock).
    pub(super) fn tally(&self, m: &OrgMarket, info: &RunInfo, clock: &Clock) -> OrgTally {
        let o = &info.params().orgs;
        let verticals = o.verticals.as_array();
        let n_firms = info.firms().len();
        let growth = trend(1.0, o.token_growth_per_year, clock.years);
        let mut t = OrgTally {
            api_orgs: vec![0; n_firms],
            tokens_m_per_day: vec![0.0; n_firms],
            seats: vec![0.0; n_firms],
            adopted_by_vertical: self.adopted_by_vertical,
            orgs_by_vertical: self.orgs_by_vertical,
            banning: self.banning,
            open_tokens_m_per_day: 0.0,
            top_tokens_m_per_day: vec![0.0; n_firms],
            self_host_usd_per_day: 0.0,
        };
        let per_org = [0.0, o.tokens_per_day_pilot_m, o.tokens_per_day_production_m];
        for j in 0..n_firms {
            for (v, vert) in verticals.iter().enumerate() {
                for (&n, per_org) in self.by_stage[j][v].iter().zip(per_org).skip(1) {
                    t.api_orgs[j] += n;
                    let tokens = n as f64 * per_org * vert.tokens_factor * growth;
                    t.tokens_m_per_day[j] += tokens;
                    t.top_tokens_m_per_day[j] += tokens * vert.top_tier_share;
                }
                t.seats[j] += self.seat_orgs[j][v] as f64 * vert.seats * o.seat_take_up;
            }
            if (m.self_hosted >> j) & 1 == 1 {
                t.open_tokens_m_per_day += t.tokens_m_per_day[j];
                // Self-hosting organisations pay for hosting the weights themselves (agent-weighted in record).
                t.self_host_usd_per_day += t.tokens_m_per_day[j] * m.self_host_price[j];
            }
        }
        t
    }
}

/// What both organisation passes read and write besides the organisations: the clock, the run, the leaks
/// and the firms (this tick's market), last tick's tally (adoption shares; replaced by this tick's) and the
/// ban list.
#[derive(SystemParam)]
pub struct OrgPhase<'w, 's> {
    clock: Res<'w, Clock>,
    pub(super) info: Res<'w, RunInfo>,
    queue: Res<'w, EventQueue>,
    tally: ResMut<'w, OrgTally>,
    pub(super) bans: ResMut<'w, BanList>,
    firms: Query<'w, 's, (&'static FirmId, &'static Quality, &'static Offer, &'static Status, &'static Lineup)>,
}

impl OrgPhase<'_, '_> {
    /// This tick's market for organisations.
    pub(super) fn market(&self) -> OrgMarket {
        org_market(&self.clock, &self.info, &self.queue, &self.tally, &self.firms)
    }

    pub(super) fn tick(&self) -> u32 {
        self.clock.tick
    }

    /// Replaces the tally with the one `counts` make in this tick's market.
    pub(super) fn set_tally(&mut self, counts: &OrgCounts, m: &OrgMarket) {
        *self.tally = counts.tally(m, &self.info, &self.clock);
    }
}

/// Phase `Orgs`, per tick (the reference sampler): every organisation draws each of its open decisions.
/// Reads `Clock`, `RunInfo`, `EventQueue` (leaks), the firms; writes every `Org`, `OrgTally` and `BanList`.
/// Sequential: organisations are few, and each draws from its own keyed generator.
pub fn update_orgs(mut phase: OrgPhase, mut orgs: Query<&mut Org>) {
    let m = phase.market();
    let key = tick_key(phase.info.seed, Stream::Org, phase.tick());
    phase.bans.start_phase();
    let mut counts = OrgCounts::default();
    for mut org in orgs.iter_mut() {
        step_org(&mut org, &m, key, &mut phase.bans, &mut counts);
    }
    phase.set_tally(&counts, &m);
}

/// One organisation's tick in the per-tick sampler: each decision the kernel asks about is one draw against
/// its threshold; the organisation is then counted and its ban recorded.
#[inline]
pub(super) fn step_org(org: &mut Org, m: &OrgMarket, key: u64, bans: &mut BanList, counts: &mut OrgCounts) {
    let v = org.vertical as usize;
    let mut rng = CounterRng::new(key, org.id.0 as u64);
    decide_org(org, m, &mut rng, |rng, kind| rng.hit(m.thr(kind, v)));
    bans.set(org.id.0 as usize, org.bans_chat);
    counts.count(org, true);
}
