//! Task dates: reading what people type and writing it back.
//!
//! This module owns heph's date vocabulary. [`parse_when`] turns `tomorrow`, `eom`, `friday`,
//! `3d`, `today+1w`, `2026-11-30 14:00` and friends into an instant, [`parse_day`] does the
//! same for calendar days, and [`relative`] / [`display`] render instants for listings. The
//! words follow Taskwarrior where possible. Everything is pure: the caller passes a [`Clock`]
//! (the instant and the user's time zone), and a date without a time means 00:00 on that day
//! in that zone, with the offset in force on that day (daylight saving included), not today's.
//! Stored times are UTC.

use chrono::format::ParseErrorKind as Kind;
use chrono::{
    DateTime, Datelike, Days, FixedOffset, Months, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, TimeZone, Timelike,
    Utc, Weekday,
};

const HINT: &str = "try 2026-12-24, tomorrow, friday, eom, 3d";

/// Why a date could not be read; the Display text is a one-line user-facing error that says what forms are accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WhenError {
    /// The input was empty or only whitespace.
    #[error("no date given ({hint})", hint = HINT)]
    Empty,
    /// The input is not in any accepted form.
    #[error("cannot read {input:?} as a date ({hint})", hint = HINT)]
    Unrecognised {
        /// What was typed.
        input: String,
    },
    /// The input is shaped like a date but names one that does not exist, like `2026-02-30`.
    #[error("{input:?} is not a real calendar date ({hint})", hint = HINT)]
    InvalidDate {
        /// What was typed.
        input: String,
    },
    /// The input is understood but lands too far away to represent.
    #[error("{input:?} is too far away to be a date ({hint})", hint = HINT)]
    OutOfRange {
        /// What was typed.
        input: String,
    },
}

/// The user's clock: the instant it is, and the time zone whose rules turn a wall-clock time
/// on a given date into an instant. Nothing in the engine reads the system clock or zone; the
/// caller makes a `Clock` ([`Clock::system`] in the command line) and passes it down.
#[derive(Clone, Debug, PartialEq)]
pub struct Clock {
    /// The instant.
    pub now: DateTime<Utc>,
    /// The user's zone.
    pub zone: jiff::tz::TimeZone,
}

impl Clock {
    /// The system's clock and zone (`TZ` honoured, else the system's setting, else UTC).
    #[must_use]
    pub fn system() -> Self {
        Self { now: Utc::now(), zone: jiff::tz::TimeZone::system() }
    }

    /// `now` in the zone named `zone` (an IANA name such as `Europe/Berlin`), if heph knows it.
    pub fn in_zone(now: DateTime<Utc>, zone: &str) -> Result<Self, jiff::Error> {
        Ok(Self { now, zone: jiff::tz::TimeZone::get(zone)? })
    }

    /// A zone that is always at `now`'s offset (no daylight saving): for fixed cases and tests.
    #[must_use]
    pub fn fixed(now: DateTime<FixedOffset>) -> Self {
        let seconds = now.offset().local_minus_utc();
        let offset = jiff::tz::Offset::from_seconds(seconds).unwrap_or(jiff::tz::Offset::UTC);
        Self { now: now.to_utc(), zone: jiff::tz::TimeZone::fixed(offset) }
    }

    /// The same zone at another instant.
    #[must_use]
    pub fn at(&self, now: DateTime<Utc>) -> Self {
        Self { now, zone: self.zone.clone() }
    }

    /// The UTC offset in force at `t`.
    #[must_use]
    pub fn offset_at(&self, t: DateTime<Utc>) -> FixedOffset {
        // Beyond the tz database's years (±9999), the offset in force now.
        let seconds = jiff::Timestamp::from_millisecond(t.timestamp_millis())
            .or_else(|_| jiff::Timestamp::from_millisecond(self.now.timestamp_millis()))
            .map_or(0, |ts| self.zone.to_offset(ts).seconds());
        FixedOffset::east_opt(seconds).unwrap_or(FixedOffset::east_opt(0).expect("zero offset"))
    }

    /// `t` on the wall clock of this zone.
    #[must_use]
    pub fn local(&self, t: DateTime<Utc>) -> DateTime<FixedOffset> {
        t.with_timezone(&self.offset_at(t))
    }

    /// Now, on the wall clock of this zone.
    #[must_use]
    pub fn local_now(&self) -> DateTime<FixedOffset> {
        self.local(self.now)
    }

    /// The instant a wall-clock time names in this zone, with the rules in force on its date.
    /// A time skipped by a daylight-saving jump (02:30 on a spring-forward night) moves forward
    /// by the gap; a time that happens twice takes its first occurrence (RFC 5545's rule, and
    /// Temporal's "compatible"). `None` when out of range.
    #[must_use]
    pub fn instant(&self, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
        // Beyond the tz database's years (±9999), today's offset is as good as any.
        let far = || self.offset_at(self.now).from_local_datetime(&wall).single().map(|t| t.to_utc());
        self.zoned(wall).or_else(far)
    }

    fn zoned(&self, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
        let civil = jiff::civil::DateTime::new(
            i16::try_from(wall.year()).ok()?,
            i8::try_from(wall.month()).ok()?,
            i8::try_from(wall.day()).ok()?,
            i8::try_from(wall.hour()).ok()?,
            i8::try_from(wall.minute()).ok()?,
            i8::try_from(wall.second()).ok()?,
            0,
        )
        .ok()?;
        let ts = self.zone.to_ambiguous_timestamp(civil).compatible().ok()?;
        DateTime::from_timestamp_millis(ts.as_millisecond())
    }

    /// The local calendar day of `t`.
    #[must_use]
    pub fn day_of(&self, t: DateTime<Utc>) -> NaiveDate {
        self.local(t).date_naive()
    }

    /// Local midnight starting `day` (the first instant of the day where midnight is skipped).
    #[must_use]
    pub fn start_of(&self, day: NaiveDate) -> Option<DateTime<Utc>> {
        let civil = jiff::civil::Date::new(
            i16::try_from(day.year()).ok()?,
            i8::try_from(day.month()).ok()?,
            i8::try_from(day.day()).ok()?,
        )
        .ok()?;
        let zoned = civil.to_zoned_datetime(self.zone.clone()).ok()?;
        let start = zoned.start_of_day().ok()?;
        DateTime::from_timestamp_millis(start.timestamp().as_millisecond())
    }
}

impl From<DateTime<FixedOffset>> for Clock {
    fn from(now: DateTime<FixedOffset>) -> Self {
        Self::fixed(now)
    }
}

/// Parse a user's date expression on `clock`. Returns the instant in UTC.
pub fn parse_when(input: &str, clock: &Clock) -> Result<DateTime<Utc>, WhenError> {
    let text = input.trim();
    if text.is_empty() {
        return Err(WhenError::Empty);
    }
    let input = text.to_string();
    let now = clock.local_now().naive_local();
    let (local, exact) = match resolve(text, now) {
        Ok(Stamp::Exact(t)) => return Ok(t),
        Ok(Stamp::Local(t, exact)) => (t, exact),
        Err(Fail::NoMatch) => return Err(WhenError::Unrecognised { input }),
        Err(Fail::Invalid) => return Err(WhenError::InvalidDate { input }),
        Err(Fail::Overflow) => return Err(WhenError::OutOfRange { input }),
    };
    // Now itself is the instant now, even in an hour a fall-back night repeats.
    let base = if local == now { Some(clock.now) } else { clock.instant(local) };
    base.and_then(|t| t.checked_add_signed(TimeDelta::try_seconds(exact)?)).ok_or(WhenError::OutOfRange { input })
}

/// Parse a calendar day (for journals): same vocabulary, returns the local calendar date.
pub fn parse_day(input: &str, clock: &Clock) -> Result<NaiveDate, WhenError> {
    parse_when(input, clock).map(|t| clock.day_of(t))
}

/// Short human form of `t` relative to `now`, Taskwarrior-style: e.g. "3d", "-2h", "5w", "4mo", "1y", "now" (negative = past). Used in listing columns.
pub fn relative(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    const DAY: u64 = 86_400;
    // (at least, unit length, unit): Taskwarrior's vague format, with 365-day years.
    const STEPS: [(u64, u64, &str); 6] = [
        (365 * DAY, 365 * DAY, "y"),
        (84 * DAY, 30 * DAY, "mo"),
        (13 * DAY, 7 * DAY, "w"),
        (DAY, DAY, "d"),
        (3_600, 3_600, "h"),
        (60, 60, "min"),
    ];
    let secs = t.signed_duration_since(now).num_seconds();
    let sign = if secs < 0 { "-" } else { "" };
    let s = secs.unsigned_abs();
    match STEPS.iter().find(|(least, ..)| s >= *least) {
        Some((_, per, unit)) => format!("{sign}{}{unit}", s / per),
        None => "now".to_string(),
    }
}

/// Local calendar form of `t` in the clock's zone: "2026-11-25" when midnight, else "2026-11-25 14:30".
pub fn display(t: DateTime<Utc>, clock: &Clock) -> String {
    let local = clock.local(t);
    let midnight = local.time() == NaiveTime::MIN;
    local.format(if midnight { "%F" } else { "%F %R" }).to_string()
}

/// A parsed instant: either fully specified, or a wall-clock time in the
/// user's zone and a number of seconds of real time after it (`now-2h` is
/// two hours ago even across a daylight-saving change, while `today+1d` is
/// tomorrow's midnight).
enum Stamp {
    Exact(DateTime<Utc>),
    Local(NaiveDateTime, i64),
}

/// Why an input was not read, before the input is attached to make a [`WhenError`].
enum Fail {
    NoMatch,
    Invalid,
    Overflow,
}

/// Turns a missing result of checked date arithmetic into an overflow.
fn fits<T>(value: Option<T>) -> Result<T, Fail> {
    value.ok_or(Fail::Overflow)
}

const END_OF_DAY: NaiveTime = match NaiveTime::from_hms_opt(23, 59, 59) {
    Some(t) => t,
    None => NaiveTime::MIN,
};
const WEEKDAYS: &str = "monday tuesday wednesday thursday friday saturday sunday";
const MONTHS: &str = "january february march april may june july august september october \
                      november december";

/// ISO and Taskwarrior stamps first, then the word-and-duration vocabulary.
fn resolve(text: &str, now: NaiveDateTime) -> Result<Stamp, Fail> {
    let s = text.to_ascii_uppercase();
    let exact = [
        DateTime::parse_from_rfc3339(&s).map(|t| Stamp::Exact(t.to_utc())),
        DateTime::parse_from_str(&s, "%FT%R%#z").map(|t| Stamp::Exact(t.to_utc())),
        NaiveDateTime::parse_from_str(&s, "%Y%m%dT%H%M%SZ").map(|t| Stamp::Exact(t.and_utc())),
    ];
    let local = ["%FT%T", "%FT%R", "%F %T", "%F %R", "%Y%m%dT%H%M%S"]
        .map(|format| NaiveDateTime::parse_from_str(&s, format).map(|t| Stamp::Local(t, 0)));
    let dates = ["%F", "%Y%m%d"].map(|format| NaiveDate::parse_from_str(&s, format));
    let midnight = dates.map(|r| r.map(|d| Stamp::Local(d.and_time(NaiveTime::MIN), 0)));
    // Set when a stamp parser saw a date's shape but an impossible field (2026-02-30, 25:00).
    let mut impossible = false;
    let stamps = exact.into_iter().chain(local).chain(midnight);
    // Only digits start a stamp: chrono would otherwise read `-2026-11-30` as a signed year.
    for stamp in stamps.filter(|_| s.starts_with(|c: char| c.is_ascii_digit())) {
        match stamp {
            Ok(stamp) => return Ok(stamp),
            Err(e) => impossible |= matches!(e.kind(), Kind::OutOfRange | Kind::Impossible),
        }
    }
    match expression(&text.to_lowercase(), now) {
        Err(Fail::NoMatch) if impossible => Err(Fail::Invalid),
        other => other.map(|(t, exact)| Stamp::Local(t, exact)),
    }
}

/// `in 3 days`, or a base (a word, an unsigned duration, or nothing = now) followed by
/// signed durations: `3d`, `-2d`, `today+1w`, `eom-1d+12h`. Whitespace is insignificant.
/// Days, weeks, months and years move the wall clock; hours, minutes and seconds are
/// real time, returned apart (seconds after the wall-clock time).
fn expression(s: &str, now: NaiveDateTime) -> Result<(NaiveDateTime, i64), Fail> {
    let words: Vec<&str> = s.split_whitespace().collect();
    if let Some((&"in", rest)) = words.split_first() {
        let (n, unit) = duration(&rest.concat())?;
        return shift((now, 0), false, n, unit);
    }
    let compact = words.concat();
    let mut terms = Vec::new();
    let mut start = 0;
    for (i, c) in compact.char_indices() {
        if i > start && (c == '+' || c == '-') {
            terms.push(&compact[start..i]);
            start = i;
        }
    }
    terms.push(&compact[start..]);
    let mut at = (now, 0);
    for (i, term) in terms.into_iter().enumerate() {
        let (negative, body) = match (term.strip_prefix('+'), term.strip_prefix('-')) {
            (Some(body), _) => (false, body),
            (_, Some(body)) => (true, body),
            _ if i == 0 => match named(term, now)? {
                Some(base) => {
                    at = (base, 0);
                    continue;
                }
                None => (false, term),
            },
            _ => return Err(Fail::NoMatch),
        };
        let (n, unit) = duration(body)?;
        at = shift(at, negative, n, unit)?;
    }
    Ok(at)
}

#[derive(Clone, Copy)]
enum Unit {
    /// Seconds of real time.
    Exact(i64),
    /// Days on the wall clock.
    Days(i64),
    Months(u32),
}

/// `30min`, `3d`, `2weeks`, `1mo`: a count and a unit (a bare `m` is refused as ambiguous).
fn duration(s: &str) -> Result<(u32, Unit), Fail> {
    let split = s.find(|c: char| !c.is_ascii_digit()).filter(|&i| i > 0);
    let (digits, word) = s.split_at(split.ok_or(Fail::NoMatch)?);
    let unit = match word {
        "s" | "sec" | "secs" | "second" | "seconds" => Unit::Exact(1),
        "min" | "mins" | "minute" | "minutes" => Unit::Exact(60),
        "h" | "hr" | "hrs" | "hour" | "hours" => Unit::Exact(3_600),
        "d" | "day" | "days" => Unit::Days(1),
        "w" | "wk" | "wks" | "week" | "weeks" => Unit::Days(7),
        "mo" | "mos" | "mth" | "mths" | "month" | "months" => Unit::Months(1),
        "y" | "yr" | "yrs" | "year" | "years" => Unit::Months(12),
        _ => return Err(Fail::NoMatch),
    };
    // Only ASCII digits are left, so the parse can fail only by being too large.
    let n = digits.parse().map_err(|_| Fail::Overflow)?;
    Ok((n, unit))
}

/// Moves `at` (a wall-clock time and seconds of real time after it) by `n`
/// units; months and years are calendar months, clamped to the month's end.
fn shift(
    (wall, exact): (NaiveDateTime, i64),
    negative: bool,
    n: u32,
    unit: Unit,
) -> Result<(NaiveDateTime, i64), Fail> {
    let signed = |per: i64| fits(i64::from(n).checked_mul(per).map(|v| if negative { -v } else { v }));
    match unit {
        Unit::Months(per) => {
            let months = Months::new(fits(n.checked_mul(per))?);
            let wall = fits(if negative { wall.checked_sub_months(months) } else { wall.checked_add_months(months) })?;
            Ok((wall, exact))
        }
        Unit::Days(per) => {
            let delta = fits(TimeDelta::try_seconds(fits(signed(per)?.checked_mul(86_400))?))?;
            Ok((fits(wall.checked_add_signed(delta))?, exact))
        }
        Unit::Exact(per) => {
            let exact = fits(exact.checked_add(signed(per)?))?;
            // Beyond chrono's range either way: refused here, as the days are.
            fits(TimeDelta::try_seconds(exact))?;
            fits(wall.checked_add_signed(TimeDelta::seconds(exact)))?;
            Ok((wall, exact))
        }
    }
}

/// Named dates, period bounds, a time of day, weekdays, month names and
/// ordinal days; `Ok(None)` when `word` is none of them.
fn named(word: &str, now: NaiveDateTime) -> Result<Option<NaiveDateTime>, Fail> {
    let today = now.date();
    let (day, end) = match word {
        "now" => return Ok(Some(now)),
        "today" => (Some(today), false),
        "tomorrow" => (today.succ_opt(), false),
        "yesterday" => (today.pred_opt(), false),
        "later" | "someday" => (NaiveDate::from_ymd_opt(9999, 12, 30), false),
        _ => {
            if let Some(bound) = period_bound(word, today) {
                bound
            } else if let Some(time) = time_of_day(word) {
                // The next such time: today's if it is still ahead, else tomorrow's.
                let at = today.and_time(time);
                return Ok(Some(if at > now { at } else { fits(today.succ_opt())?.and_time(time) }));
            } else {
                match calendar_word(word, today) {
                    Some(day) => (Some(fits(day)?), false),
                    None => return Ok(None),
                }
            }
        }
    };
    let time = if end { END_OF_DAY } else { NaiveTime::MIN };
    Ok(Some(fits(day)?.and_time(time)))
}

/// Taskwarrior's period bounds: `so` (start) or `eo` (end), then `p` (the
/// previous), `n` (the next) or nothing (this one), then `d` (day), `w`
/// (week), `ww` (work week, Monday to Friday), `m`, `q` (quarter) or `y`:
/// `sonw` is next Monday, `eoq` the last day of this quarter. The day (None
/// past the calendar's end) and whether it is the end; `None` when `word` is
/// no such bound.
fn period_bound(word: &str, today: NaiveDate) -> Option<(Option<NaiveDate>, bool)> {
    const UNITS: [&str; 6] = ["d", "w", "ww", "m", "q", "y"];
    let (end, rest) = match (word.strip_prefix("so"), word.strip_prefix("eo")) {
        (Some(rest), _) => (false, rest),
        (_, Some(rest)) => (true, rest),
        _ => return None,
    };
    let (step, unit) = match rest.split_at_checked(1) {
        Some(("p", unit)) if UNITS.contains(&unit) => (-1, unit),
        Some(("n", unit)) if UNITS.contains(&unit) => (1, unit),
        _ if UNITS.contains(&rest) => (0, rest),
        _ => return None,
    };
    let months = |first: Option<NaiveDate>, n: u32| {
        let first = first?;
        let shift = |d: NaiveDate, by: i32| match by {
            by if by < 0 => d.checked_sub_months(Months::new(by.unsigned_abs())),
            by => d.checked_add_months(Months::new(by.unsigned_abs())),
        };
        let start = shift(first, step * i32::try_from(n).ok()?)?;
        let last = start.checked_add_months(Months::new(n))?.pred_opt();
        Some((start, last?))
    };
    let bounds = match unit {
        "d" => today.checked_add_signed(TimeDelta::days(step.into())).map(|d| (d, d)),
        "w" | "ww" => {
            let monday = today.week(Weekday::Mon).checked_first_day();
            let start = monday.and_then(|m| m.checked_add_signed(TimeDelta::days(7 * i64::from(step))));
            let length = if unit == "ww" { 4 } else { 6 };
            start.and_then(|s| Some((s, s.checked_add_days(Days::new(length))?)))
        }
        "m" => months(today.with_day(1), 1),
        "q" => months(NaiveDate::from_ymd_opt(today.year(), (today.month0() / 3) * 3 + 1, 1), 3),
        _ => months(NaiveDate::from_ymd_opt(today.year(), 1, 1), 12),
    };
    Some((bounds.map(|(start, last)| if end { last } else { start }), end))
}

/// `10:30`, `9:05` or `10:30:15`: a time of day (hours of one or two
/// digits, minutes and seconds of two).
fn time_of_day(word: &str) -> Option<NaiveTime> {
    let parts: Vec<&str> = word.split(':').collect();
    let digits = |p: &str, lengths: &[usize]| lengths.contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit());
    let shaped =
        matches!(parts.len(), 2 | 3) && digits(parts[0], &[1, 2]) && parts[1..].iter().all(|p| digits(p, &[2]));
    if !shaped {
        return None;
    }
    let number = |i: usize| parts.get(i).map_or(Some(0), |p| p.parse::<u32>().ok());
    NaiveTime::from_hms_opt(number(0)?, number(1)?, number(2)?)
}

/// Weekday names, month names (both abbreviable to 3+ letters) and ordinals like `15th`:
/// the next such day strictly after `today`. `None` when `word` is none of them.
fn calendar_word(word: &str, today: NaiveDate) -> Option<Option<NaiveDate>> {
    let abbreviates = |full: &str| word.len() >= 3 && full.starts_with(word);
    if let Some(index) = WEEKDAYS.split_whitespace().position(abbreviates) {
        let from = u64::from(today.weekday().num_days_from_monday());
        let ahead = (u64::try_from(index).ok()? + 7 - from) % 7;
        let ahead = if ahead == 0 { 7 } else { ahead };
        return Some(today.checked_add_days(Days::new(ahead)));
    }
    if let Some(index) = MONTHS.split_whitespace().position(abbreviates) {
        let month = u32::try_from(index).ok()? + 1;
        let this_year = NaiveDate::from_ymd_opt(today.year(), month, 1)?;
        let year = today.year() + i32::from(this_year <= today);
        return Some(NaiveDate::from_ymd_opt(year, month, 1));
    }
    let (digits, suffix) = word.split_at_checked(word.len().checked_sub(2)?)?;
    if digits.is_empty() || digits.len() > 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u32 = digits.parse().ok()?;
    let expected = match (n % 100, n % 10) {
        (11..=13, _) => "th",
        (_, 1) => "st",
        (_, 2) => "nd",
        (_, 3) => "rd",
        _ => "th",
    };
    if !(1..=31).contains(&n) || suffix != expected {
        return None;
    }
    // Some month within the next year has a day `n` after today (the 31st skips short months).
    let first = today.with_day(1)?;
    let next = (0..=12).filter_map(|k| first.checked_add_months(Months::new(k))?.with_day(n)).find(|d| *d > today);
    Some(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Wednesday 2026-11-25, 10:30 at +01:00.
    const NOW: &str = "2026-11-25T10:30:00+01:00";

    fn at(s: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(s).unwrap()
    }

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    /// `a => b` pairs separated by `;` or newlines.
    fn pairs(cases: &str) -> impl Iterator<Item = (&str, &str)> {
        cases.split(['\n', ';']).map(|c| c.trim().split_once(" => ").unwrap())
    }

    /// Checks `input => expected` pairs against [`NOW`], or against the instant named by the
    /// last `@ => instant` pair. Expected values are wall-clock times in that instant's offset
    /// (a bare date means 00:00) unless they end in `Z`.
    fn check(cases: &str) {
        let mut now = at(NOW);
        for (input, expected) in pairs(cases) {
            if input == "@" {
                now = at(expected);
                continue;
            }
            let expected = match expected.len() {
                10 => at(&format!("{expected}T00:00:00{}", now.offset())),
                _ if expected.ends_with('Z') => at(expected),
                _ => at(&format!("{expected}{}", now.offset())),
            };
            let got = parse_when(input, &now.into());
            assert_eq!(got, Ok(expected.with_timezone(&Utc)), "{input:?} at {now}");
        }
    }

    #[test]
    fn iso_and_named_dates() {
        check(
            "2026-11-30 => 2026-11-30; 20261130 => 2026-11-30; 2026-11-30T14:00 => 2026-11-30T14:00:00
            2026-11-30 14:00 => 2026-11-30T14:00:00; 2026-11-30T14:00:00 => 2026-11-30T14:00:00
            2026-11-30t14:05:09 => 2026-11-30T14:05:09; 2026-11-30T14:00:00Z => 2026-11-30T14:00:00Z
            20261130T140000Z => 2026-11-30T14:00:00Z; 2026-11-30T14:00:00-05:00 => 2026-11-30T19:00:00Z
            20261130t140000z => 2026-11-30T14:00:00Z; 2026-11-30T14:00-05:00 => 2026-11-30T19:00:00Z
            2026-11-30T14:00z => 2026-11-30T14:00:00Z; 20261130T140000 => 2026-11-30T14:00:00
            now => 2026-11-25T09:30:00Z; today => 2026-11-25; sod => 2026-11-25; eod => 2026-11-25T23:59:59
            tomorrow => 2026-11-25T23:00:00Z; TOMORROW => 2026-11-26; yesterday => 2026-11-24; sow => 2026-11-23
            eow => 2026-11-29T23:59:59; som => 2026-11-01; eom => 2026-11-30T23:59:59; soy => 2026-01-01
            eoy => 2026-12-31T23:59:59; later => 9999-12-30; Someday => 9999-12-30",
        );
    }

    #[test]
    fn offsets_and_rollover() {
        // The second line is late evening west of UTC: the 26th in UTC, the 25th locally.
        check(
            "@ => 2026-11-25T10:30:00-08:00; today => 2026-11-25T08:00:00Z
            @ => 2026-11-25T23:30:00-05:00; today => 2026-11-25T05:00:00Z; 1st => 2026-12-01
            @ => 2026-12-10T09:00:00+01:00; eom => 2026-12-31T23:59:59; som => 2026-12-01
            jan => 2027-01-01; eoy+1d => 2027-01-01T23:59:59; sun => 2026-12-13
            @ => 2026-12-31T12:00:00+01:00; tomorrow => 2027-01-01; fri => 2027-01-01
            @ => 2028-02-03T12:00:00+01:00; eom => 2028-02-29T23:59:59
            @ => 2026-11-23T08:00:00+01:00; sow => 2026-11-23; mon => 2026-11-30
            @ => 2026-11-29T08:00:00+01:00; eow => 2026-11-29T23:59:59
            @ => 2027-01-31T08:00:00+01:00; 1mo => 2027-02-28T08:00:00; 30th => 2027-03-30",
        );
        let late = at("2026-11-25T23:30:00-05:00");
        assert_eq!(parse_day("today", &late.into()), Ok(day("2026-11-25")));
    }

    #[test]
    fn weekdays_months_ordinals() {
        // Today is Wednesday the 25th, so `wednesday` and `25th` are a week and a month away.
        check(
            "friday => 2026-11-27; Fri => 2026-11-27; thurs => 2026-11-26; mon => 2026-11-30; tues => 2026-12-01
            sun => 2026-11-29; wednesday => 2026-12-02; wed => 2026-12-02; jan => 2027-01-01; December => 2026-12-01
            nov => 2027-11-01; sept => 2027-09-01; 1st => 2026-12-01; 2nd => 2026-12-02; 23rd => 2026-12-23
            15th => 2026-12-15; 26th => 2026-11-26; 25th => 2026-12-25; 31st => 2026-12-31",
        );
    }

    #[test]
    fn durations() {
        check(
            "3d => 2026-11-28T10:30:00; 2w => 2026-12-09T10:30:00; 1mo => 2026-12-25T10:30:00
            2months => 2027-01-25T10:30:00; 1y => 2027-11-25T10:30:00; 4h => 2026-11-25T14:30:00
            30min => 2026-11-25T11:00:00; 90s => 2026-11-25T10:31:30; +3d => 2026-11-28T10:30:00
            now+3d => 2026-11-28T10:30:00; today+1w => 2026-12-02; today + 1w => 2026-12-02
            -2d => 2026-11-23T10:30:00; in 3 days => 2026-11-28T10:30:00; In 2 Hours => 2026-11-25T12:30:00
            in\t3d => 2026-11-28T10:30:00; 3days => 2026-11-28T10:30:00; 3 days => 2026-11-28T10:30:00
            2weeks => 2026-12-09T10:30:00; eom-1d => 2026-11-29T23:59:59; 1y-1d => 2027-11-24T10:30:00
            tomorrow+9h-30min => 2026-11-26T08:30:00; fri+17h => 2026-11-27T17:00:00",
        );
    }

    #[test]
    fn parse_day_uses_local_calendar() {
        let cases = "tomorrow => 2026-11-26; fri => 2026-11-27; eod => 2026-11-25
            2026-11-30T23:30:00-05:00 => 2026-12-01; 2026-11-30T23:30:00Z => 2026-12-01";
        for (input, expected) in pairs(cases) {
            assert_eq!(parse_day(input, &at(NOW).into()), Ok(day(expected)), "{input}");
        }
        let frob = parse_day("frob", &at(NOW).into());
        assert!(matches!(frob, Err(WhenError::Unrecognised { .. })));
    }

    #[test]
    fn errors() {
        let err = |s| parse_when(s, &at(NOW).into()).unwrap_err();
        assert_eq!(err(""), WhenError::Empty);
        assert_eq!(err("  \t"), WhenError::Empty);
        let msg = r#"cannot read "frob" as a date (try 2026-12-24, tomorrow, friday, eom, 3d)"#;
        assert_eq!(err(" frob ").to_string(), msg);
        let cases = [
            "Unrecognised frob 3 3m d now+ + in in\tfrob 2st 32nd 0th mo 1.5d next\tmonday ++3d",
            "Unrecognised today+tomorrow 2026-11-30+1d 2026-11-30T 2026-1 x\ny -2026-11-30",
            "InvalidDate 2026-02-30 2026-13-01 2026-11-30T25:00 2026-11-31T10:00:00Z 20260230",
            "OutOfRange 99999999y 99999999999d later+300000y -99999999mo 4294967295w",
        ];
        for case in cases {
            let mut words = case.split(' ');
            let kind = words.next().unwrap();
            for bad in words {
                let debug = format!("{:?}", err(bad));
                assert_eq!(debug, format!("{kind} {{ input: {bad:?} }}"));
            }
        }
        for e in [err(""), err("x\ny"), err("2026-02-30"), err("99999999y")] {
            let text = e.to_string();
            assert!(!text.contains('\n') && text.contains("tomorrow"), "{text}");
        }
        // Nothing the user types may panic.
        for odd in "🙂 é1st 1é - T +-3d 99999999999999999999s ｍon 3ｄ 3dé".split(' ') {
            let _ = (parse_when(odd, &at(NOW).into()), parse_day(odd, &at(NOW).into()));
        }
    }

    /// `input => expected UTC instant` on a clock in `zone` at `now` (UTC).
    fn check_zone(zone: &str, now: &str, cases: &str) {
        let clock = Clock::in_zone(at(now).to_utc(), zone).unwrap();
        for (input, expected) in pairs(cases) {
            let got = parse_when(input, &clock);
            assert_eq!(got, Ok(at(expected).to_utc()), "{input:?} in {zone} at {now}");
        }
    }

    #[test]
    fn dates_take_the_offset_in_force_on_their_own_day() {
        // Berlin: +01:00 in winter, +02:00 from 2027-03-28 02:00 (to 03:00) until 2027-10-31.
        let winter = "2026-11-25T10:30:00+01:00";
        check_zone(
            "Europe/Berlin",
            winter,
            "2027-07-01 => 2027-06-30T22:00:00Z; 2027-01-15 => 2027-01-14T23:00:00Z
            2027-03-28 => 2027-03-27T23:00:00Z; 2027-03-29 => 2027-03-28T22:00:00Z
            2027-03-28T01:59 => 2027-03-28T00:59:00Z; 2027-03-28T03:00 => 2027-03-28T01:00:00Z
            2027-03-28T02:30 => 2027-03-28T01:30:00Z; 2026-10-25T02:30 => 2026-10-25T00:30:00Z
            2026-10-25T03:30 => 2026-10-25T02:30:00Z; 2027-07-01T12:00:00Z => 2027-07-01T12:00:00Z",
        );
        // The day before spring-forward: relative words land in summer time past the jump.
        check_zone(
            "Europe/Berlin",
            "2027-03-27T10:00:00+01:00",
            "tomorrow => 2027-03-27T23:00:00Z; tomorrow+1d => 2027-03-28T22:00:00Z; eow => 2027-03-28T21:59:59Z
            3d => 2027-03-30T08:00:00Z; mon => 2027-03-28T22:00:00Z; today => 2027-03-26T23:00:00Z",
        );
        // Hours, minutes and seconds are real time across the jump; days are calendar days.
        check_zone(
            "Europe/Berlin",
            "2027-03-28T04:10:00+02:00",
            "now-2h => 2027-03-28T00:10:00Z; now-90min => 2027-03-28T00:40:00Z; in 3 hours => 2027-03-28T05:10:00Z
            now-1d => 2027-03-27T03:10:00Z; today+1d => 2027-03-28T22:00:00Z; today+3h => 2027-03-28T02:00:00Z
            eod+1s => 2027-03-28T22:00:00Z; 2h => 2027-03-28T04:10:00Z",
        );
        // In the hour a fall-back night repeats, now is the instant now.
        check_zone(
            "Europe/Berlin",
            "2026-10-25T02:30:00+01:00",
            "now => 2026-10-25T01:30:00Z; now+1h => 2026-10-25T02:30:00Z; now-1h => 2026-10-25T00:30:00Z",
        );
        // The day of fall-back: today began at +02:00, tomorrow begins at +01:00.
        check_zone(
            "Europe/Berlin",
            "2026-10-25T12:00:00+01:00",
            "today => 2026-10-24T22:00:00Z; tomorrow => 2026-10-25T23:00:00Z; eod => 2026-10-25T22:59:59Z",
        );
    }

    #[test]
    fn period_bounds_and_times_of_day_as_taskwarrior_reads_them() {
        // What `task calc WORD` gives at this instant (a Friday), rc.weekstart=monday.
        check_zone(
            "Europe/Berlin",
            "2026-11-27T15:20:00+01:00",
            "sod => 2026-11-26T23:00:00Z; eod => 2026-11-27T22:59:59Z; sow => 2026-11-22T23:00:00Z
            eow => 2026-11-29T22:59:59Z; soww => 2026-11-22T23:00:00Z; eoww => 2026-11-27T22:59:59Z
            sopw => 2026-11-15T23:00:00Z; eopw => 2026-11-22T22:59:59Z; sonw => 2026-11-29T23:00:00Z
            eonw => 2026-12-06T22:59:59Z; som => 2026-10-31T23:00:00Z; eom => 2026-11-30T22:59:59Z
            sopm => 2026-09-30T22:00:00Z; eopm => 2026-10-31T22:59:59Z; sonm => 2026-11-30T23:00:00Z
            eonm => 2026-12-31T22:59:59Z; soq => 2026-09-30T22:00:00Z; eoq => 2026-12-31T22:59:59Z
            sopq => 2026-06-30T22:00:00Z; eopq => 2026-09-30T21:59:59Z; sonq => 2026-12-31T23:00:00Z
            eonq => 2027-03-31T21:59:59Z; soy => 2025-12-31T23:00:00Z; eoy => 2026-12-31T22:59:59Z
            sopy => 2024-12-31T23:00:00Z; eopy => 2025-12-31T22:59:59Z; sony => 2026-12-31T23:00:00Z
            eony => 2027-12-31T22:59:59Z; sopd => 2026-11-25T23:00:00Z; eopd => 2026-11-26T22:59:59Z
            sond => 2026-11-27T23:00:00Z; eond => 2026-11-28T22:59:59Z; sopww => 2026-11-15T23:00:00Z
            eopww => 2026-11-20T22:59:59Z; sonww => 2026-11-29T23:00:00Z; eonww => 2026-12-04T22:59:59Z
            10:30 => 2026-11-28T09:30:00Z; 16:00 => 2026-11-27T15:00:00Z; 9:05:30 => 2026-11-28T08:05:30Z
            eoq+1d => 2027-01-01T22:59:59Z; sonw+9h => 2026-11-30T08:00:00Z",
        );
        let clock = Clock::in_zone(at("2026-11-27T15:20:00+01:00").to_utc(), "Europe/Berlin").unwrap();
        for word in ["socw", "sox", "eonx", "so", "sopp", "25:00", "10:60", "123:00"] {
            assert!(parse_when(word, &clock).is_err(), "{word}");
        }
    }

    #[test]
    fn southern_zone_with_midnight_transitions() {
        // São Paulo kept daylight saving until 2019, switching at midnight: 2018-11-04 had no
        // 00:00 (it began at 01:00, -02:00), and 2019-02-16 had 23:00–24:00 twice.
        check_zone(
            "America/Sao_Paulo",
            "2018-10-20T12:00:00-03:00",
            "2018-11-03 => 2018-11-03T03:00:00Z; 2018-11-04 => 2018-11-04T03:00:00Z
            2018-11-05 => 2018-11-05T02:00:00Z; 2019-02-16T23:30 => 2019-02-17T01:30:00Z
            2019-02-17 => 2019-02-17T03:00:00Z; 2018-12-25T09:00 => 2018-12-25T11:00:00Z
            2027-01-15 => 2027-01-15T03:00:00Z",
        );
        check_zone(
            "America/Sao_Paulo",
            "2018-11-03T12:00:00-03:00",
            "tomorrow => 2018-11-04T03:00:00Z; eod => 2018-11-04T02:59:59Z; tomorrow+1d => 2018-11-05T02:00:00Z",
        );
        let clock = Clock::in_zone(at("2018-11-03T12:00:00-03:00").to_utc(), "America/Sao_Paulo").unwrap();
        assert_eq!(parse_day("tomorrow", &clock), Ok(day("2018-11-04")));
        assert_eq!(display(at("2018-11-04T03:00:00Z").to_utc(), &clock), "2018-11-04 01:00");
        assert_eq!(display(at("2018-11-05T02:00:00Z").to_utc(), &clock), "2018-11-05");
        assert_eq!(clock.start_of(day("2018-11-04")), Some(at("2018-11-04T03:00:00Z").to_utc()));
        assert!(Clock::in_zone(clock.now, "Mars/Olympus_Mons").is_err());
    }

    #[test]
    fn relative_forms() {
        let base = at("2026-11-25T09:30:00Z").with_timezone(&Utc);
        let cases = "0 => now; 59 => now; -59 => now; 300 => 5min; 5400 => 1h; -7200 => -2h; 86399 => 23h
            -86400 => -1d; 1123200 => 1w; 3024000 => 5w; 10368000 => 4mo; 34560000 => 1y; -69120000 => -2y";
        for (secs, expected) in pairs(cases) {
            let t = base + TimeDelta::seconds(secs.parse().unwrap());
            assert_eq!(relative(t, base), expected, "{secs}s");
        }
        // Years are 365 days, as in Taskwarrior, so leap days add up over millennia.
        let later = parse_when("later", &at(NOW).into()).unwrap();
        assert_eq!(relative(later, base), "7978y");
    }

    #[test]
    fn display_forms() {
        let now = at(NOW);
        let show = |s: &str| display(at(s).with_timezone(&Utc), &now.into());
        assert_eq!(show("2026-11-30T00:00:00+01:00"), "2026-11-30");
        assert_eq!(show("2026-11-30T14:30:00+01:00"), "2026-11-30 14:30");
        assert_eq!(show("2026-11-30T00:00:00Z"), "2026-11-30 01:00");
        assert_eq!(show("2026-11-25T23:59:59+01:00"), "2026-11-25 23:59");
        let tomorrow = parse_when("tomorrow", &now.into()).unwrap();
        assert_eq!(display(tomorrow, &now.into()), "2026-11-26");
    }
}
