//! Calendar arithmetic: tick lengths, the dates of ticks, recording periods and the academic summer.

use chrono::{Datelike, Months, NaiveDate};
use serde::{Deserialize, Serialize};

/// Average days per month (365.2425 / 12), the unit of every "per month" rate.
pub const DAYS_PER_MONTH: f64 = 30.436_875;
/// Average days per year (Gregorian).
pub const DAYS_PER_YEAR: f64 = 365.2425;

/// The length of one tick, or of one recording interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    Day,
    Week,
    Month,
}

impl Period {
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
        }
    }

    /// `start` advanced by `k` periods (month arithmetic clamps to the month's last day).
    pub fn advance(self, start: NaiveDate, k: u32) -> Option<NaiveDate> {
        match self {
            Period::Day => start.checked_add_days(chrono::Days::new(k as u64)),
            Period::Week => start.checked_add_days(chrono::Days::new(7 * k as u64)),
            Period::Month => start.checked_add_months(Months::new(k)),
        }
    }

    /// Which recording bucket a date falls in; a row is written when the bucket changes.
    pub fn bucket(self, start: NaiveDate, date: NaiveDate) -> i64 {
        match self {
            Period::Day => (date - start).num_days(),
            Period::Week => (date - start).num_days().div_euclid(7),
            Period::Month => date.year() as i64 * 12 + date.month0() as i64,
        }
    }
}

impl std::str::FromStr for Period {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "day" => Ok(Period::Day),
            "week" => Ok(Period::Week),
            "month" => Ok(Period::Month),
            _ => Err(format!("expected one of day, week, month; got {s:?}")),
        }
    }
}

/// The dates of every tick of a run: tick 0 is `start` (the initial state), tick k covers the interval
/// (date[k-1], date[k]]; the last tick is clipped to `end`.
#[derive(Clone, Debug)]
pub struct TickCalendar {
    pub dates: Vec<NaiveDate>,
    pub tick: Period,
    pub start: NaiveDate,
}

impl TickCalendar {
    pub fn new(start: NaiveDate, end: NaiveDate, tick: Period) -> TickCalendar {
        let mut dates = vec![start];
        let mut k = 1;
        while *dates.last().unwrap() < end {
            let d = tick.advance(start, k).unwrap_or(end).min(end);
            dates.push(d);
            k += 1;
        }
        TickCalendar { dates, tick, start }
    }

    /// Number of simulated ticks after the initial state.
    pub fn n_ticks(&self) -> u32 {
        (self.dates.len() - 1) as u32
    }

    /// Length in days of tick `k` (k ≥ 1).
    pub fn dt_days(&self, k: u32) -> f64 {
        (self.dates[k as usize] - self.dates[k as usize - 1]).num_days() as f64
    }

    /// Whether tick `k` ends a recording interval of length `every` (tick 0 and the last tick always do).
    pub fn is_recorded(&self, k: u32, every: Period) -> bool {
        let k = k as usize;
        if k == 0 || k + 1 >= self.dates.len() {
            return true;
        }
        every.bucket(self.start, self.dates[k]) != every.bucket(self.start, self.dates[k + 1])
    }
}

/// Per-tick hazard from a rate per month: `1 − exp(−r·Δt)`.
#[inline]
pub fn hazard(rate_per_month: f64, dt_months: f64) -> f64 {
    1.0 - (-rate_per_month * dt_months).exp()
}

/// Per-tick hazard from a probability per month `p` (the monthly rate is `−ln(1 − p)`), so that the
/// probability over a month is `p` whatever the tick length.
#[inline]
pub fn hazard_from_monthly_prob(p: f64, dt_months: f64) -> f64 {
    if p >= 1.0 {
        return 1.0;
    }
    1.0 - (1.0 - p).powf(dt_months)
}

/// A day of the year as (month, day), for calendar windows such as the academic summer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct MonthDay(pub u32, pub u32);

impl MonthDay {
    pub fn parse(s: &str) -> Option<MonthDay> {
        let (m, d) = s.split_once('-')?;
        let (m, d): (u32, u32) = (m.parse().ok()?, d.parse().ok()?);
        NaiveDate::from_ymd_opt(2024, m, d)?;
        Some(MonthDay(m, d))
    }
    pub fn of(date: NaiveDate) -> MonthDay {
        MonthDay(date.month(), date.day())
    }
}

/// Whether `date` lies in the window [from, to] of the year (a window may wrap around New Year).
pub fn in_window(date: NaiveDate, from: MonthDay, to: MonthDay) -> bool {
    let md = MonthDay::of(date);
    if from <= to { from <= md && md <= to } else { md >= from || md <= to }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn calendars_cover_start_to_end() {
        let c = TickCalendar::new(d("2023-01-01"), d("2023-12-31"), Period::Day);
        assert_eq!(c.n_ticks(), 364);
        let w = TickCalendar::new(d("2023-01-01"), d("2023-12-31"), Period::Week);
        assert_eq!(*w.dates.last().unwrap(), d("2023-12-31"));
        assert_eq!(w.dt_days(w.n_ticks()), 0.0f64.max(w.dt_days(w.n_ticks())));
        let m = TickCalendar::new(d("2022-11-30"), d("2023-03-31"), Period::Month);
        assert_eq!(m.dates[1], d("2022-12-30"));
        assert_eq!(m.dates[3], d("2023-02-28"));
    }

    #[test]
    fn monthly_recording_ends_each_month() {
        let c = TickCalendar::new(d("2023-01-01"), d("2023-03-10"), Period::Day);
        let rec: Vec<_> =
            (0..=c.n_ticks()).filter(|&k| c.is_recorded(k, Period::Month)).map(|k| c.dates[k as usize]).collect();
        assert_eq!(rec, vec![d("2023-01-01"), d("2023-01-31"), d("2023-02-28"), d("2023-03-10")]);
    }

    #[test]
    fn hazards_compose_over_ticks() {
        let monthly = hazard(0.1, 1.0);
        let daily = hazard(0.1, 1.0 / 30.0);
        let survive_30 = (1.0 - daily).powi(30);
        assert!((1.0 - survive_30 - monthly).abs() < 1e-12);
        let p = hazard_from_monthly_prob(0.15, 0.5);
        assert!(((1.0 - p) * (1.0 - p) - 0.85).abs() < 1e-12);
    }

    #[test]
    fn windows_wrap() {
        assert!(in_window(d("2023-07-01"), MonthDay(6, 10), MonthDay(8, 31)));
        assert!(!in_window(d("2023-09-01"), MonthDay(6, 10), MonthDay(8, 31)));
        assert!(in_window(d("2023-01-02"), MonthDay(12, 20), MonthDay(1, 5)));
    }
}
