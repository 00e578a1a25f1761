// Proleptic Gregorian calendar arithmetic, as chrono does it: days since
// 1970-01-01 and back (H. Hinnant's algorithms, exact for any year), and a
// day written the way chrono writes a `NaiveDate`. Shared by the document
// layer (doc.ts) and the date vocabulary (when.ts).

export const MS_PER_DAY = 86_400_000;
/** chrono's `NaiveDate` range. */
export const MIN_YEAR = -262_143;
export const MAX_YEAR = 262_142;

export interface Civil {
  year: number;
  month: number;
  date: number;
}

/** Days since 1970-01-01 of a date. */
export function daysFromCivil(year: number, month: number, date: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * ((month + 9) % 12) + 2) / 5) + date - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
}

/** The date `days` after 1970-01-01. */
export function civilFromDays(days: number): Civil {
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const month = mp < 10 ? mp + 3 : mp - 9;
  return { year: yoe + era * 400 + (month <= 2 ? 1 : 0), month, date: doy - Math.floor((153 * mp + 2) / 5) + 1 };
}

/** A day as chrono writes it: 4-digit years, a sign outside 0..=9999. */
export function formatDay(day: number): string {
  const { year, month, date } = civilFromDays(day);
  const digits = String(Math.abs(year)).padStart(4, "0");
  const y = year >= 0 && year <= 9999 ? digits : `${year < 0 ? "-" : "+"}${digits}`;
  return `${y}-${String(month).padStart(2, "0")}-${String(date).padStart(2, "0")}`;
}

const pad = (n: number, width = 2): string => String(n).padStart(width, "0");

/**
 * RFC 3339 in UTC as chrono writes it: seconds, plus milliseconds when there
 * are any (`SecondsFormat::AutoSi` at millisecond precision). serde writes
 * `Z` (`zulu`); `to_rfc3339` writes `+00:00`.
 */
export function formatTime(ms: number, zulu: boolean): string {
  const days = Math.floor(ms / MS_PER_DAY);
  const rest = ms - days * MS_PER_DAY;
  const milli = rest % 1000;
  const secs = (rest - milli) / 1000;
  const clock = `${pad(Math.floor(secs / 3600))}:${pad(Math.floor(secs / 60) % 60)}:${pad(secs % 60)}`;
  return `${formatDay(days)}T${clock}${milli ? `.${pad(milli, 3)}` : ""}${zulu ? "Z" : "+00:00"}`;
}
