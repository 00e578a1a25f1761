// Task dates: reading what people type and writing it back, by the rules of
// engine/src/when.rs, which this module ports. The engine's fixtures
// (web/test/fixtures/quick-add.json) hold both to the same answers.
//
// Everything is pure: the caller passes `now` and the user's time zone
// ({@link Zone}: the browser's rules, {@link browserZone}, or a fixed offset
// in minutes east for fixtures), and a date without a time means 00:00 on
// that day with the offset in force on that day (daylight saving included),
// as the engine's `Clock` does. Internally a wall-clock time is a count of
// milliseconds since 1970-01-01T00:00 *on that wall clock* ("local ms"), and
// a calendar day a count of days since 1970-01-01; both are exact integers.
//
// Stamps such as `2026-11-30T14:00` are read the way chrono (the engine's
// date library) reads the engine's formats, including its leniencies
// (`2026-1-5`, whitespace before numbers) and which failures count as "not a
// real calendar date" rather than "cannot read".

import { MAX_YEAR, MIN_YEAR, MS_PER_DAY, civilFromDays, daysFromCivil, formatDay, formatTime } from "./calendar.ts";

const HINT = "try 2026-12-24, tomorrow, friday, eom, 3d";

/** Why a date could not be read (the engine's `WhenError` variants). */
export type WhenErrorKind = "empty" | "unrecognised" | "invalid_date" | "out_of_range";

/** A date that could not be read; `message` is the engine's one-line text. */
export class WhenError extends Error {
  override readonly name = "WhenError";

  constructor(
    readonly kind: WhenErrorKind,
    /** What was typed, trimmed ("" for `empty`). */
    readonly input: string,
  ) {
    super(whenMessage(kind, input));
  }
}

function whenMessage(kind: WhenErrorKind, input: string): string {
  const quoted = debugQuote(input);
  switch (kind) {
    case "empty":
      return `no date given (${HINT})`;
    case "unrecognised":
      return `cannot read ${quoted} as a date (${HINT})`;
    case "invalid_date":
      return `${quoted} is not a real calendar date (${HINT})`;
    case "out_of_range":
      return `${quoted} is too far away to be a date (${HINT})`;
  }
}

/** Rules that turn wall-clock times into instants and back (engine `Clock`'s zone). */
export interface ZoneRules {
  /** Minutes east of UTC in force at the instant `utcMs`. */
  offsetAt(utcMs: number): number;
  /**
   * The instant (UTC ms) that the wall-clock time `localMs` names, with the
   * rules in force on its date: a time skipped by a daylight-saving jump
   * moves forward by the gap, one that happens twice takes its first
   * occurrence (the engine's "compatible" choice).
   */
  instant(localMs: number): number;
}

/** The user's zone: its rules, or a fixed offset in minutes east of UTC. */
export type Zone = number | ZoneRules;

/** A zone that is always `minutes` east of UTC. */
export function fixedZone(minutes: number): ZoneRules {
  const ms = minutes * MS_PER_MINUTE;
  return { offsetAt: () => minutes, instant: (local) => local - ms };
}

/**
 * The browser's own zone (the operating system's, with its daylight-saving
 * rules). `Date`'s local-time constructor resolves skipped and repeated
 * times the way the engine does.
 */
export const browserZone: ZoneRules = {
  offsetAt: (utc) => -new Date(utc).getTimezoneOffset(),
  instant: (local) => {
    const wall = new Date(local);
    const t = new Date(0);
    t.setFullYear(wall.getUTCFullYear(), wall.getUTCMonth(), wall.getUTCDate());
    t.setHours(wall.getUTCHours(), wall.getUTCMinutes(), wall.getUTCSeconds(), wall.getUTCMilliseconds());
    return t.getTime();
  },
};

/** The rules of `zone`. */
export function rulesOf(zone: Zone): ZoneRules {
  return typeof zone === "number" ? fixedZone(zone) : zone;
}

/**
 * Parses a user's date expression relative to `now` in `zone`. Throws
 * {@link WhenError}. Precision is milliseconds (the engine keeps nanoseconds
 * of an exact stamp, but stores milliseconds).
 */
export function parseWhen(input: string, now: Date, zone: Zone): Date {
  const text = trimWhitespace(input);
  if (text === "") throw new WhenError("empty", "");
  const rules = rulesOf(zone);
  let stamp: Stamp;
  try {
    stamp = resolve(text, now.getTime() + rules.offsetAt(now.getTime()) * MS_PER_MINUTE);
  } catch (e) {
    if (e instanceof Fail) throw new WhenError(e.kind, text);
    throw e;
  }
  if ("exact" in stamp) return new Date(stamp.exact);
  // Now itself is the instant now, even in an hour a fall-back night repeats.
  const nowLocal = now.getTime() + rules.offsetAt(now.getTime()) * MS_PER_MINUTE;
  const base = stamp.local === nowLocal ? now.getTime() : rules.instant(stamp.local);
  const utc = base + (stamp.seconds ?? 0) * 1000;
  if (!Number.isFinite(base) || !inRange(base) || !inRange(utc)) throw new WhenError("out_of_range", text);
  return new Date(utc);
}

/** The local day (days since 1970-01-01) of the instant `t` in `zone` (engine `Clock::day_of`). */
export function dayIn(t: number, zone: Zone): number {
  return Math.floor((t + rulesOf(zone).offsetAt(t) * MS_PER_MINUTE) / MS_PER_DAY);
}

/** Parses a calendar day (for journals): same vocabulary; returns "YYYY-MM-DD" in the user's zone. */
export function parseDay(input: string, now: Date, zone: Zone): string {
  return formatDay(dayIn(parseWhen(input, now, zone).getTime(), zone));
}

/**
 * Short human form of `t` relative to `now`, Taskwarrior-style: "3d", "-2h",
 * "5w", "4mo", "1y", "now" (negative = past). Used in listing columns.
 */
export function relative(t: Date, now: Date): string {
  const DAY = 86_400;
  // (at least, unit length, unit): Taskwarrior's vague format, with 365-day years.
  const steps: readonly [number, number, string][] = [
    [365 * DAY, 365 * DAY, "y"],
    [84 * DAY, 30 * DAY, "mo"],
    [13 * DAY, 7 * DAY, "w"],
    [DAY, DAY, "d"],
    [3_600, 3_600, "h"],
    [60, 60, "min"],
  ];
  // Whole seconds, counted toward zero like chrono's `num_seconds`.
  const secs = Math.trunc((t.getTime() - now.getTime()) / 1000);
  const sign = secs < 0 ? "-" : "";
  const s = Math.abs(secs);
  const step = steps.find(([least]) => s >= least);
  return step ? `${sign}${Math.floor(s / step[1])}${step[2]}` : "now";
}

/**
 * Local calendar form of `t` in `zone`: "2026-11-25" at midnight, else
 * "2026-11-25 14:30" (engine `display`).
 */
export function display(t: Date, zone: Zone): string {
  const local = t.getTime() + rulesOf(zone).offsetAt(t.getTime()) * MS_PER_MINUTE;
  const day = Math.floor(local / MS_PER_DAY);
  const ms = local - day * MS_PER_DAY;
  if (ms === 0) return formatDay(day);
  const minutes = Math.floor(ms / MS_PER_MINUTE);
  return `${formatDay(day)} ${pad2(Math.floor(minutes / 60))}:${pad2(minutes % 60)}`;
}

// ---------------------------------------------------------------------------
// Instants as the engine's JSON writes them (chrono's RFC 3339, "AutoSi").
// ---------------------------------------------------------------------------

/** `t` the way the engine serialises a UTC time: `2026-11-27T00:00:00Z`, with `.123` only when needed. */
export function formatInstant(t: Date): string {
  return formatTime(t.getTime(), true);
}

const INSTANT = /^([+-]?\d{4,})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$/;

/**
 * Milliseconds since the epoch of an RFC 3339 time as the engine writes it
 * (any fraction, truncated to milliseconds as the engine stores it; a leap
 * second `:60` is the next second). Throws on anything else.
 */
export function parseInstant(text: string): number {
  const m = INSTANT.exec(text);
  if (!m) throw new Error(`not an RFC 3339 time: ${text}`);
  const [, y, mo, d, h, mi, s, frac = "", zone = "Z"] = m;
  const day = daysFromCivil(Number(y), Number(mo), Number(d));
  const ms = Number(frac.padEnd(3, "0").slice(0, 3));
  const zoneMinutes = Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4));
  const offset = zone === "Z" ? 0 : zone.startsWith("-") ? -zoneMinutes : zoneMinutes;
  const secs = Number(h) * 3600 + Number(mi) * 60 + Number(s);
  return day * MS_PER_DAY + secs * 1000 + ms - offset * MS_PER_MINUTE;
}

function pad2(n: number): string {
  return String(n).padStart(2, "0");
}

// ---------------------------------------------------------------------------
// Strings as Rust sees them.
// ---------------------------------------------------------------------------

// Rust's `char::is_whitespace` is the Unicode White_Space property; JS's
// `\s` and `trim` also take U+FEFF, so the property is spelled out.
const LEADING_SPACE = /^\p{White_Space}+/u;
const TRAILING_SPACE = /\p{White_Space}+$/u;

/** Rust's `str::trim`. */
export function trimWhitespace(s: string): string {
  return s.replace(LEADING_SPACE, "").replace(TRAILING_SPACE, "");
}

/** Rust's `str::split_whitespace`. */
export function splitWhitespace(s: string): string[] {
  return s.split(/\p{White_Space}+/u).filter((w) => w !== "");
}

/** Rust's `str::to_ascii_uppercase`: only a-z change. */
function asciiUpper(s: string): string {
  return s.replace(/[a-z]+/g, (run) => run.toUpperCase());
}

// Rust's `{:?}` escapes what `char::is_printable` refuses (these general
// categories, except the space itself) and grapheme extenders.
const UNPRINTABLE = /^[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}\p{Grapheme_Extend}]$/u;
const ESCAPES: Readonly<Record<string, string>> = {
  "\0": "\\0",
  "\t": "\\t",
  "\r": "\\r",
  "\n": "\\n",
  "\\": "\\\\",
  '"': '\\"',
};

/** A string quoted as Rust's `{:?}` writes it, as the engine's error messages show values. */
export function debugQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const escape = ESCAPES[ch];
    if (escape !== undefined) out += escape;
    else if (ch !== " " && UNPRINTABLE.test(ch)) out += `\\u{${(ch.codePointAt(0) ?? 0).toString(16)}}`;
    else out += ch;
  }
  return `${out}"`;
}

// ---------------------------------------------------------------------------
// Calendar arithmetic over chrono's range (proleptic Gregorian, year 0 exists).
// ---------------------------------------------------------------------------

const MS_PER_MINUTE = 60_000;


const MIN_DAY = daysFromCivil(MIN_YEAR, 1, 1);
const MAX_DAY = daysFromCivil(MAX_YEAR, 12, 31);
const MIN_MS = MIN_DAY * MS_PER_DAY;
const MAX_MS = (MAX_DAY + 1) * MS_PER_DAY - 1;

function inRange(ms: number): boolean {
  return ms >= MIN_MS && ms <= MAX_MS;
}

function daysInMonth(year: number, month: number): number {
  if (month !== 2) return [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1] ?? 0;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  return leap ? 29 : 28;
}

/** chrono's `NaiveDate::from_ymd_opt`: the day, or null when there is no such date in range. */
function fromYmd(year: number, month: number, date: number): number | null {
  if (year < MIN_YEAR || year > MAX_YEAR || month < 1 || month > 12) return null;
  if (date < 1 || date > daysInMonth(year, month)) return null;
  return daysFromCivil(year, month, date);
}

/** A day moved by `n` days, or null when that leaves chrono's range. */
function addDays(day: number, n: number): number | null {
  const moved = day + n;
  return moved >= MIN_DAY && moved <= MAX_DAY ? moved : null;
}

/** chrono's `checked_add_months` (negative: `checked_sub_months`): calendar months, clamped to the month's end. */
function addMonths(day: number, months: number): number | null {
  if (months === 0) return day;
  const { year, month, date } = civilFromDays(day);
  const total = year * 12 + month - 1 + months;
  if (total > 2 ** 31 - 1 || total < -(2 ** 31)) return null;
  const y = Math.floor(total / 12);
  const m = total - y * 12 + 1;
  return fromYmd(y, m, Math.min(date, daysInMonth(y, m)));
}

/** Monday = 0 (1970-01-01 was a Thursday). */
function weekday(day: number): number {
  return (((day + 3) % 7) + 7) % 7;
}

// ---------------------------------------------------------------------------
// Reading: stamps first, then the word-and-duration vocabulary.
// ---------------------------------------------------------------------------

/**
 * A parsed instant: exact (UTC ms), or a wall-clock time at the user's offset
 * (local ms) and seconds of real time after it (`now-2h` is two hours ago
 * even across a daylight-saving change, while `today+1d` is tomorrow's midnight).
 */
type Stamp = { exact: number } | { local: number; seconds?: number };

/** Why an input was not read, before the input is attached to make a {@link WhenError}. */
class Fail {
  constructor(readonly kind: "unrecognised" | "invalid_date" | "out_of_range") {}
}
const NO_MATCH = new Fail("unrecognised");
const OVERFLOW = new Fail("out_of_range");

/** Turns a missing result of checked date arithmetic into an overflow, as the engine's `fits`. */
function fits<T>(value: T | null): T {
  if (value === null) throw OVERFLOW;
  return value;
}

/** ISO and Taskwarrior stamps first, then the word-and-duration vocabulary. */
function resolve(text: string, nowLocal: number): Stamp {
  const s = asciiUpper(text);
  // Set when a stamp parser saw a date's shape but an impossible field (2026-02-30, 25:00).
  let impossible = false;
  // Only digits start a stamp: chrono would otherwise read `-2026-11-30` as a signed year.
  if (/^[0-9]/.test(s)) {
    for (const read of STAMPS) {
      try {
        return read(s);
      } catch (e) {
        if (!(e instanceof Reject)) throw e;
        impossible ||= e.impossible;
      }
    }
  }
  try {
    const [local, seconds] = expression(text.toLowerCase(), nowLocal);
    return { local, seconds };
  } catch (e) {
    if (e === NO_MATCH && impossible) throw new Fail("invalid_date");
    throw e;
  }
}

/**
 * `in 3 days`, or a base (a word, an unsigned duration, or nothing = now)
 * followed by signed durations: `3d`, `-2d`, `today+1w`, `eom-1d+12h`.
 * Whitespace is insignificant. Days, weeks, months and years move the wall
 * clock; hours, minutes and seconds are real time, returned apart (seconds
 * after the wall-clock time).
 */
function expression(s: string, now: number): [number, number] {
  const words = splitWhitespace(s);
  if (words[0] === "in") {
    const [n, unit] = duration(words.slice(1).join(""));
    return shift([now, 0], false, n, unit);
  }
  const compact = words.join("");
  const terms: string[] = [];
  let start = 0;
  for (let i = 0; i < compact.length; i++) {
    const c = compact[i];
    if (i > start && (c === "+" || c === "-")) {
      terms.push(compact.slice(start, i));
      start = i;
    }
  }
  terms.push(compact.slice(start));
  let at: [number, number] = [now, 0];
  for (const [i, term] of terms.entries()) {
    let negative: boolean;
    let body: string;
    if (term.startsWith("+") || term.startsWith("-")) {
      negative = term.startsWith("-");
      body = term.slice(1);
    } else if (i === 0) {
      const base = named(term, now);
      if (base !== null) {
        at = [base, 0];
        continue;
      }
      negative = false;
      body = term;
    } else {
      throw NO_MATCH;
    }
    const [n, unit] = duration(body);
    at = shift(at, negative, n, unit);
  }
  return at;
}

/** Seconds of real time, days on the wall clock, or calendar months. */
type Unit = { exact: number } | { days: number } | { months: number };

const UNITS: ReadonlyMap<string, Unit> = new Map<string, Unit>([
  ...["s", "sec", "secs", "second", "seconds"].map((w): [string, Unit] => [w, { exact: 1 }]),
  ...["min", "mins", "minute", "minutes"].map((w): [string, Unit] => [w, { exact: 60 }]),
  ...["h", "hr", "hrs", "hour", "hours"].map((w): [string, Unit] => [w, { exact: 3_600 }]),
  ...["d", "day", "days"].map((w): [string, Unit] => [w, { days: 1 }]),
  ...["w", "wk", "wks", "week", "weeks"].map((w): [string, Unit] => [w, { days: 7 }]),
  ...["mo", "mos", "mth", "mths", "month", "months"].map((w): [string, Unit] => [w, { months: 1 }]),
  ...["y", "yr", "yrs", "year", "years"].map((w): [string, Unit] => [w, { months: 12 }]),
]);

const U32_MAX = 4_294_967_295;

/** `30min`, `3d`, `2weeks`, `1mo`: a count and a unit (a bare `m` is refused as ambiguous). */
function duration(s: string): [number, Unit] {
  const m = /^([0-9]+)([^0-9][\s\S]*)$/.exec(s);
  if (!m) throw NO_MATCH;
  const [, digits = "", word = ""] = m;
  const unit = UNITS.get(word);
  if (!unit) throw NO_MATCH;
  // The engine reads the count as a u32: a longer one is too far away, not unreadable.
  if (BigInt(digits) > BigInt(U32_MAX)) throw OVERFLOW;
  return [Number(digits), unit];
}

/** No shift of more seconds than chrono's whole range can land in it. */
const MAX_SPAN_SECONDS = (MAX_MS - MIN_MS) / 1000;

/**
 * Moves `at` (a wall-clock time and seconds of real time after it) by `n`
 * units; months and years are calendar months, clamped to the month's end.
 */
function shift([wall, exact]: [number, number], negative: boolean, n: number, unit: Unit): [number, number] {
  if ("months" in unit) {
    const months = n * unit.months;
    // The engine's u32 month count overflows past U32_MAX, and chrono refuses more than i32::MAX.
    if (months > 2 ** 31 - 1) throw OVERFLOW;
    const day = Math.floor(wall / MS_PER_DAY);
    const moved = fits(addMonths(day, negative ? -months : months));
    return [moved * MS_PER_DAY + (wall - day * MS_PER_DAY), exact];
  }
  const secs = n * ("days" in unit ? unit.days * 86_400 : unit.exact);
  // Checked first so that the millisecond arithmetic below stays exact.
  if (secs > MAX_SPAN_SECONDS) throw OVERFLOW;
  const signed = negative ? -secs : secs;
  if ("days" in unit) {
    const moved = wall + signed * 1000;
    if (!inRange(moved)) throw OVERFLOW;
    return [moved, exact];
  }
  const total = exact + signed;
  if (Math.abs(total) > MAX_SPAN_SECONDS || !inRange(wall + total * 1000)) throw OVERFLOW;
  return [wall, total];
}

const END_OF_DAY = (23 * 3600 + 59 * 60 + 59) * 1000;
const WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];
const MONTHS = [
  "january",
  "february",
  "march",
  "april",
  "may",
  "june",
  "july",
  "august",
  "september",
  "october",
  "november",
  "december",
];

/**
 * Named dates, period bounds, a time of day, weekdays, month names and
 * ordinal days (local ms); null when `word` is none of them.
 */
function named(word: string, now: number): number | null {
  const today = Math.floor(now / MS_PER_DAY);
  let day: number | null;
  let end = false;
  switch (word) {
    case "now":
      return now;
    case "today":
      day = today;
      break;
    case "tomorrow":
      day = addDays(today, 1);
      break;
    case "yesterday":
      day = addDays(today, -1);
      break;
    case "later":
    case "someday":
      day = fromYmd(9999, 12, 30);
      break;
    default: {
      const bound = periodBound(word, today);
      const time = timeOfDay(word);
      if (bound !== undefined) {
        [day, end] = bound;
      } else if (time !== null) {
        // The next such time: today's if it is still ahead, else tomorrow's.
        const at = today * MS_PER_DAY + time;
        return at > now ? at : fits(addDays(today, 1)) * MS_PER_DAY + time;
      } else {
        const found = calendarWord(word, today);
        if (found === undefined) return null;
        day = found;
      }
    }
  }
  return fits(day) * MS_PER_DAY + (end ? END_OF_DAY : 0);
}

const PERIODS = ["d", "w", "ww", "m", "q", "y"];

/**
 * Taskwarrior's period bounds (engine `period_bound`): `so` (start) or `eo`
 * (end), then `p` (the previous), `n` (the next) or nothing (this one), then
 * `d`, `w`, `ww` (Monday to Friday), `m`, `q` or `y`. The day (null past the
 * calendar's end) and whether it is the end; `undefined` when `word` is no
 * such bound.
 */
function periodBound(word: string, today: number): [number | null, boolean] | undefined {
  if (!word.startsWith("so") && !word.startsWith("eo")) return undefined;
  const end = word.startsWith("eo");
  const rest = word.slice(2);
  let step = 0;
  let unit = rest;
  if ((rest.startsWith("p") || rest.startsWith("n")) && PERIODS.includes(rest.slice(1))) {
    step = rest.startsWith("p") ? -1 : 1;
    unit = rest.slice(1);
  } else if (!PERIODS.includes(rest)) {
    return undefined;
  }
  const { year, month } = civilFromDays(today);
  const months = (first: number | null, n: number): [number, number] | null => {
    const start = first === null ? null : addMonths(first, step * n);
    const next = start === null ? null : addMonths(start, n);
    const last = next === null ? null : addDays(next, -1);
    return start === null || last === null ? null : [start, last];
  };
  let bounds: [number, number] | null;
  if (unit === "d") {
    const d = addDays(today, step);
    bounds = d === null ? null : [d, d];
  } else if (unit === "w" || unit === "ww") {
    const start = addDays(today, -weekday(today) + 7 * step);
    const last = start === null ? null : addDays(start, unit === "ww" ? 4 : 6);
    bounds = start === null || last === null ? null : [start, last];
  } else if (unit === "m") {
    bounds = months(fromYmd(year, month, 1), 1);
  } else if (unit === "q") {
    bounds = months(fromYmd(year, Math.floor((month - 1) / 3) * 3 + 1, 1), 3);
  } else {
    bounds = months(fromYmd(year, 1, 1), 12);
  }
  return [bounds === null ? null : end ? bounds[1] : bounds[0], end];
}

/** `10:30`, `9:05` or `10:30:15`: milliseconds into the day (engine `time_of_day`); null when not one. */
function timeOfDay(word: string): number | null {
  const m = /^([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?$/.exec(word);
  if (!m) return null;
  const [h, min, sec] = [Number(m[1]), Number(m[2]), Number(m[3] ?? "0")];
  if (h > 23 || min > 59 || sec > 59) return null;
  return ((h * 60 + min) * 60 + sec) * 1000;
}

/**
 * Weekday names, month names (both abbreviable to 3+ letters) and ordinals
 * like `15th`: the next such day strictly after `today`. `undefined` when
 * `word` is none of them; null when it is one but out of range.
 */
function calendarWord(word: string, today: number): number | null | undefined {
  const abbreviates = (full: string): boolean => word.length >= 3 && full.startsWith(word);
  const weekdayIndex = WEEKDAYS.findIndex(abbreviates);
  if (weekdayIndex >= 0) {
    const ahead = (weekdayIndex + 7 - weekday(today)) % 7;
    return addDays(today, ahead === 0 ? 7 : ahead);
  }
  const monthIndex = MONTHS.findIndex(abbreviates);
  const { year } = civilFromDays(today);
  if (monthIndex >= 0) {
    const thisYear = fromYmd(year, monthIndex + 1, 1);
    if (thisYear === null) return undefined;
    return fromYmd(year + (thisYear <= today ? 1 : 0), monthIndex + 1, 1);
  }
  const m = /^([0-9]{1,2})(st|nd|rd|th)$/.exec(word);
  if (!m) return undefined;
  const n = Number(m[1]);
  if (n < 1 || n > 31 || m[2] !== ordinalSuffix(n)) return undefined;
  // Some month within the next year has a day `n` after today (the 31st skips short months).
  const firstOfMonth = today - civilFromDays(today).date + 1;
  for (let k = 0; k <= 12; k++) {
    const first = addMonths(firstOfMonth, k);
    if (first === null) continue;
    const { year: y, month } = civilFromDays(first);
    const candidate = fromYmd(y, month, n);
    if (candidate !== null && candidate > today) return candidate;
  }
  return null;
}

function ordinalSuffix(n: number): string {
  if (n % 100 >= 11 && n % 100 <= 13) return "th";
  return ({ 1: "st", 2: "nd", 3: "rd" } as Record<number, string>)[n % 10] ?? "th";
}

// ---------------------------------------------------------------------------
// Stamps, read as chrono reads the engine's formats.
//
// Only success, and whether a failure was chrono's OutOfRange/Impossible
// (the engine then says "not a real calendar date"), matter here, so every
// other failure is one `Reject`. chrono works on UTF-8 bytes; where that
// differs from UTF-16 indexing it is noted.
// ---------------------------------------------------------------------------

class Reject {
  constructor(readonly impossible: boolean) {}
}
const SHAPE = new Reject(false);
const IMPOSSIBLE = new Reject(true);

type Field = "year" | "month" | "day" | "hour" | "minute" | "second";

/** chrono's parsing width and accepted range of each numeric field. */
const FIELDS: Readonly<Record<Field, { width: number; min: number; max: number }>> = {
  year: { width: 4, min: 0, max: 9999 },
  month: { width: 2, min: 1, max: 12 },
  day: { width: 2, min: 1, max: 31 },
  hour: { width: 2, min: 0, max: 23 },
  minute: { width: 2, min: 0, max: 59 },
  second: { width: 2, min: 0, max: 60 },
};

type Item = { field: Field } | { literal: string } | { space: true } | { offset: true };

const SPECIFIERS: Readonly<Record<string, readonly Item[]>> = {
  Y: [{ field: "year" }],
  m: [{ field: "month" }],
  d: [{ field: "day" }],
  H: [{ field: "hour" }],
  M: [{ field: "minute" }],
  S: [{ field: "second" }],
  F: [{ field: "year" }, { literal: "-" }, { field: "month" }, { literal: "-" }, { field: "day" }],
  R: [{ field: "hour" }, { literal: ":" }, { field: "minute" }],
  T: [{ field: "hour" }, { literal: ":" }, { field: "minute" }, { literal: ":" }, { field: "second" }],
  "#z": [{ offset: true }],
};

/** The items of a strftime format, for the few specifiers the engine uses. */
function items(format: string): Item[] {
  const out: Item[] = [];
  for (const [, spec, space, literal] of format.matchAll(/%(#z|[YmdHMSFRT])|(\s+)|([^%\s]+)/g)) {
    if (spec !== undefined) out.push(...(SPECIFIERS[spec] ?? []));
    else if (space !== undefined) out.push({ space: true });
    else out.push({ literal: literal ?? "" });
  }
  return out;
}

interface Parsed {
  year?: number;
  month?: number;
  day?: number;
  hour?: number;
  minute?: number;
  second?: number;
  offset?: number;
}

/** chrono's `scan::number`: `min` to `max` ASCII digits. */
function number(s: string, min: number, max: number): [number, string] {
  let i = 0;
  while (i < max && i < s.length && s.charCodeAt(i) >= 48 && s.charCodeAt(i) <= 57) i++;
  if (i < min) throw SHAPE;
  return [Number(s.slice(0, i)), s.slice(i)];
}

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= "0" && c <= "9";
}

/** UTF-8 length: chrono compares byte lengths. */
function byteLength(s: string): number {
  return new TextEncoder().encode(s).length;
}

/**
 * chrono's `scan::timezone_offset` (a `−` minus sign allowed): seconds east.
 * Non-ASCII text never passes a digit test, so its byte length matters only
 * for "at least two bytes", which `byteLength` answers.
 */
function timezoneOffset(
  s: string,
  consumeColon: (s: string) => string,
  allowMissingMinutes: boolean,
): [number, string] {
  const first = s[0];
  if (first === "Z" || first === "z") return [0, s.slice(1)];
  if (first !== "+" && first !== "-" && first !== "\u2212") throw SHAPE;
  let rest = s.slice(1);
  if (!isDigit(rest[0]) || !isDigit(rest[1])) throw SHAPE;
  const hours = Number(rest.slice(0, 2));
  rest = consumeColon(rest.slice(2));
  let minutes = 0;
  const bytes = byteLength(rest);
  if (bytes >= 2) {
    const [m1, m2] = [rest[0] ?? "", rest[1]];
    if (m1 >= "0" && m1 <= "5" && isDigit(m2)) minutes = Number(rest.slice(0, 2));
    else if (m1 >= "6" && m1 <= "9" && isDigit(m2)) throw IMPOSSIBLE;
    else throw SHAPE;
    rest = rest.slice(2);
  } else if (!allowMissingMinutes || bytes === 1) {
    throw SHAPE;
  }
  const seconds = hours * 3600 + minutes * 60;
  return [first === "+" ? seconds : -seconds, rest];
}

const colonOrSpace = (s: string): string => s.replace(/^[:\p{White_Space}]+/u, "");
const trimStart = (s: string): string => s.replace(LEADING_SPACE, "");

/** chrono's `format::parse` over `items`: every item, and nothing left over. */
function parseItems(input: string, list: readonly Item[]): Parsed {
  const parsed: Parsed = {};
  let s = input;
  for (const item of list) {
    if ("literal" in item) {
      if (!s.startsWith(item.literal)) throw SHAPE;
      s = s.slice(item.literal.length);
    } else if ("space" in item) {
      s = trimStart(s);
    } else if ("offset" in item) {
      [parsed.offset, s] = timezoneOffset(trimStart(s), colonOrSpace, true);
    } else {
      // The year is always the first item, and stamps are only tried on text
      // starting with a digit, so chrono's signed-year branch never applies.
      const { width, min, max } = FIELDS[item.field];
      let value: number;
      [value, s] = number(trimStart(s), 1, width);
      if (value < min || value > max) throw IMPOSSIBLE;
      parsed[item.field] = value;
    }
  }
  if (s !== "") throw SHAPE;
  return parsed;
}

/** Local ms of parsed fields (chrono's `to_naive_datetime_with_offset(0)`); a leap second runs into the next. */
function naive(p: Parsed): number {
  const day = fromYmd(p.year ?? 0, p.month ?? 0, p.day ?? 0);
  if (day === null) throw IMPOSSIBLE;
  const secs = (p.hour ?? 0) * 3600 + (p.minute ?? 0) * 60 + (p.second ?? 0);
  return day * MS_PER_DAY + secs * 1000;
}

/** UTC ms of a local time at `offset` seconds east, if chrono's `FixedOffset` allows it. */
function atOffset(local: number, offset: number): number {
  if (offset <= -86_400 || offset >= 86_400) throw IMPOSSIBLE;
  return local - offset * 1000;
}

/** chrono's `DateTime::parse_from_rfc3339`: strict positions, a `T`/`t`/space separator, any fraction. */
function rfc3339(s: string): number {
  if (byteLength(s) < 19) throw SHAPE;
  // Each position is checked in order, and every earlier one was ASCII, so
  // UTF-16 indices are byte indices here.
  const digit = (i: number): number => {
    if (!isDigit(s[i])) throw SHAPE;
    return s.charCodeAt(i) - 48;
  };
  const expect = (i: number, ok: readonly string[]): void => {
    if (!ok.includes(s[i] ?? "")) throw SHAPE;
  };
  const year = digit(0) * 1000 + digit(1) * 100 + digit(2) * 10 + digit(3);
  expect(4, ["-"]);
  const month = digit(5) * 10 + digit(6);
  expect(7, ["-"]);
  const date = digit(8) * 10 + digit(9);
  const day = fromYmd(year, month, date);
  if (day === null) throw IMPOSSIBLE;
  expect(10, ["t", "T", " "]);
  const hour = digit(11) * 10 + digit(12);
  expect(13, [":"]);
  const minute = digit(14) * 10 + digit(15);
  expect(16, [":"]);
  let second = digit(17) * 10 + digit(18);
  // A leap second is 59 plus a whole second of nanoseconds.
  let nanos = second === 60 ? 1_000_000_000 : 0;
  if (second === 60) second = 59;
  let rest: string;
  if (s[19] === ".") {
    const [digits, after] = number(s.slice(20), 1, 9);
    nanos += digits * 10 ** (9 - (s.length - 20 - after.length));
    rest = after.replace(/^[0-9]+/, "");
  } else {
    rest = s.slice(19);
  }
  // chrono's `NaiveTime::from_hms_nano_opt`: a second of nanoseconds only on a leap second.
  const leap = nanos >= 1_000_000_000;
  if (hour >= 24 || minute >= 60 || second >= 60 || nanos >= 2_000_000_000 || (leap && second !== 59)) throw IMPOSSIBLE;
  const colon = (t: string): string => {
    if (t[0] !== ":") throw SHAPE;
    return t.slice(1);
  };
  const [offset, after] = timezoneOffset(rest, colon, false);
  if (after !== "") throw SHAPE;
  const local = day * MS_PER_DAY + (hour * 3600 + minute * 60 + second) * 1000 + Math.floor(nanos / 1_000_000);
  return atOffset(local, offset);
}

/** A stamp format read as chrono's `DateTime`, `NaiveDateTime` or `NaiveDate` `parse_from_str`. */
function stamp(format: string, kind: "offset" | "utc" | "local"): (s: string) => Stamp {
  const list = items(format);
  return (s) => {
    const parsed = parseItems(s, list);
    switch (kind) {
      case "offset":
        return { exact: atOffset(naive(parsed), parsed.offset ?? 0) };
      case "utc":
        return { exact: naive(parsed) };
      case "local":
        return { local: naive(parsed) };
    }
  };
}

/**
 * A Taskwarrior date stamp (`20261125T143000Z`) or RFC 3339, in UTC ms, or
 * null (engine/src/recur `parse_until`, which reads the `until` UDA; it
 * trims whitespace first). Case-sensitive, as chrono's `parse_from_str` is.
 */
export function parseStamp(text: string): number | null {
  const s = trimWhitespace(text);
  // A stamp's year comes first: chrono would read a sign as a signed year,
  // which then swallows the month's digits, so only a digit can start one.
  if (!/^[0-9]/.test(s.replace(LEADING_SPACE, ""))) return null;
  for (const read of [TASKWARRIOR_STAMP, (t: string) => ({ exact: rfc3339(t) })]) {
    try {
      const stamp = read(s);
      if ("exact" in stamp) return stamp.exact;
    } catch (e) {
      if (!(e instanceof Reject)) throw e;
    }
  }
  return null;
}

const TASKWARRIOR_STAMP = stamp("%Y%m%dT%H%M%SZ", "utc");

/** The engine's stamp parsers, in its order: exact ones, local date-times, then dates (midnight). */
const STAMPS: readonly ((s: string) => Stamp)[] = [
  (s) => ({ exact: rfc3339(s) }),
  stamp("%FT%R%#z", "offset"),
  TASKWARRIOR_STAMP,
  ...["%FT%T", "%FT%R", "%F %T", "%F %R", "%Y%m%dT%H%M%S"].map((f) => stamp(f, "local")),
  ...["%F", "%Y%m%d"].map((f) => stamp(f, "local")),
];
