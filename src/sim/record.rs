//! Phase 9, record: a read-only observer of the model that fills the trace buffers and the yearly books.

use super::components::*;
use super::firms::{runway, ttm_revenue};
use super::resources::*;
use super::rows::{AnnualRow, MarketRow, SummaryRow, TraceRow, round_to};
use crate::model::econ::{Cents, hhi};
use bevy_ecs::prelude::*;
use chrono::{Datelike, NaiveDate};

fn count(x: f64) -> u64 {
    x.round().max(0.0) as u64
}

/// Phase `Record`. Reads everything about firms, `Clock`, `RunInfo`, the tallies; writes `Trace` (rows of
/// recorded ticks), `Books` and the firms' `IntervalFlows`. Model state is never changed here.
#[allow(clippy::type_complexity, clippy::too_many_arguments)]
pub fn record_tick(
    clock: Res<Clock>,
    info: Res<RunInfo>,
    users: Res<UserTally>,
    orgs: Res<OrgTally>,
    sector: Res<Sector>,
    mut trace: ResMut<Trace>,
    mut log: ResMut<DecisionLog>,
    mut books: ResMut<Books>,
    mut firms: Query<(&FirmId, &Quality, &Offer, &Finance, &Status, &TickFlows, &Compute, &mut IntervalFlows)>,
) {
    let recorded = info.calendar.is_recorded(clock.tick, info.record_every);
    let mut rows: Vec<(FirmId, TraceRow)> = Vec::new();
    let n_firms = info.firms().len();
    if books.firms.len() != n_firms {
        books.firms = vec![FirmBook::default(); n_firms];
    }
    let thresholds = &info.params().revenue_thresholds_usd;
    let mut user_counts = vec![0.0; n_firms];
    for (id, q, offer, fin, status, flows, comp, mut interval) in firms.iter_mut() {
        let j = id.0 as usize;
        let f = &info.firms()[j];
        user_counts[j] = flows.users;
        interval.add(flows);
        let acc = &mut interval.0;
        update_book(&mut books.firms[j], &clock, f, fin, status, flows, thresholds, ttm_revenue(fin), info.run_id);
        if recorded {
            let a = *acc;
            rows.push((
                *id,
                TraceRow {
                    run_id: info.run_id,
                    tick: clock.tick,
                    date: clock.date,
                    firm: f.id.clone(),
                    kind: f.kind.as_str(),
                    alive: status.alive,
                    quality_elo: round_to(q.current, 2),
                    price_sub_usd: offer.sub_price,
                    price_api_usd_per_mtok: round_to(offer.api_price, 6),
                    price_seat_usd: offer.seat_price,
                    users: count(a.users),
                    paying_users: count(a.paying_users),
                    api_orgs: count(a.api_orgs),
                    seats: count(a.seats),
                    queries: count(a.queries),
                    tokens: count(a.tokens),
                    visits: count(a.visits),
                    revenue_sub_usd: a.revenue_sub,
                    revenue_api_usd: a.revenue_api,
                    revenue_seats_usd: a.revenue_seats,
                    revenue_usd: a.revenue(),
                    cost_inference_usd: a.cost_inference,
                    cost_training_usd: a.cost_training,
                    cost_fixed_usd: a.cost_fixed,
                    cost_revenue_share_usd: a.cost_revenue_share,
                    cost_usd: a.cost(),
                    funding_usd: a.funding,
                    profit_usd: a.profit(),
                    cash_usd: fin.cash,
                    runway_months: if status.alive {
                        runway(fin, f, comp.credits).map(|r| round_to(r, 2))
                    } else {
                        None
                    },
                    gpus: count(a.rates.installed),
                    gpus_on_order: count(comp.tranches.iter().filter(|t| t.from > clock.date).map(|t| t.gpus).sum()),
                    capacity_gpu_days: round_to(a.capacity_gpu_days, 2),
                    demanded_gpu_days: round_to(a.demanded_gpu_days, 2),
                    served_gpu_days: round_to(a.served_gpu_days, 2),
                    utilisation: if a.capacity_gpu_days > 0.0 {
                        round_to(a.served_gpu_days / a.capacity_gpu_days, 4)
                    } else {
                        0.0
                    },
                    tokens_demanded: count(a.tokens_demanded),
                    tokens_served: count(a.tokens_served),
                    tokens_rationed: count(a.tokens_demanded).saturating_sub(count(a.tokens_served)),
                    waitlist: count(a.waitlisted),
                    rationed_users: count(a.rationed_users),
                    cost_commitment_usd: a.cost_commitment,
                    cost_spot_usd: a.cost_spot,
                    cost_free_chat_usd: a.cost_by_use[0],
                    cost_paid_chat_usd: a.cost_by_use[1],
                    cost_seats_usd: a.cost_by_use[2],
                    cost_api_usd: a.cost_by_use[3],
                    cost_idle_usd: a.cost_idle,
                    cost_first_tier_usd: a.cost_by_tier[0],
                    cost_best_tier_usd: a.cost_by_tier[1],
                    funding_in_kind_usd: a.funding_in_kind,
                    compute_credits_usd: comp.credits,
                },
            ));
            *acc = TickFlows::default();
        }
    }
    // Trapezoid over the tick, like every other flow.
    let rate = orgs.self_host_usd_per_day * info.org_weight;
    books.self_host_spend += 0.5 * (books.self_host_rate + rate) * clock.dt_days;
    books.self_host_rate = rate;
    if recorded {
        rows.sort_by_key(|(id, _)| *id);
        trace.rows.extend(rows.into_iter().map(|(_, r)| r));
        let w = info.weight;
        let active: u64 = users.users.iter().flatten().sum();
        let paying: u64 = users.paying.iter().flatten().sum();
        let total_tokens: f64 = orgs.tokens_m_per_day.iter().sum();
        trace.market.push(MarketRow {
            run_id: info.run_id,
            tick: clock.tick,
            date: clock.date,
            population: count(info.n_users as f64 * w),
            aware_users: count(users.aware_any as f64 * w),
            active_users: count(active as f64 * w),
            paying_users: count(paying as f64 * w),
            non_users: count((info.n_users as u64 - active) as f64 * w),
            orgs_adopted: count(orgs.adopted_by_vertical.iter().sum::<u64>() as f64 * info.org_weight),
            orgs_banning_chat: count(orgs.banning as f64 * info.org_weight),
            hhi: round_to(hhi(&user_counts), 2),
            open_source_share: if total_tokens > 0.0 {
                round_to(orgs.open_tokens_m_per_day / total_tokens, 6)
            } else {
                0.0
            },
            self_hosting_spend_usd: Cents::from_usd(std::mem::take(&mut books.self_host_spend)),
            investor_sentiment: round_to(sector.sentiment, 4),
        });
    }
    // Decisions are events: every one is written, whatever the recording interval.
    trace.decisions.append(&mut log.0);
}

#[allow(clippy::too_many_arguments)]
fn update_book(
    book: &mut FirmBook,
    clock: &Clock,
    f: &crate::config::domain::Firm,
    fin: &Finance,
    status: &Status,
    flows: &TickFlows,
    thresholds: &[f64],
    ttm: Cents,
    run_id: u64,
) {
    let date = clock.date;
    if book.ttm_crossed.len() != thresholds.len() {
        book.ttm_crossed = vec![None; thresholds.len()];
        book.min_cash = Some((fin.cash, date));
        book.peak_users = (0, date);
    }
    if clock.tick == 0 {
        return;
    }
    // Break-even: the first calendar month (after launch) with some revenue and revenue ≥ costs.
    let month = (date.year(), date.month());
    if month != book.month {
        close_month(book, clock.prev_date);
        book.month = month;
    }
    if status.alive {
        book.month_profit += flows.profit();
        book.month_revenue += flows.revenue();
        book.month_active |= date >= f.launch.min(f.chat_launch);
    }
    let year = date.year();
    if book.years.last().is_none_or(|r| r.year != year) {
        book.user_days = 0.0;
        book.days = 0.0;
        book.years.push(AnnualRow::new(run_id, year, f.id.clone(), f.kind.as_str(), fin.cash));
    }
    book.user_days += flows.users * clock.dt_days;
    book.days += clock.dt_days;
    let avg = if book.days > 0.0 { book.user_days / book.days } else { 0.0 };
    let r = book.years.last_mut().expect("pushed above");
    r.revenue_sub_usd += flows.revenue_sub;
    r.revenue_api_usd += flows.revenue_api;
    r.revenue_seats_usd += flows.revenue_seats;
    r.revenue_usd += flows.revenue();
    r.cost_inference_usd += flows.cost_inference;
    r.cost_training_usd += flows.cost_training;
    r.cost_fixed_usd += flows.cost_fixed;
    r.cost_revenue_share_usd += flows.cost_revenue_share;
    r.cost_usd += flows.cost();
    r.profit_usd += flows.profit();
    r.funding_usd += flows.funding;
    r.end_cash_usd = fin.cash;
    r.avg_users = count(avg);
    r.end_users = count(flows.users);
    r.end_paying_users = count(flows.paying_users);
    r.queries += count(flows.queries);
    r.visits += count(flows.visits);
    r.revenue_cost_ratio = if r.cost_usd.0 > 0 { round_to(r.revenue_usd.usd() / r.cost_usd.usd(), 4) } else { 0.0 };
    r.alive_at_year_end = status.alive;

    book.total_revenue += flows.revenue();
    book.total_cost += flows.cost();
    book.total_funding += flows.funding;
    if book.min_cash.is_none_or(|(c, _)| fin.cash < c) {
        book.min_cash = Some((fin.cash, date));
    }
    let users = count(flows.users);
    if users > book.peak_users.0 {
        book.peak_users = (users, date);
    }
    for (k, t) in thresholds.iter().enumerate() {
        if book.ttm_crossed[k].is_none() && ttm.usd() >= *t {
            book.ttm_crossed[k] = Some(date);
        }
    }
}

fn close_month(book: &mut FirmBook, last_day: NaiveDate) {
    if book.month_active
        && book.break_even.is_none()
        && book.month_revenue > Cents::ZERO
        && book.month_profit >= Cents::ZERO
    {
        book.break_even = Some(last_day);
    }
    book.month_profit = Cents::ZERO;
    book.month_revenue = Cents::ZERO;
    book.month_active = false;
}

/// Builds `annual.csv` and `summary.csv` rows from the books at the end of the run.
pub fn final_tables(world: &mut World) -> RunTables {
    let info = world.resource::<RunInfo>().clone();
    let end = *info.calendar.dates.last().expect("a calendar has dates");
    let thresholds = info.params().revenue_thresholds_usd.clone();
    let mut q = world.query::<(&FirmId, &Finance, &Status, &TickFlows)>();
    let mut state: Vec<(FirmId, Cents, Status, u64)> =
        q.iter(world).map(|(id, fin, st, fl)| (*id, fin.cash, st.clone(), count(fl.users))).collect();
    state.sort_by_key(|s| s.0);
    let mut books = world.resource_mut::<Books>();
    let mut tables = RunTables::default();
    for (id, cash, status, end_users) in state {
        let j = id.0 as usize;
        let f = &info.firms()[j];
        let book = &mut books.firms[j];
        close_month(book, end);
        let (min_cash, min_cash_date) = book.min_cash.unwrap_or((cash, end));
        tables.summary.push(SummaryRow {
            run_id: info.run_id,
            firm: f.id.clone(),
            kind: f.kind.as_str(),
            bankrupt: matches!(status.exit_reason, Some("bankrupt") | Some("acquired")),
            exit_date: status.exit_date,
            exit_reason: status.exit_reason,
            break_even_date: book.break_even,
            min_cash_usd: min_cash,
            min_cash_date,
            end_cash_usd: cash,
            peak_users: book.peak_users.0,
            peak_users_date: book.peak_users.1,
            end_users,
            total_revenue_usd: book.total_revenue,
            total_cost_usd: book.total_cost,
            total_funding_usd: book.total_funding,
            ttm_revenue_crossed: book.ttm_crossed.clone(),
            year_revenue_crossed: thresholds
                .iter()
                .map(|t| book.years.iter().find(|r| r.revenue_usd.usd() >= *t).map(|r| r.year))
                .collect(),
        });
        tables.annual.extend(book.years.iter().cloned());
    }
    tables
        .annual
        .sort_by(|a, b| a.year.cmp(&b.year).then_with(|| firm_index(&info, &a.firm).cmp(&firm_index(&info, &b.firm))));
    tables
}

fn firm_index(info: &RunInfo, id: &str) -> usize {
    info.firms().iter().position(|f| f.id == id).unwrap_or(usize::MAX)
}
