// Filters, urgency and ordering for listings: Taskwarrior's filter language,
// a port of engine/src/query.rs (and of `Replica::list`, which puts them
// together for `heph ls`). The engine's fixtures
// (web/test/fixtures/listing.json) hold both to the same rows, order,
// urgency and error messages.
//
// A filter is a sequence of words, joined by an implicit `and`:
// - `+tag` / `-tag`: has (hasn't) the tag; `+OVERDUE`, `+BLOCKED`, … are
//   Taskwarrior's virtual tags ({@link Virtual});
// - `attr:value` and `attr.modifier:value` on every attribute ({@link Attr}):
//   `due.before:eow`, `project.not:home`, `description.has:milk`,
//   `tags.none:`, `until.any:`, and on UDAs kept from a Taskwarrior import;
// - `and`, `or`, `xor`, `not` (or `!`) and parentheses, with Taskwarrior's
//   precedence (`not` binds tightest, then `and`, `or`, `xor`);
// - any other word must appear in the title (case-insensitive).
//
// Without a `status` or `kind` in the filter, the default report applies:
// tasks that are pending or started (not waiting, not recurring templates).
// Deleted nodes (tombstones) are seen only by a filter that asks for them
// (`status:deleted`, `+DELETED`). An attribute or modifier heph does not
// know is an error that names it, never a silent empty list.
//
// Everything that depends on the user's clock and offset (`due:today`,
// `+WEEK`) is resolved by {@link Filter.parse}, so a parsed filter means the
// same wherever it is evaluated. Evaluation works on index rows
// ({@link Summary}), derived from nodes as the engine derives its
// `NodeSummary`.

import { MS_PER_DAY, civilFromDays, daysFromCivil } from "./calendar.ts";
import type { Kind, NodeId, NodeJson, Priority, Status } from "./model.ts";
import { abbreviated, badValueAs, parseKind, parsePriority, parseStatus } from "./grammar.ts";
import {
  WhenError,
  type Zone,
  dayIn,
  debugQuote,
  parseInstant,
  parseStamp,
  parseWhen,
  rulesOf,
  splitWhitespace,
  trimWhitespace,
} from "./when.ts";

/** The index row of a node: what listing, filtering and sorting need (engine `NodeSummary`). Times are Unix ms. */
export interface Summary {
  id: NodeId;
  kind: Kind;
  title: string;
  tags: string[];
  project: string | null;
  status: Status | null;
  priority: Priority | null;
  created: number;
  modified: number;
  due: number | null;
  wait: number | null;
  scheduled: number | null;
  start: number | null;
  end: number | null;
  deleted: boolean;
  depends: NodeId[];
  links: NodeId[];
  /** Number of annotations. */
  annotations: number;
  /** Journal day, "YYYY-MM-DD". */
  date: string | null;
  /** Other attributes (Taskwarrior UDAs, recurrence), sorted by name. */
  uda: [string, string][];
}

const instantOrNull = (t: string | undefined): number | null => (t === undefined ? null : parseInstant(t));

/**
 * Summaries of nodes already seen: a node object is never changed in place
 * (an edit makes a new one), so a listing of thousands re-reads only what
 * changed since the last.
 */
const summaries = new WeakMap<NodeJson, Summary>();

/** The index row of `node` (engine `NodeSummary::of`). */
export function summaryOf(node: NodeJson): Summary {
  let s = summaries.get(node);
  if (!s) {
    s = readSummary(node);
    summaries.set(node, s);
  }
  return s;
}

function readSummary(node: NodeJson): Summary {
  return {
    id: node.id,
    kind: node.kind,
    title: node.title,
    // Sets in the engine: a repeated entry counts once.
    tags: [...new Set(node.tags)],
    project: node.project ?? null,
    status: node.status ?? null,
    priority: node.priority ?? null,
    created: parseInstant(node.created),
    modified: parseInstant(node.modified),
    due: instantOrNull(node.due),
    wait: instantOrNull(node.wait),
    scheduled: instantOrNull(node.scheduled),
    start: instantOrNull(node.start),
    end: instantOrNull(node.end),
    deleted: node.deleted,
    depends: [...new Set(node.depends ?? [])],
    links: [...new Set(node.links)],
    annotations: node.annotations?.length ?? 0,
    date: node.date ?? null,
    // A map in the engine (a `BTreeMap`): one value per name, sorted by name.
    uda: Object.entries(node.uda ?? {}).sort(([a], [b]) => compareCodePoints(a, b)),
  };
}

/** The value of UDA `key` of `row`, if it has one (engine `NodeSummary::uda`). */
export function udaOf(row: Summary, key: string): string | null {
  return row.uda.find(([k]) => k === key)?.[1] ?? null;
}

/**
 * The status a listing shows: `waiting` turns back into `pending` once its
 * wait date has passed, and a pending task with a future wait date waits.
 */
export function effectiveStatus(row: Summary, nowMs: number): Status | null {
  if (row.status === "waiting" && (row.wait === null || row.wait <= nowMs)) return "pending";
  if (row.status === "pending" && row.wait !== null && row.wait > nowMs) return "waiting";
  return row.status;
}

/** Why a filter could not be read; `message` is the engine's text. */
export class FilterError extends Error {
  override readonly name = "FilterError";

  constructor(
    message: string,
    /** For a date: what was wrong with it. */
    readonly problem?: WhenError,
  ) {
    super(message);
  }
}

/** The attributes a filter can name (aliases aside). */
const ATTRIBUTES = [
  "description",
  "project",
  "priority",
  "status",
  "kind",
  "tags",
  "due",
  "wait",
  "scheduled",
  "until",
  "entry",
  "end",
  "start",
  "modified",
  "depends",
  "recur",
  "parent",
  "mask",
  "imask",
  "urgency",
  "uuid",
] as const;

/**
 * A task or node attribute that a filter compares: heph's own, or (`uda`) a
 * Taskwarrior attribute kept in the document's UDA map (`recur`, `parent`,
 * `mask`, `imask`, or a user-defined one).
 */
export type Attr =
  | "description"
  | "project"
  | "priority"
  | "due"
  | "wait"
  | "scheduled"
  /** `until` (recurrence end; a UDA in the document). */
  | "until"
  /** When it was created. */
  | "entry"
  /** When it was done or cancelled. */
  | "end"
  /** When it was started. */
  | "start"
  | "modified"
  | "tags"
  | "depends"
  | "uuid"
  | "urgency"
  | { uda: string };

/**
 * How a value is compared: `partial` is `attr:v` (strings start with `v`,
 * dates fall on the same day); `not` its negation; `is`/`isnt` exactly `v`
 * (or not); `before`/`after`/`by` (at or before); `has`/`hasnt`;
 * `startswith`/`endswith`; `word`/`noword` (a whole word); `none`/`any` (no
 * value, some value).
 */
export type Op =
  | "partial"
  | "is"
  | "not"
  | "isnt"
  | "before"
  | "after"
  | "by"
  | "has"
  | "hasnt"
  | "startswith"
  | "endswith"
  | "word"
  | "noword"
  | "none"
  | "any";

/** A value to compare with, typed by its attribute (engine `Value`). */
export type Value =
  /** Text (compared case-insensitively; stored lower-cased). */
  | { type: "text"; text: string }
  /** An instant (ms) and the bounds of its local day (ms, end exclusive). */
  | { type: "date"; at: number; dayStart: number; dayEnd: number }
  | { type: "number"; value: number }
  /** Nothing (for `.none`, `.any`, or an empty value). */
  | { type: "empty" };

/** Taskwarrior's virtual tags: properties a task has rather than tags it carries (engine `Virtual`). */
export type Virtual =
  /** Started. */
  | "ACTIVE"
  /** Depends on an open task. */
  | "BLOCKED"
  /** Does not depend on an open task. */
  | "UNBLOCKED"
  /** An open task depends on it. */
  | "BLOCKING"
  /** Pending, not blocked, and not scheduled in the future. */
  | "READY"
  /** Due within the next 7 days (from the start of today). */
  | "DUE"
  /** Due today. */
  | "TODAY"
  | "YESTERDAY"
  | "TOMORROW"
  /** Due before now. */
  | "OVERDUE"
  /** Due this week (Monday to Sunday). */
  | "WEEK"
  | "MONTH"
  | "QUARTER"
  | "YEAR"
  /** Hidden until its wait date. */
  | "WAITING"
  /** Pending (or started), not waiting. */
  | "PENDING"
  /** Done. */
  | "COMPLETED"
  | "DELETED"
  /** Part of a recurring series (template or instance). */
  | "RECURRING"
  /** A recurring template. */
  | "TEMPLATE"
  /** An instance of a recurring template. */
  | "INSTANCE"
  /** Has tags. */
  | "TAGGED"
  | "ANNOTATED"
  /** Has a project. */
  | "PROJECT"
  | "PRIORITY"
  | "SCHEDULED"
  | "UNTIL"
  /** Has a user-defined attribute. */
  | "UDA"
  /** The open task (pending, started, waiting, or a recurring template) created last. */
  | "LATEST";

/** Virtual tags by name, aliases included (engine `Virtual::parse`; case-sensitive). */
const VIRTUALS: ReadonlyMap<string, Virtual> = new Map<string, Virtual>([
  ...(
    [
      "ACTIVE",
      "BLOCKED",
      "UNBLOCKED",
      "BLOCKING",
      "READY",
      "DUE",
      "TODAY",
      "YESTERDAY",
      "TOMORROW",
      "OVERDUE",
      "WEEK",
      "MONTH",
      "QUARTER",
      "YEAR",
      "WAITING",
      "PENDING",
      "COMPLETED",
      "DELETED",
      "RECURRING",
      "TEMPLATE",
      "INSTANCE",
      "TAGGED",
      "ANNOTATED",
      "PROJECT",
      "PRIORITY",
      "SCHEDULED",
      "UNTIL",
      "UDA",
      "LATEST",
    ] as const
  ).map((v): [string, Virtual] => [v, v]),
  ["DUETODAY", "TODAY"],
  ["PARENT", "TEMPLATE"],
  ["CHILD", "INSTANCE"],
]);

/** Whether this tag speaks of a task's status, which turns the default report's status rule off. */
function isStatusTag(v: Virtual): boolean {
  return v === "WAITING" || v === "PENDING" || v === "COMPLETED" || v === "DELETED" || v === "TEMPLATE";
}

/** Whether it needs the whole set of tasks (dependencies) to be decided. */
function needsGraphTag(v: Virtual): boolean {
  return v === "BLOCKED" || v === "UNBLOCKED" || v === "BLOCKING" || v === "READY" || v === "LATEST";
}

/**
 * A status a filter asks for, or a row's status as a filter sees it (engine
 * `StatusIs`, `Listed`): heph's statuses (as the listing shows them: waiting
 * once hidden) plus the states Taskwarrior names, a recurring template and
 * a deleted node.
 */
export type StatusIs = Status | "recurring" | "deleted";

/** A filter expression (engine `Expr`). */
export type Expr =
  /** Matches everything. */
  | { type: "true" }
  /** All of these. */
  | { type: "and"; list: Expr[] }
  /** Any of these. */
  | { type: "or"; list: Expr[] }
  /** Exactly one of the two. */
  | { type: "xor"; a: Expr; b: Expr }
  | { type: "not"; expr: Expr }
  /** Carries this tag. */
  | { type: "tag"; tag: string }
  | { type: "virtual"; tag: Virtual }
  /** The status (as the listing shows it) is one of these. */
  | { type: "status"; list: StatusIs[] }
  /** The kind is one of these. */
  | { type: "kind"; list: Kind[] }
  | { type: "compare"; attr: Attr; op: Op; value: Value }
  /** The title contains this word (lower-cased). */
  | { type: "word"; word: string };

const TRUE: Expr = { type: "true" };

/**
 * The instants a filter's relative words stand for, fixed when it is parsed
 * (ms, local day bounds at the user's offset; engine `Bounds`).
 */
export interface Bounds {
  /** When the filter was read. */
  now: number;
  /** Local midnights: yesterday, today, tomorrow, the day after. */
  days: [number, number, number, number];
  /** Today's start plus 7 × 24 h (Taskwarrior's `due` horizon for `+DUE`). */
  imminent: number;
  /** This week (Monday 00:00, next Monday 00:00). */
  week: [number, number];
  month: [number, number];
  quarter: [number, number];
  year: [number, number];
}

const noBounds = (): Bounds => ({
  now: 0,
  days: [0, 0, 0, 0],
  imminent: 0,
  week: [0, 0],
  month: [0, 0],
  quarter: [0, 0],
  year: [0, 0],
});

/**
 * Local midnight starting `day` (days since 1970-01-01) in `zone` (engine
 * `Clock::start_of`: where midnight is skipped, the day's first instant). A
 * day outside the zone library's years (±9999) has none: the engine then
 * uses `i64::MAX`.
 */
function startOf(day: number, zone: Zone): number {
  const { year } = civilFromDays(day);
  return year < -9999 || year > 9999 ? Infinity : rulesOf(zone).instant(day * MS_PER_DAY);
}

/** The bounds at `nowMs` in `zone` (engine `Bounds::at`). */
function boundsAt(nowMs: number, zone: Zone): Bounds {
  const start = (day: number): number => startOf(day, zone);
  const today = dayIn(nowMs, zone);
  const { year, month } = civilFromDays(today);
  // The first of a month, `months` after year-month (months counted from 1).
  const first = (months: number): number => {
    const total = year * 12 + (month - 1) + months;
    const y = Math.floor(total / 12);
    return daysFromCivil(y, total - y * 12 + 1, 1);
  };
  const quarterMonth = Math.floor((month - 1) / 3) * 3 + 1;
  // Monday = 0 (1970-01-01 was a Thursday).
  const monday = today - ((((today + 3) % 7) + 7) % 7);
  const todayStart = start(today);
  return {
    now: nowMs,
    days: [start(today - 1), todayStart, start(today + 1), start(today + 2)],
    imminent: todayStart + 7 * MS_PER_DAY,
    week: [start(monday), start(monday + 7)],
    month: [start(first(0)), start(first(1))],
    quarter: [start(first(quarterMonth - month)), start(first(quarterMonth - month + 3))],
    year: [start(first(1 - month)), start(first(13 - month))],
  };
}

/**
 * Splits the words of a filter into tokens: words given with spaces in them
 * (`'( +a or +b )'`) are split at whitespace, and parentheses are tokens of
 * their own.
 */
function tokens(words: readonly string[]): string[] {
  const out: string[] = [];
  for (const word of words) {
    const whole = trimWhitespace(word);
    // A word that is one `name:value` pair stays whole, as in Taskwarrior,
    // negated or not (`'!project:My Proj'`).
    const bare = whole.startsWith("!") ? whole.slice(1) : whole;
    if (/\p{White_Space}/u.test(whole) && isPair(bare)) {
      if (bare.length < whole.length) out.push("!");
      out.push(bare);
      continue;
    }
    for (const part of splitWhitespace(whole)) {
      let rest = part;
      // `(` opens a group and `!` negates, written apart or not (`!+work`, `!(+a or +b)`).
      while (rest.startsWith("(") || (rest.startsWith("!") && rest.length > 1)) {
        out.push(rest.slice(0, 1));
        rest = rest.slice(1);
      }
      let closing = 0;
      while (rest.endsWith(")")) {
        const r = rest.slice(0, -1);
        // A `)` closes a group unless the word opened one itself (`f(x)`).
        if (r.includes("(")) break;
        closing += 1;
        rest = r;
      }
      if (rest !== "") out.push(rest);
      for (let i = 0; i < closing; i++) out.push(")");
    }
  }
  return out;
}

/** Whether a difference (a value less the one asked for) passes `.before`, `.after` or `.by`; NaN passes none. */
function ordered(op: "before" | "after" | "by", difference: number): boolean {
  if (op === "before") return difference < 0;
  if (op === "after") return difference > 0;
  return difference <= 0;
}

/** Whether `word` is one attribute pair (`name:value`). */
function isPair(word: string): boolean {
  const colon = word.indexOf(":");
  return colon >= 0 && attributeShaped(word.slice(0, colon), word.slice(colon + 1));
}

/** Rust's `eq_ignore_ascii_case` against a lower-case ASCII keyword. */
function isKeyword(token: string | undefined, keyword: string): boolean {
  return token !== undefined && asciiLower(token) === keyword;
}

/** Rust's `to_ascii_lowercase`. */
function asciiLower(s: string): string {
  return s.replace(/[A-Z]+/g, (run) => run.toLowerCase());
}

/** What the whole filter mentions, for the defaults. */
interface Mentions {
  status: boolean;
  kind: boolean;
  deleted: boolean;
}

/** How deep parentheses and `not`s may nest (engine `MAX_DEPTH`). */
const MAX_DEPTH = 64;

class Parser {
  at = 0;
  depth = 0;
  readonly mentions: Mentions = { status: false, kind: false, deleted: false };

  constructor(
    readonly tokens: string[],
    readonly now: Date,
    readonly zone: Zone,
  ) {}

  peek(): string | undefined {
    return this.tokens[this.at];
  }

  /** A whole expression. As in Taskwarrior 2.6, `and` binds tightest, then `or`, then `xor`. */
  xor(): Expr {
    let left = this.or();
    while (isKeyword(this.peek(), "xor")) {
      this.at += 1;
      const right = this.or();
      left = { type: "xor", a: left, b: right };
    }
    return left;
  }

  or(): Expr {
    const terms = [this.and()];
    while (isKeyword(this.peek(), "or")) {
      this.at += 1;
      terms.push(this.and());
    }
    return terms.length === 1 ? terms[0]! : { type: "or", list: terms };
  }

  and(): Expr {
    const terms = [this.unary()];
    for (;;) {
      const t = this.peek();
      if (t === undefined || t === ")") break;
      if (isKeyword(t, "or") || isKeyword(t, "xor")) break;
      if (isKeyword(t, "and")) this.at += 1;
      terms.push(this.unary());
    }
    return terms.length === 1 ? terms[0]! : { type: "and", list: terms };
  }

  unary(): Expr {
    const token = this.peek();
    if (token === undefined) throw new FilterError("the filter ends where a term was expected");
    this.at += 1;
    if (token === "(" || token === "!" || isKeyword(token, "not")) {
      this.depth += 1;
      if (this.depth > MAX_DEPTH) {
        throw new FilterError(`the filter nests parentheses and nots more than ${MAX_DEPTH} deep`);
      }
      const inner = this.nested(token);
      this.depth -= 1;
      return inner;
    }
    if (token === ")") throw new FilterError("a ')' in the filter closes nothing");
    if (["and", "or", "xor"].some((op) => isKeyword(token, op))) {
      throw new FilterError(`${debugQuote(token)} in the filter needs a term on each side`);
    }
    return this.term(token);
  }

  /** The rest of a `(`, `!` or `not`. */
  nested(token: string): Expr {
    if (token !== "(") return { type: "not", expr: this.unary() };
    const inner = this.xor();
    if (this.peek() !== ")") throw new FilterError("a '(' in the filter is never closed");
    this.at += 1;
    return inner;
  }

  term(word: string): Expr {
    if (word.startsWith("+") && word.length > 1) return this.tag(word.slice(1));
    if (word.startsWith("-") && word.length > 1 && !/^[0-9]/.test(word.slice(1))) {
      return { type: "not", expr: this.tag(word.slice(1)) };
    }
    const colon = word.indexOf(":");
    if (colon >= 0) {
      const key = word.slice(0, colon);
      const value = word.slice(colon + 1);
      if (attributeShaped(key, value)) return this.attribute(key, value);
    }
    return { type: "word", word: word.toLowerCase() };
  }

  tag(tag: string): Expr {
    const v = VIRTUALS.get(tag);
    // Case is ignored, as everywhere in a filter (kept lower case).
    if (v === undefined) return { type: "tag", tag: tag.toLowerCase() };
    this.mentions.status ||= isStatusTag(v);
    this.mentions.deleted ||= v === "DELETED";
    return { type: "virtual", tag: v };
  }

  attribute(key: string, value: string): Expr {
    const dot = key.indexOf(".");
    const name = dot < 0 ? key : key.slice(0, dot);
    let op: Op = "partial";
    if (dot >= 0) {
      const m = key.slice(dot + 1);
      const known = modifierOp(m);
      if (known === null) {
        throw new FilterError(
          `unknown modifier ${debugQuote(m)} in ${debugQuote(key)} (known: before, after, by, is, not, isnt, has, hasnt, startswith, endswith, word, noword, none, any)`,
        );
      }
      op = known;
    }
    const canon = canonical(asciiLower(name));
    if (canon === "status") return this.status(key, op, value);
    if (canon === "kind") return this.kind(key, op, value);
    if (canon === null) {
      const lower = asciiLower(name);
      const starts = ATTRIBUTES.filter((a) => lower.length >= 3 && a.startsWith(lower));
      if (starts.length > 1) {
        throw new FilterError(`${debugQuote(name)} is short for more than one attribute (${starts.join(", ")}); type more of it`);
      }
      // A name heph does not know may be a UDA from a Taskwarrior import;
      // the listing refuses it if no node has it.
      return this.compare({ uda: name }, op, value, key);
    }
    const attr: Attr = canon === "recur" || canon === "parent" || canon === "mask" || canon === "imask" ? { uda: canon } : canon;
    return this.compare(attr, op, value, key);
  }

  status(key: string, op: Op, value: string): Expr {
    this.mentions.status = true;
    const negate = negation(op, () => `${debugQuote(key)}: status takes status:X or status.not:X`);
    const list: StatusIs[] = [];
    let all = false;
    for (const raw of value.split(",")) {
      const part = asciiLower(raw);
      if (part === "all" || part === "any") all = true;
      else if (part === "open") list.push("pending", "active");
      else if (part === "deleted") list.push("deleted");
      else if (part === "recurring") list.push("recurring");
      // Taskwarrior's pending includes started tasks.
      else if (part !== "" && "pending".startsWith(part)) list.push("pending", "active");
      else {
        let status: Status;
        try {
          status = parseStatus(part);
        } catch {
          throw new FilterError(
            `${debugQuote(part)} is not one of: pending, active, done, cancelled, waiting, recurring, deleted, open, all`,
          );
        }
        if (status === "pending") list.push("pending", "active");
        else list.push(status);
      }
    }
    this.mentions.deleted ||= list.includes("deleted");
    const expr: Expr = all ? TRUE : { type: "status", list };
    return negate ? { type: "not", expr } : expr;
  }

  kind(key: string, op: Op, value: string): Expr {
    this.mentions.kind = true;
    const negate = negation(op, () => `${debugQuote(key)}: kind takes kind:X or kind.not:X`);
    const expr: Expr =
      asciiLower(value) === "all" || asciiLower(value) === "any"
        ? TRUE
        : { type: "kind", list: badValueAs(FilterError, () => value.split(",").map(parseKind)) };
    return negate ? { type: "not", expr } : expr;
  }

  compare(attr: Attr, op: Op, value: string, key: string): Expr {
    return { type: "compare", attr, op, value: this.value(attr, op, value, key) };
  }

  value(attr: Attr, op: Op, value: string, key: string): Value {
    if (op === "none" || op === "any" || value === "") {
      // `priority.above:` is every task with a priority, as in Taskwarrior.
      const ordering = op === "before" || op === "after" || op === "by";
      if (!["none", "any", "partial", "is", "not", "isnt"].includes(op) && !(attr === "priority" && ordering)) {
        throw new FilterError(`${debugQuote(key)} needs a value`);
      }
      return { type: "empty" };
    }
    const textual = ["has", "hasnt", "startswith", "endswith", "word", "noword"].includes(op);
    switch (kindOf(attr)) {
      case "date": {
        if (textual) {
          throw new FilterError(`${debugQuote(key)}: a date takes before, after, by, is, not, none or any`);
        }
        let at: number;
        try {
          at = parseWhen(value, this.now, this.zone).getTime();
        } catch (e) {
          if (e instanceof WhenError) throw new FilterError(e.message, e);
          throw e;
        }
        const day = dayIn(at, this.zone);
        return { type: "date", at, dayStart: startOf(day, this.zone), dayEnd: startOf(day + 1, this.zone) };
      }
      case "number": {
        if (textual) {
          throw new FilterError(
            `${debugQuote(key)}: a number takes before/below, after/above, by, is, not, none or any`,
          );
        }
        const n = parseF64(value);
        if (n === null) throw new FilterError(`${key}: ${debugQuote(value)} is not a number`);
        return { type: "number", value: n };
      }
      case "set":
        if (op === "before" || op === "after" || op === "by") {
          throw new FilterError(`${debugQuote(key)}: a set takes has, hasnt, is, not, none or any`);
        }
        return { type: "text", text: value.toLowerCase() };
      case "text":
        if (attr === "priority") {
          // `pri:low` means L; what cannot be a priority is refused, as setting one would be.
          return { type: "text", text: badValueAs(FilterError, () => parsePriority(value)).toLowerCase() };
        }
        return { type: "text", text: value.toLowerCase() };
    }
  }
}

/** `status`/`kind` take `X`, `.is`, `.not` and `.isnt`: whether the op negates; else a {@link FilterError}. */
function negation(op: Op, message: () => string): boolean {
  if (op === "partial" || op === "is") return false;
  if (op === "not" || op === "isnt") return true;
  throw new FilterError(message());
}

/** `key:value` is an attribute (not a title word like `https://x.org` or `10:30`). */
function attributeShaped(key: string, value: string): boolean {
  return /^[A-Za-z][A-Za-z0-9_.]*$/.test(key) && !value.startsWith("//");
}

function modifierOp(m: string): Op | null {
  switch (asciiLower(m)) {
    case "before":
    case "under":
    case "below":
      return "before";
    case "after":
    case "over":
    case "above":
      return "after";
    case "by":
      return "by";
    case "is":
    case "equals":
      return "is";
    case "not":
      return "not";
    case "isnt":
      return "isnt";
    case "has":
    case "contains":
      return "has";
    case "hasnt":
      return "hasnt";
    case "startswith":
    case "left":
      return "startswith";
    case "endswith":
    case "right":
      return "endswith";
    case "word":
      return "word";
    case "noword":
      return "noword";
    case "none":
      return "none";
    case "any":
      return "any";
    default:
      return null;
  }
}

type Canonical = (typeof ATTRIBUTES)[number];

const ALIASES: Readonly<Record<string, Canonical>> = {
  title: "description",
  desc: "description",
  pro: "project",
  proj: "project",
  pri: "priority",
  st: "status",
  k: "kind",
  tag: "tags",
  created: "entry",
  sched: "scheduled",
  dep: "depends",
  id: "uuid",
};

/**
 * The canonical name of an attribute: itself, an alias, or an unambiguous
 * abbreviation of at least 3 letters (Taskwarrior's rule, but 3 letters).
 */
function canonical(name: string): Canonical | null {
  if (Object.hasOwn(ALIASES, name)) return ALIASES[name]!;
  return abbreviated(name, ATTRIBUTES);
}

type ValueKind = "date" | "text" | "number" | "set";

function kindOf(attr: Attr): ValueKind {
  switch (attr) {
    case "due":
    case "wait":
    case "scheduled":
    case "until":
    case "entry":
    case "end":
    case "start":
    case "modified":
      return "date";
    case "tags":
    case "depends":
      return "set";
    case "urgency":
      return "number";
    default:
      return typeof attr === "object" && attr.uda === "imask" ? "number" : "text";
  }
}

/**
 * Rust's `str::parse::<f64>`: an optional sign, then decimal digits with an
 * optional point and exponent, or `inf`, `infinity`, `nan` in any case.
 * Nothing else (no whitespace, hex or empty text, which `Number` accepts).
 */
function parseF64(s: string): number | null {
  const m = /^([+-]?)(?:(inf|infinity|nan)|((?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?))$/i.exec(s);
  if (!m) return null;
  const negative = m[1] === "-";
  if (m[2] !== undefined) {
    if (asciiLower(m[2]) === "nan") return NaN;
    return negative ? -Infinity : Infinity;
  }
  const n = Number(m[3]);
  return negative ? -n : n;
}

/** A parsed filter (engine `Filter`); a fresh one is the default report: open tasks. */
export class Filter {
  /** Node kinds kept; empty = every kind. */
  kinds: Kind[] = ["task"];
  /**
   * The default report's status rule: tasks must be pending or started
   * (other kinds pass). Off once the filter speaks of status.
   */
  openOnly = true;
  /** Deleted nodes (tombstones) are considered: the filter asks for them. */
  deleted = false;
  /** The expression every kept node matches. */
  expr: Expr = TRUE;
  /** What relative words meant when the filter was read. */
  bounds: Bounds = noBounds();

  /** A filter that keeps every live node of every kind. */
  static everything(): Filter {
    const f = new Filter();
    f.kinds = [];
    f.openOnly = false;
    return f;
  }

  /**
   * Parses filter words; `now` and the user's `zone` anchor
   * relative dates and virtual tags like `+TODAY`. Throws {@link FilterError}.
   */
  static parse(words: readonly string[], now: Date, zone: Zone): Filter {
    const parser = new Parser(tokens(words), now, zone);
    const expr = parser.tokens.length === 0 ? TRUE : parser.xor();
    if (parser.at < parser.tokens.length) throw new FilterError("a ')' in the filter closes nothing");
    const { status, kind, deleted } = parser.mentions;
    const f = new Filter();
    // Asking for a status means tasks unless a kind is given too.
    f.kinds = kind ? [] : ["task"];
    f.openOnly = !status && !kind;
    f.deleted = deleted;
    f.expr = expr;
    f.bounds = boundsAt(now.getTime(), zone);
    return f;
  }

  /** UDA names the filter compares (the listing checks that some node has each). */
  udas(): string[] {
    const out: string[] = [];
    const walk = (e: Expr): void => {
      switch (e.type) {
        case "and":
        case "or":
          e.list.forEach(walk);
          break;
        case "xor":
          walk(e.a);
          walk(e.b);
          break;
        case "not":
          walk(e.expr);
          break;
        case "compare":
          if (typeof e.attr === "object" && !RECURRENCE.includes(e.attr.uda)) out.push(e.attr.uda);
          break;
        default:
      }
    };
    walk(this.expr);
    return out;
  }

  /** Whether deciding a row needs the dependency graph ({@link Graph}) and urgency. */
  needsGraph(): boolean {
    const walk = (e: Expr): boolean => {
      switch (e.type) {
        case "and":
        case "or":
          return e.list.some(walk);
        case "xor":
          return walk(e.a) || walk(e.b);
        case "not":
          return walk(e.expr);
        case "virtual":
          return needsGraphTag(e.tag);
        case "compare":
          return e.attr === "urgency";
        default:
          return false;
      }
    };
    return walk(this.expr);
  }

  /**
   * Whether `row` passes at `nowMs` (which decides whether a task still
   * waits). `graph` is needed when {@link needsGraph}.
   */
  matches(row: Summary, nowMs: number, graph?: Graph): boolean {
    if (row.deleted && !this.deleted) return false;
    if (this.kinds.length > 0 && !this.kinds.includes(row.kind)) return false;
    const status = listedStatus(row, nowMs);
    if (this.openOnly && row.kind === "task" && status !== "pending" && status !== "active") return false;
    return new Eval(row, status, nowMs, this.bounds, graph ?? null).expr(this.expr);
  }
}

/** The recurrence attributes, kept in the UDA map under Taskwarrior's names. */
const RECURRENCE: readonly string[] = ["recur", "until", "mask", "imask", "parent"];

/**
 * The dependency graph of a listing: which tasks are open (pending, started
 * or waiting), and which are depended on by an open task.
 */
/**
 * The dependency graph of a listing, as Taskwarrior sees it: a dependency
 * counts while both tasks are live (neither done, cancelled nor deleted;
 * waiting tasks and recurring templates are live). Engine `Graph`.
 */
export class Graph {
  /** Live tasks. */
  readonly live = new Set<NodeId>();
  /** Tasks some live task depends on. */
  readonly dependedOn = new Set<NodeId>();
  /** The live task created last (then the greatest id): `+LATEST`. */
  latest: { created: number; id: NodeId } | null = null;

  /** The graph of `rows` (every row of the replica). */
  static of(rows: Iterable<Summary>): Graph {
    const g = new Graph();
    for (const row of rows) g.add(row);
    return g;
  }

  /** Adds a row (call for every row of the replica). */
  add(row: Summary): void {
    if (isLive(row)) {
      this.live.add(row.id);
      for (const d of row.depends) this.dependedOn.add(d);
      const l = this.latest;
      if (l === null || row.created > l.created || (row.created === l.created && row.id > l.id)) {
        this.latest = { created: row.created, id: row.id };
      }
    }
  }

  /** A live task that depends on a live task. */
  blocked(row: Summary): boolean {
    return this.live.has(row.id) && row.depends.some((d) => this.live.has(d));
  }

  /** A live task some live task depends on. */
  blocking(row: Summary): boolean {
    return this.dependedOn.has(row.id) && this.live.has(row.id);
  }
}

function isLive(row: Summary): boolean {
  return (
    !row.deleted &&
    row.kind === "task" &&
    (row.status === "pending" || row.status === "active" || row.status === "waiting")
  );
}

/** A recurring template: a task with `recur` and no `parent`. */
export function isTemplate(row: Summary): boolean {
  return udaOf(row, "recur") !== null && udaOf(row, "parent") === null;
}

/** A row's status as a filter sees it (null: a node without one). */
function listedStatus(row: Summary, nowMs: number): StatusIs | null {
  if (row.deleted) return "deleted";
  const status = effectiveStatus(row, nowMs);
  if (status === null) return null;
  if (isTemplate(row) && status !== "done" && status !== "cancelled") return "recurring";
  return status;
}

/** Case-insensitive containment (engine `contains_ci`). */
function containsCi(haystack: string, needleLower: string): boolean {
  return haystack.toLowerCase().includes(needleLower);
}

/** Rust's `char::is_alphanumeric` (Alphabetic, or a numeric general category) or `_`. */
const NOT_WORD_CHAR = /[^\p{Alphabetic}\p{Nd}\p{Nl}\p{No}_]/u;

function wholeWord(haystack: string, word: string): boolean {
  // As Taskwarrior's `\bword\b`: `work.reports` is a word of `work.reports.q1`.
  if (word === "") return false;
  const isWord = (c: string | undefined): boolean => c !== undefined && !NOT_WORD_CHAR.test(c);
  for (let at = haystack.indexOf(word); at >= 0; at = haystack.indexOf(word, at + 1)) {
    const before = Array.from(haystack.slice(Math.max(0, at - 2), at)).pop();
    const after = String.fromCodePoint(haystack.codePointAt(at + word.length) ?? 0x20);
    if (!isWord(before) && !isWord(after)) return true;
  }
  return false;
}

/** Rust's `str` order (UTF-8 bytes, that is code points), which UTF-16 `<` differs from above U+FFFF. */
function compareCodePoints(a: string, b: string): number {
  const x = [...a];
  const y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i]!.codePointAt(0)! - y[i]!.codePointAt(0)!;
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

/** The hex and UUID forms of an id (engine `NodeId::to_hex`, `to_uuid`). */
function toUuid(hex: string): string {
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

class Eval {
  constructor(
    readonly row: Summary,
    readonly status: StatusIs | null,
    readonly nowMs: number,
    readonly bounds: Bounds,
    readonly graph: Graph | null,
  ) {}

  expr(e: Expr): boolean {
    switch (e.type) {
      case "true":
        return true;
      case "and":
        return e.list.every((x) => this.expr(x));
      case "or":
        return e.list.some((x) => this.expr(x));
      case "xor":
        return this.expr(e.a) !== this.expr(e.b);
      case "not":
        return !this.expr(e.expr);
      case "tag":
        return this.row.tags.some((t) => t.toLowerCase() === e.tag.toLowerCase());
      case "virtual":
        return this.virtualTag(e.tag);
      case "status":
        return this.status !== null && e.list.includes(this.status);
      case "kind":
        return e.list.includes(this.row.kind);
      case "word":
        return containsCi(this.row.title, e.word);
      case "compare":
        return this.compare(e.attr, e.op, e.value);
    }
  }

  dueOpen(): number | null {
    const s = this.status;
    const open = s !== "done" && s !== "cancelled" && s !== "deleted";
    return open ? this.row.due : null;
  }

  virtualTag(v: Virtual): boolean {
    const r = this.row;
    const b = this.bounds;
    const within = ([from, to]: readonly [number, number]): boolean => {
      const d = this.dueOpen();
      return d !== null && d >= from && d < to;
    };
    const blocked = (): boolean => this.graph !== null && this.graph.blocked(r);
    switch (v) {
      case "ACTIVE":
        return r.start !== null || r.status === "active";
      case "BLOCKED":
        return blocked();
      case "UNBLOCKED":
        return !blocked();
      case "BLOCKING":
        return this.graph !== null && this.graph.blocking(r);
      case "LATEST":
        return this.graph?.latest?.id === r.id;
      case "READY":
        return (
          (this.status === "pending" || this.status === "active") &&
          !blocked() &&
          (r.scheduled === null || r.scheduled < this.nowMs)
        );
      case "DUE":
        return within([b.days[1], b.imminent]);
      case "TODAY":
        return within([b.days[1], b.days[2]]);
      case "YESTERDAY":
        return within([b.days[0], b.days[1]]);
      case "TOMORROW":
        return within([b.days[2], b.days[3]]);
      case "OVERDUE": {
        const d = this.dueOpen();
        return d !== null && d < this.nowMs && this.status !== "recurring";
      }
      case "WEEK":
        return within(b.week);
      case "MONTH":
        return within(b.month);
      case "QUARTER":
        return within(b.quarter);
      case "YEAR":
        return within(b.year);
      case "WAITING":
        return this.status === "waiting";
      case "PENDING":
        return this.status === "pending" || this.status === "active";
      case "COMPLETED":
        return this.status === "done";
      case "DELETED":
        return this.status === "deleted";
      case "RECURRING":
        return udaOf(r, "recur") !== null;
      case "TEMPLATE":
        return isTemplate(r);
      case "INSTANCE":
        return udaOf(r, "parent") !== null;
      case "TAGGED":
        return r.tags.length > 0;
      case "ANNOTATED":
        return r.annotations > 0;
      case "PROJECT":
        return r.project !== null && r.project !== "";
      case "PRIORITY":
        return r.priority !== null;
      case "SCHEDULED":
        return r.scheduled !== null;
      case "UNTIL":
        return udaOf(r, "until") !== null;
      case "UDA":
        // Taskwarrior's priority is a UDA too.
        return r.priority !== null || r.uda.some(([k]) => !RECURRENCE.includes(k));
    }
  }

  dateOf(attr: Attr): number | null {
    const r = this.row;
    switch (attr) {
      case "due":
        return r.due;
      case "wait":
        return r.wait;
      case "scheduled":
        return r.scheduled;
      case "entry":
        return r.created;
      case "end":
        return r.end;
      case "start":
        return r.start;
      case "modified":
        return r.modified;
      case "until": {
        const until = udaOf(r, "until");
        return until === null ? null : parseStamp(until);
      }
      default:
        return null;
    }
  }

  textOf(attr: Attr): string | null {
    const r = this.row;
    switch (attr) {
      case "description":
        return r.title;
      case "project":
        return r.project;
      case "priority":
        return r.priority;
      case "uuid":
        return toUuid(r.id);
      default:
        return typeof attr === "object" ? udaOf(r, attr.uda) : null;
    }
  }

  compare(attr: Attr, op: Op, value: Value): boolean {
    switch (kindOf(attr)) {
      case "date": {
        const t = this.dateOf(attr);
        if (op === "none" || (value.type === "empty" && (op === "partial" || op === "is"))) return t === null;
        if (op === "any" || (value.type === "empty" && (op === "not" || op === "isnt"))) return t !== null;
        if (value.type !== "date") return false;
        const sameDay = t !== null && t >= value.dayStart && t < value.dayEnd;
        const secs = (ms: number): number => Math.floor(ms / 1000);
        switch (op) {
          case "partial":
            return sameDay;
          case "not":
            return !sameDay;
          case "is":
            return t !== null && secs(t) === secs(value.at);
          case "isnt":
            return t === null || secs(t) !== secs(value.at);
          case "before":
            return t !== null && t < value.at;
          case "after":
            return t !== null && t > value.at;
          case "by":
            return t !== null && t <= value.at;
          default:
            return false;
        }
      }
      case "number": {
        let n: number | null = null;
        if (attr === "urgency") n = this.graph === null ? null : urgency(this.row, this.graph, this.nowMs);
        else if (typeof attr === "object") {
          const text = udaOf(this.row, attr.uda);
          n = text === null ? null : parseF64(text);
        }
        if (op === "none" || (value.type === "empty" && (op === "partial" || op === "is"))) return n === null;
        if (op === "any" || (value.type === "empty" && (op === "not" || op === "isnt"))) return n !== null;
        if (value.type !== "number") return false;
        const v = value.value;
        const equal = n !== null && Math.abs(n - v) < 1e-9;
        switch (op) {
          case "partial":
          case "is":
            return equal;
          case "not":
          case "isnt":
            return !equal;
          case "before":
            return n !== null && n < v;
          case "after":
            return n !== null && n > v;
          case "by":
            return n !== null && n <= v;
          default:
            return false;
        }
      }
      case "set": {
        const items =
          attr === "tags"
            ? this.row.tags.map((t) => t.toLowerCase())
            : this.row.depends.flatMap((d) => [d, toUuid(d)]);
        const want = value.type === "text" ? value.text : "";
        const member = (i: string): boolean => (attr === "tags" ? i === want : i.startsWith(want));
        if (op === "none" || (value.type === "empty" && (op === "partial" || op === "is"))) return items.length === 0;
        if (op === "any" || (value.type === "empty" && (op === "not" || op === "isnt"))) return items.length > 0;
        switch (op) {
          case "partial":
          case "is":
          case "has":
          case "word":
            return items.some(member);
          case "not":
          case "isnt":
          case "hasnt":
          case "noword":
            return !items.some(member);
          case "startswith":
            return items.some((i) => i.startsWith(want));
          case "endswith":
            return items.some((i) => i.endsWith(want));
          default:
            return false;
        }
      }
      case "text": {
        const found = this.textOf(attr);
        const want = value.type === "text" ? value.text : "";
        if (op === "before" || op === "after" || op === "by") {
          if (attr === "priority") {
            // Taskwarrior's order: H above M above L above none.
            const ranks: Record<string, number> = { h: 3, m: 2, l: 1 };
            const rank = (p: string): number => ranks[asciiLower(p)] ?? 0;
            return ordered(op, rank(found ?? "") - rank(want));
          }
          // A UDA holding a number is compared as one (`estimate.above:10`).
          const have = typeof attr === "object" && found !== null ? parseF64(trimWhitespace(found)) : null;
          const wanted = parseF64(trimWhitespace(want));
          // A difference as Rust's partial_cmp gives it: infinities are equal to themselves, NaN to nothing.
          if (have !== null && wanted !== null) {
            return ordered(op, have < wanted ? -1 : have > wanted ? 1 : have === wanted ? 0 : NaN);
          }
        }
        if (found === null || found === "") {
          // A missing value is the empty text.
          switch (op) {
            case "none":
              return true;
            case "partial":
            case "is":
              return want === "";
            case "not":
            case "isnt":
            case "hasnt":
            case "noword":
              return want !== "";
            default:
              return false;
          }
        }
        const text = found.toLowerCase();
        switch (op) {
          case "none":
            return false;
          case "any":
            return true;
          case "partial":
            return want !== "" && text.startsWith(want);
          case "not":
            return want === "" || !text.startsWith(want);
          case "is":
            return text === want;
          case "isnt":
            return text !== want;
          case "has":
            return text.includes(want);
          case "hasnt":
            return !text.includes(want);
          case "startswith":
            return text.startsWith(want);
          case "endswith":
            return text.endsWith(want);
          case "word":
            return wholeWord(text, want);
          case "noword":
            return !wholeWord(text, want);
          case "before":
            return compareCodePoints(text, want) < 0;
          case "after":
            return compareCodePoints(text, want) > 0;
          case "by":
            return compareCodePoints(text, want) <= 0;
        }
      }
    }
  }
}

/**
 * Taskwarrior's urgency with all of its default coefficients: `next` tag
 * 15, due 12 (scaled over 21 days), blocking 8, priority H 6 / M 3.9 / L
 * 1.8, scheduled 5, active 4, age 2 (whole days, over a year), annotations,
 * tags and project 1 each, waiting −3 and blocked −5. Rounded to 3 decimals.
 */
export function urgency(row: Summary, graph: Graph, nowMs: number): number {
  if (row.kind !== "task") return 0;
  // The terms are added in the engine's order: floating-point sums depend on it.
  let u = row.priority === "H" ? 6.0 : row.priority === "M" ? 3.9 : row.priority === "L" ? 1.8 : 0.0;
  if (row.tags.includes("next")) u += 15.0;
  if (row.due !== null) {
    const daysOverdue = (nowMs - row.due) / 86_400_000.0;
    const scale = daysOverdue >= 7.0 ? 1.0 : daysOverdue >= -14.0 ? ((daysOverdue + 14.0) * 0.8) / 21.0 + 0.2 : 0.2;
    u += 12.0 * scale;
  }
  if (row.start !== null || row.status === "active") u += 4.0;
  if (row.scheduled !== null && row.scheduled < nowMs) u += 5.0;
  // Whole days, as Taskwarrior counts them.
  const ageDays = Math.floor((nowMs - row.created) / MS_PER_DAY);
  u += 2.0 * (ageDays > 365 ? 1.0 : Math.max(ageDays, 0) / 365.0);
  u += countWeight(row.tags.length);
  if (row.project !== null && row.project !== "") u += 1.0;
  u += countWeight(row.annotations);
  if (graph.blocking(row)) u += 8.0;
  if (graph.blocked(row)) u -= 5.0;
  if (effectiveStatus(row, nowMs) === "waiting") u -= 3.0;
  return roundHalfAwayFromZero(u * 1000.0) / 1000.0;
}

function countWeight(n: number): number {
  return n === 0 ? 0.0 : n === 1 ? 0.8 : n === 2 ? 0.9 : 1.0;
}

/** Rust's `f64::round` (ties away from zero; `Math.round` sends negative ties up). */
function roundHalfAwayFromZero(x: number): number {
  return x < 0 ? -Math.round(-x) : Math.round(x);
}

/** Rust's `f64::total_cmp` for the values urgency takes (no NaN): like `<`, but -0 sorts before +0. */
function totalCmp(a: number, b: number): number {
  if (a !== b) return a < b ? -1 : 1;
  if (Object.is(a, b)) return 0;
  return Object.is(a, -0) ? -1 : 1;
}

/** A listed row with its urgency. */
export interface Listed {
  urgency: number;
  row: Summary;
}

/** Tasks first, by urgency (highest first), then due date; then last change (newest first); ties on id. */
function listingOrder(a: Listed, b: Listed): number {
  const aTask = a.row.kind === "task";
  const bTask = b.row.kind === "task";
  if (aTask !== bTask) return aTask ? -1 : 1;
  return (
    totalCmp(b.urgency, a.urgency) ||
    compare(a.row.due ?? Infinity, b.row.due ?? Infinity) ||
    compare(b.row.modified, a.row.modified) ||
    compare(a.row.id, b.row.id)
  );
}

function compare<T extends number | string>(a: T, b: T): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Sorts rows for a listing: tasks by urgency (highest first), then due date;
 * other nodes by last change (newest first). Ties break on id, so the order
 * is the same on every device. With `limit`, only the first `limit` rows.
 */
export function sortForListing(rows: readonly Summary[], graph: Graph, nowMs: number, limit?: number): Listed[] {
  const keyed = rows.map((row) => ({ urgency: urgency(row, graph, nowMs), row })).sort(listingOrder);
  return limit === undefined ? keyed : keyed.slice(0, limit);
}

/** A listed node, with its index row and urgency. */
export interface ListedNode extends Listed {
  node: NodeJson;
}

/**
 * The nodes matching `filter` with their urgency, in listing order, as
 * `heph ls` lists them (engine `Replica::list`). With `limit`, only the
 * first `limit` rows. Node ids are unique, as in a replica. Throws
 * {@link FilterError} when the filter compares a UDA no node has (the
 * engine's `Error::UnknownAttribute`).
 */
export function list(nodes: Iterable<NodeJson>, filter: Filter, now: Date, limit?: number): ListedNode[] {
  const nowMs = now.getTime();
  const byId = new Map<NodeId, NodeJson>();
  for (const node of nodes) byId.set(node.id, node);
  const rows = [...byId.values()].map(summaryOf);
  const graph = Graph.of(rows);
  const unseen = filter.udas().find((name) => !rows.some((row) => udaOf(row, name) !== null));
  if (unseen !== undefined) {
    throw new FilterError(
      `unknown attribute ${debugQuote(unseen)} in the filter: heph has no such attribute and no node has a UDA of that name`,
    );
  }
  // The engine decides filters on dependencies or urgency once the graph is
  // whole, and others without it; the graph is whole here from the start.
  const kept = rows.filter((row) => filter.matches(row, nowMs, graph));
  // Every row was made from a node in `byId`.
  return sortForListing(kept, graph, nowMs, limit).map((listed) => ({ ...listed, node: byId.get(listed.row.id)! }));
}
