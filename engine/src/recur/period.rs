//! Recurrence periods as Taskwarrior 2.6 reads them (`recur:weekly`,
//! `recur:2w`, `recur:P1M`…), and the step from one occurrence to the next.
//!
//! Two rules from Taskwarrior decide everything here:
//! - a period is valid when Taskwarrior's duration parser reads it
//!   (`Task::validate`): a named unit that stands alone (`weekly`,
//!   `quarterly`, `fortnight`…), a number with any unit (`3d`, `2 weeks`,
//!   `1.5h`), ISO 8601 (`P1W`, `P1Y2M`, `PT12H`), or bare seconds over 60;
//! - the step (`getNextRecurrence`) is on the local calendar for the
//!   month and year words (`monthly`, `Nm`, `quarterly`, `Nq`,
//!   `semiannual`, `bimonthly`, `annual`, `biannual`, and their `PnM`/`PnY`
//!   forms), skips weekends for `weekdays`, and otherwise adds a fixed
//!   number of seconds: `daily` is 86 400 s and `weekly` 604 800 s, so
//!   across a daylight-saving change their wall time moves by the hour
//!   Taskwarrior's does. `1y`, `2mo` and `month` are also fixed seconds
//!   (365, 60 and 30 days), exactly as in Taskwarrior.
//!
//! A calendar step keeps the day of the month, clamped to the month's last
//! day (31 January → 28 February → 28 March: the clamp carries on, as in
//! Taskwarrior, since each step starts from the previous occurrence).

use std::fmt;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Utc, Weekday};

use crate::when::Clock;

const DAY: i64 = 86_400;

/// Why a recurrence period could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeriodError {
    /// Not a period Taskwarrior reads.
    #[error(
        "the recurrence value {0:?} is not valid (try daily, weekdays, weekly, biweekly, monthly, quarterly, yearly, 3d, 2w, 6m, P1W)"
    )]
    Unknown(String),
    /// A count of months or quarters that is zero.
    #[error("the recurrence period {period:?} is equivalent to {count} and hence invalid")]
    Zero {
        /// What was given.
        period: String,
        /// The count it read as.
        count: i64,
    },
}

/// How one occurrence leads to the next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// This many calendar months on the local calendar, the day clamped to
    /// the month's end; `keep_time: false` lands at midnight (Taskwarrior's
    /// `PnM` for n ≠ 1 does).
    Months {
        /// Months per step.
        count: u32,
        /// Whether the time of day is kept.
        keep_time: bool,
    },
    /// This many years on the local calendar. `clamp_leap_day`: 29 February
    /// becomes 28 February (`annual`); otherwise it rolls over to 1 March
    /// (`biannual`, as Taskwarrior's date constructor does).
    Years {
        /// Years per step.
        count: i32,
        /// Whether 29 February clamps to the 28th.
        clamp_leap_day: bool,
    },
    /// The next day, skipping Saturday and Sunday (in fixed days of
    /// 86 400 s, as Taskwarrior adds them).
    Weekdays,
    /// A fixed number of seconds.
    Seconds(i64),
}

/// A recurrence period: the text as typed (kept, so an export gives
/// Taskwarrior the same value), and the step it means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Period {
    text: String,
    step: Step,
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Period {
    /// Reads a period, with Taskwarrior 2.6's rules (case matters:
    /// `Weekly` is not a period there either).
    pub fn parse(text: &str) -> Result<Self, PeriodError> {
        let unknown = || PeriodError::Unknown(text.to_string());
        let seconds = duration_seconds(text).ok_or_else(unknown)?;
        let step = special_step(text)?.unwrap_or(Step::Seconds(seconds));
        if step == Step::Seconds(0) {
            return Err(PeriodError::Zero { period: text.to_string(), count: 0 });
        }
        Ok(Self { text: text.to_string(), step })
    }

    /// The period as typed.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// How it steps.
    #[must_use]
    pub fn step(&self) -> Step {
        self.step
    }

    /// The occurrence after `current`, on `clock`'s local calendar where the
    /// step is a calendar one. `None` when out of range.
    #[must_use]
    pub fn next(&self, current: DateTime<Utc>, clock: &Clock) -> Option<DateTime<Utc>> {
        let local = || clock.local(current).naive_local();
        match self.step {
            Step::Seconds(s) => current.checked_add_signed(Duration::try_seconds(s)?),
            Step::Weekdays => {
                let days = match local().weekday() {
                    Weekday::Fri => 3,
                    Weekday::Sat => 2,
                    _ => 1,
                };
                current.checked_add_signed(Duration::try_seconds(days * DAY)?)
            }
            Step::Months { count, keep_time } => {
                let wall = local();
                let months = wall.year() * 12 + i32::try_from(wall.month0()).ok()? + i32::try_from(count).ok()?;
                let (year, month) = (months.div_euclid(12), u32::try_from(months.rem_euclid(12)).ok()? + 1);
                let day = clamp_day(year, month, wall.day())?;
                let time = if keep_time { wall.time() } else { NaiveTime::MIN };
                clock.instant(NaiveDateTime::new(day, time))
            }
            Step::Years { count, clamp_leap_day } => {
                let wall = local();
                let year = wall.year().checked_add(count)?;
                let day = match NaiveDate::from_ymd_opt(year, wall.month(), wall.day()) {
                    Some(d) => d,
                    // Only 29 February can be missing.
                    None if clamp_leap_day => NaiveDate::from_ymd_opt(year, 2, 28)?,
                    None => NaiveDate::from_ymd_opt(year, 3, 1)?,
                };
                clock.instant(NaiveDateTime::new(day, wall.time()))
            }
        }
    }
}

/// `day` in `year`-`month`, or the month's last day when it has fewer.
fn clamp_day(year: i32, month: u32, day: u32) -> Option<NaiveDate> {
    (1..=day).rev().find_map(|d| NaiveDate::from_ymd_opt(year, month, d))
}

/// The branches of Taskwarrior's `getNextRecurrence` that are not a fixed
/// number of seconds, in its order (the order matters: `P3M` takes the
/// generic `PnM` branch, which drops the time of day, before `quarterly`'s).
fn special_step(text: &str) -> Result<Option<Step>, PeriodError> {
    let months = |count, keep_time| Ok(Some(Step::Months { count, keep_time }));
    let leading = |suffix: char| -> Option<Result<u32, PeriodError>> {
        let body = text.strip_suffix(suffix)?;
        if !text.starts_with(|c: char| c.is_ascii_digit()) {
            return None;
        }
        // strtol: the leading digits.
        let digits: String = body.chars().take_while(char::is_ascii_digit).collect();
        let count: i64 = digits.parse().unwrap_or(i64::MAX);
        Some(match u32::try_from(count) {
            Ok(0) => Err(PeriodError::Zero { period: text.to_string(), count }),
            Ok(n) => Ok(n),
            Err(_) => Err(PeriodError::Unknown(text.to_string())),
        })
    };
    if text == "monthly" || text == "P1M" {
        return months(1, true);
    }
    if text == "weekdays" {
        return Ok(Some(Step::Weekdays));
    }
    if let Some(n) = leading('m') {
        return months(n?, true);
    }
    if let Some(body) = text.strip_prefix('P').and_then(|t| t.strip_suffix('M'))
        && body.chars().all(|c| c.is_ascii_digit())
    {
        let count: u32 = body.parse().map_err(|_| PeriodError::Unknown(text.to_string()))?;
        if count == 0 {
            return Err(PeriodError::Zero { period: text.to_string(), count: 0 });
        }
        return months(count, false);
    }
    if text == "quarterly" {
        return months(3, true);
    }
    if let Some(n) = leading('q') {
        return months(n?.checked_mul(3).ok_or_else(|| PeriodError::Unknown(text.to_string()))?, true);
    }
    match text {
        "semiannual" => months(6, true),
        "bimonthly" => months(2, true),
        "biannual" | "biyearly" | "P2Y" => Ok(Some(Step::Years { count: 2, clamp_leap_day: false })),
        "annual" | "yearly" | "P1Y" => Ok(Some(Step::Years { count: 1, clamp_leap_day: true })),
        _ => Ok(None),
    }
}

/// Taskwarrior's duration units: (unit, seconds, reads alone). Listed by
/// first letter, longest first, so the first prefix match is the longest.
const UNITS: &[(&str, i64, bool)] = &[
    ("annual", 365 * DAY, true),
    ("biannual", 730 * DAY, true),
    ("bimonthly", 61 * DAY, true),
    ("biweekly", 14 * DAY, true),
    ("biyearly", 730 * DAY, true),
    ("daily", DAY, true),
    ("days", DAY, false),
    ("day", DAY, true),
    ("d", DAY, false),
    ("fortnight", 14 * DAY, true),
    ("hours", 3600, false),
    ("hour", 3600, true),
    ("hrs", 3600, false),
    ("hr", 3600, true),
    ("h", 3600, false),
    ("minutes", 60, false),
    ("minute", 60, true),
    ("mins", 60, false),
    ("min", 60, true),
    ("monthly", 30 * DAY, true),
    ("months", 30 * DAY, false),
    ("month", 30 * DAY, true),
    ("mnths", 30 * DAY, false),
    ("mths", 30 * DAY, false),
    ("mth", 30 * DAY, true),
    ("mos", 30 * DAY, false),
    ("mo", 30 * DAY, true),
    ("m", 30 * DAY, false),
    ("quarterly", 91 * DAY, true),
    ("quarters", 91 * DAY, false),
    ("quarter", 91 * DAY, true),
    ("qrtrs", 91 * DAY, false),
    ("qrtr", 91 * DAY, true),
    ("qtrs", 91 * DAY, false),
    ("qtr", 91 * DAY, true),
    ("q", 91 * DAY, false),
    ("semiannual", 183 * DAY, true),
    ("sennight", 14 * DAY, false),
    ("seconds", 1, false),
    ("second", 1, true),
    ("secs", 1, false),
    ("sec", 1, true),
    ("s", 1, false),
    ("weekdays", DAY, true),
    ("weekly", 7 * DAY, true),
    ("weeks", 7 * DAY, false),
    ("week", 7 * DAY, true),
    ("wks", 7 * DAY, false),
    ("wk", 7 * DAY, true),
    ("w", 7 * DAY, false),
    ("yearly", 365 * DAY, true),
    ("years", 365 * DAY, false),
    ("year", 365 * DAY, true),
    ("yrs", 365 * DAY, false),
    ("yr", 365 * DAY, true),
    ("y", 365 * DAY, false),
];

/// The length Taskwarrior's duration parser gives `text`, if it reads it
/// (whole: heph refuses trailing text Taskwarrior would ignore).
fn duration_seconds(text: &str) -> Option<i64> {
    if text.chars().all(|c| c.is_ascii_digit()) && !text.is_empty() {
        return text.parse::<i64>().ok().filter(|s| *s > 60);
    }
    if let Some(s) = iso(text) {
        return Some(s);
    }
    if let Some((_, seconds, standalone)) = UNITS.iter().find(|(u, ..)| *u == text) {
        return standalone.then_some(*seconds);
    }
    let end = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).filter(|&i| i > 0)?;
    let number: f64 = text[..end].parse().ok()?;
    let unit = text[end..].trim_start();
    let (name, seconds, _) = UNITS.iter().find(|(u, ..)| *u == unit)?;
    if *name == "d" && number > 10_000.0 {
        return None;
    }
    // Taskwarrior truncates the product to whole seconds.
    Some((number * *seconds as f64) as i64)
}

/// ISO 8601 durations as Taskwarrior reads them: `PnW`, or
/// `P[nY][nM][nD][T[nH][nM][nS]]` with years of 365 and months of 30 days.
fn iso(text: &str) -> Option<i64> {
    let body = text.strip_prefix('P')?;
    if let Some(weeks) = body.strip_suffix('W') {
        return weeks.parse::<i64>().ok().map(|w| w * 7 * DAY);
    }
    let (date, time) = match body.split_once('T') {
        Some((d, t)) if !t.is_empty() => (d, Some(t)),
        Some(_) => return None,
        None => (body, None),
    };
    let mut total = 0i64;
    let mut any = false;
    for (part, units) in [
        (date, &[('Y', 365 * DAY), ('M', 30 * DAY), ('D', DAY)][..]),
        (time.unwrap_or(""), &[('H', 3600), ('M', 60), ('S', 1)]),
    ] {
        let mut rest = part;
        for (letter, seconds) in units {
            let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
            if digits > 0 && rest[digits..].starts_with(*letter) {
                total = total.checked_add(rest[..digits].parse::<i64>().ok()?.checked_mul(*seconds)?)?;
                rest = &rest[digits + 1..];
                any = true;
            }
        }
        if !rest.is_empty() {
            return None;
        }
    }
    any.then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wall(t: DateTime<Utc>, clock: &Clock) -> NaiveDateTime {
        clock.local(t).naive_local()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn periods_too_long_to_step_end_the_series_instead_of_panicking() {
        let clock = berlin();
        let now = utc("2026-11-25T12:00:00Z");
        for text in ["99999999999y", "9999999999999d", "99999999999w", "2147483647q", "99999999999m"] {
            if let Ok(p) = Period::parse(text) {
                let _ = p.next(now, &clock);
                let _ = p.next(DateTime::<Utc>::MAX_UTC - Duration::days(1), &clock);
            }
        }
        assert_eq!(Period::parse("99999999999y").unwrap().next(now, &clock), None);
    }

    fn berlin() -> Clock {
        Clock::in_zone(utc("2026-01-01T00:00:00Z"), "Europe/Berlin").unwrap()
    }

    fn steps(period: &str, start: &str, n: usize, clock: &Clock) -> Vec<String> {
        let p = Period::parse(period).unwrap();
        let mut t = utc(start);
        let mut out = Vec::new();
        for _ in 0..n {
            t = p.next(t, clock).unwrap();
            out.push(wall(t, clock).format("%F %T %a").to_string());
        }
        out
    }

    #[test]
    fn reads_what_taskwarrior_reads() {
        let cases = [
            ("daily", Step::Seconds(DAY)),
            ("weekly", Step::Seconds(7 * DAY)),
            ("biweekly", Step::Seconds(14 * DAY)),
            ("fortnight", Step::Seconds(14 * DAY)),
            ("2w", Step::Seconds(14 * DAY)),
            ("3d", Step::Seconds(3 * DAY)),
            ("2 weeks", Step::Seconds(14 * DAY)),
            ("1.5d", Step::Seconds(DAY * 3 / 2)),
            ("12h", Step::Seconds(12 * 3600)),
            ("P1W", Step::Seconds(7 * DAY)),
            ("P1D", Step::Seconds(DAY)),
            ("PT12H", Step::Seconds(12 * 3600)),
            ("P1Y2M", Step::Seconds(425 * DAY)),
            ("1y", Step::Seconds(365 * DAY)),
            ("2mo", Step::Seconds(60 * DAY)),
            ("month", Step::Seconds(30 * DAY)),
            ("86400", Step::Seconds(DAY)),
            ("weekdays", Step::Weekdays),
            ("monthly", Step::Months { count: 1, keep_time: true }),
            ("P1M", Step::Months { count: 1, keep_time: true }),
            ("6m", Step::Months { count: 6, keep_time: true }),
            ("P2M", Step::Months { count: 2, keep_time: false }),
            ("P3M", Step::Months { count: 3, keep_time: false }),
            ("bimonthly", Step::Months { count: 2, keep_time: true }),
            ("quarterly", Step::Months { count: 3, keep_time: true }),
            ("2q", Step::Months { count: 6, keep_time: true }),
            ("semiannual", Step::Months { count: 6, keep_time: true }),
            ("annual", Step::Years { count: 1, clamp_leap_day: true }),
            ("yearly", Step::Years { count: 1, clamp_leap_day: true }),
            ("P1Y", Step::Years { count: 1, clamp_leap_day: true }),
            ("biannual", Step::Years { count: 2, clamp_leap_day: false }),
        ];
        for (text, step) in cases {
            let p = Period::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(p.step(), step, "{text}");
            assert_eq!(p.to_string(), text);
        }
    }

    #[test]
    fn refuses_what_taskwarrior_refuses_and_names_it() {
        for bad in ["", "sometimes", "Weekly", "7", "60", "d", "weeks", "3 parsecs", "P", "PT", "0m", "0q", "12000d"] {
            let e = Period::parse(bad).unwrap_err();
            assert!(e.to_string().contains(&format!("{bad:?}")), "{bad}: {e}");
        }
    }

    #[test]
    fn months_clamp_to_the_month_end_and_carry_the_clamp() {
        let clock = berlin();
        let got = steps("monthly", "2026-01-31T08:00:00Z", 4, &clock);
        assert_eq!(
            got,
            [
                "2026-02-28 09:00:00 Sat",
                "2026-03-28 09:00:00 Sat",
                "2026-04-28 09:00:00 Tue",
                "2026-05-28 09:00:00 Thu"
            ]
        );
        // Across the spring change the wall time stays 09:00 (a calendar step).
        assert_eq!(steps("quarterly", "2026-11-30T08:00:00Z", 1, &clock), ["2027-02-28 09:00:00 Sun"]);
        // P2M drops the time of day, as Taskwarrior's generic PnM branch does.
        assert_eq!(steps("P2M", "2026-01-15T08:00:00Z", 1, &clock), ["2026-03-15 00:00:00 Sun"]);
    }

    #[test]
    fn fixed_steps_move_with_daylight_saving() {
        // 2026-03-29 is Berlin's spring change: 86 400 s after 09:00 CET is 10:00 CEST.
        let clock = berlin();
        assert_eq!(
            steps("daily", "2026-03-28T08:00:00Z", 2, &clock),
            ["2026-03-29 10:00:00 Sun", "2026-03-30 10:00:00 Mon"]
        );
    }

    #[test]
    fn weekdays_skip_the_weekend() {
        let clock = Clock::in_zone(utc("2026-01-01T00:00:00Z"), "UTC").unwrap();
        // 2026-11-26 is a Thursday.
        assert_eq!(
            steps("weekdays", "2026-11-26T09:00:00Z", 4, &clock),
            [
                "2026-11-27 09:00:00 Fri",
                "2026-11-30 09:00:00 Mon",
                "2026-12-01 09:00:00 Tue",
                "2026-12-02 09:00:00 Wed"
            ]
        );
        // From a Saturday start, Monday; from Sunday, Monday.
        assert_eq!(steps("weekdays", "2026-11-28T09:00:00Z", 1, &clock), ["2026-11-30 09:00:00 Mon"]);
        assert_eq!(steps("weekdays", "2026-11-29T09:00:00Z", 1, &clock), ["2026-11-30 09:00:00 Mon"]);
    }

    #[test]
    fn leap_days() {
        let clock = Clock::in_zone(utc("2026-01-01T00:00:00Z"), "UTC").unwrap();
        assert_eq!(steps("yearly", "2028-02-29T09:00:00Z", 1, &clock), ["2029-02-28 09:00:00 Wed"]);
        assert_eq!(steps("biannual", "2028-02-29T09:00:00Z", 1, &clock), ["2030-03-01 09:00:00 Fri"]);
    }
}
