// Filters, urgency and ordering for listings, in Taskwarrior's vocabulary: a
// port of engine/src/query.rs (and of `Replica::list`, which puts them
// together for `heph ls`). The engine's fixtures
// (web/test/fixtures/listing.json) hold both to the same rows, order and
// urgency.
//
// A filter is a list of words: `status:done`, `+tag`, `-tag`, `project:home`,
// `pri:H`, `due:today`, `due.before:eow`, `due.after:2026-12-01`,
// `kind:note`, `+OVERDUE`, `+ACTIVE`, `+BLOCKED`, and plain words that must
// all appear in the title. Everything works on index rows ({@link Summary}),
// derived from nodes as the engine derives its `NodeSummary`.

import type { Kind, NodeId, NodeJson, Priority, Status } from "./model.ts";
import { badValueAs, parseKind, parsePriority, parseStatus } from "./grammar.ts";
import { WhenError, parseInstant, parseWhen } from "./when.ts";

const MS_PER_DAY = 86_400_000;

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
}

const instantOrNull = (t: string | undefined): number | null => (t === undefined ? null : parseInstant(t));

/** The index row of `node` (engine `NodeSummary::of`). */
/**
 * Summaries of nodes already seen: a node object is never changed in place
 * (an edit makes a new one), so a listing of thousands re-reads only what
 * changed since the last.
 */
const summaries = new WeakMap<NodeJson, Summary>();

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
  };
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

/** Which statuses a filter keeps (engine `StatusFilter`). */
export type StatusFilter =
  /** Pending and active tasks whose wait date has passed (the default report). */
  | { kind: "open" }
  /** Any of these (effective) statuses. */
  | { kind: "only"; statuses: Status[] }
  /** Every status. */
  | { kind: "all" };

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

/** A parsed filter (engine `Filter`); a fresh one is the default report: open tasks. */
export class Filter {
  /** Node kinds kept; empty = every kind. */
  kinds: Kind[] = ["task"];
  /** Statuses kept (tasks only; notes and journals have none). */
  status: StatusFilter = { kind: "open" };
  /** Tags that must all be present. */
  tags: string[] = [];
  /** Tags that must all be absent. */
  withoutTags: string[] = [];
  /** Project, matching sub-projects too (`home` matches `home.garden`). */
  project: string | null = null;
  priority: Priority | null = null;
  /** Due at or after (ms). */
  dueFrom: number | null = null;
  /** Due before (ms). */
  dueBefore: number | null = null;
  /** Words that must all appear in the title (lower-cased). */
  words: string[] = [];
  /** Keep deleted nodes (and only them). */
  deleted = false;
  /** Only overdue tasks. */
  overdue = false;
  /** Only tasks that wait on open dependencies (applied by {@link list}, which sees every row). */
  blocked = false;

  /** A filter that keeps every live node of every kind. */
  static everything(): Filter {
    const f = new Filter();
    f.kinds = [];
    f.status = { kind: "all" };
    return f;
  }

  /** Parses filter words; `now` and `offsetMinutes` (east of UTC) anchor relative dates. Throws {@link FilterError}. */
  static parse(words: readonly string[], now: Date, offsetMinutes: number): Filter {
    const f = new Filter();
    const when = (value: string): number => {
      try {
        return parseWhen(value, now, offsetMinutes).getTime();
      } catch (e) {
        if (e instanceof WhenError) throw new FilterError(e.message, e);
        throw e;
      }
    };
    const list = <T>(value: string, read: (text: string) => T): T[] =>
      badValueAs(FilterError, () => value.split(",").map(read));
    let kindGiven = false;
    let statusGiven = false;
    for (const word of words) {
      if (word.startsWith("+")) {
        const tag = word.slice(1);
        if (tag === "OVERDUE") f.overdue = true;
        else if (tag === "ACTIVE") {
          f.status = { kind: "only", statuses: ["active"] };
          statusGiven = true;
        } else if (tag === "BLOCKED") f.blocked = true;
        else if (tag === "DELETED") f.deleted = true;
        else f.tags.push(tag);
        continue;
      }
      if (word.startsWith("-") && word.length > 1) {
        f.withoutTags.push(word.slice(1));
        continue;
      }
      const colon = word.indexOf(":");
      if (colon < 0) {
        f.words.push(word.toLowerCase());
        continue;
      }
      const value = word.slice(colon + 1);
      switch (word.slice(0, colon)) {
        case "status":
        case "st":
          statusGiven = true;
          if (value === "all" || value === "any") f.status = { kind: "all" };
          else if (value === "open") f.status = { kind: "open" };
          else if (value === "deleted") {
            f.deleted = true;
            f.status = { kind: "all" };
          } else f.status = { kind: "only", statuses: list(value, parseStatus) };
          break;
        case "kind":
        case "k":
          kindGiven = true;
          f.kinds = value === "all" || value === "any" ? [] : list(value, parseKind);
          break;
        case "project":
        case "pro":
        case "proj":
          f.project = value;
          break;
        case "priority":
        case "pri":
          f.priority = badValueAs(FilterError, () => parsePriority(value));
          break;
        case "due": {
          const day = when(value);
          f.dueFrom = day;
          f.dueBefore = day + MS_PER_DAY;
          break;
        }
        case "due.before":
        case "due.under":
        case "due.below":
          f.dueBefore = when(value);
          break;
        case "due.by":
          f.dueBefore = when(value) + 1;
          break;
        case "due.after":
        case "due.over":
        case "due.above":
          f.dueFrom = when(value) + 1;
          break;
        default:
          f.words.push(word.toLowerCase());
      }
    }
    // Asking for notes or journals means any status; asking for a status means tasks.
    if (kindGiven && !statusGiven && !f.kinds.includes("task")) f.status = { kind: "all" };
    if (f.deleted && !statusGiven) f.status = { kind: "all" };
    return f;
  }

  /** Whether `row` passes (except `blocked`, which needs the whole set). */
  matches(row: Summary, nowMs: number): boolean {
    if (row.deleted !== this.deleted) return false;
    if (this.kinds.length > 0 && !this.kinds.includes(row.kind)) return false;
    const status = effectiveStatus(row, nowMs);
    if (!this.statusKeeps(row, status)) return false;
    if (!this.tags.every((t) => row.tags.includes(t))) return false;
    if (this.withoutTags.some((t) => row.tags.includes(t))) return false;
    if (this.project !== null && !inProject(row.project, this.project)) return false;
    if (this.priority !== null && row.priority !== this.priority) return false;
    if (this.dueFrom !== null || this.dueBefore !== null || this.overdue) {
      const due = row.due;
      if (due === null) return false;
      if (this.dueFrom !== null && due < this.dueFrom) return false;
      if (this.dueBefore !== null && due >= this.dueBefore) return false;
      if (this.overdue && (due >= nowMs || status === "done" || status === "cancelled")) return false;
    }
    if (this.words.length > 0) {
      const title = row.title.toLowerCase();
      if (!this.words.every((w) => title.includes(w))) return false;
    }
    return true;
  }

  private statusKeeps(row: Summary, status: Status | null): boolean {
    switch (this.status.kind) {
      case "all":
        return true;
      case "open":
        return status === null ? row.kind !== "task" : status === "pending" || status === "active";
      case "only":
        return status !== null && this.status.statuses.includes(status);
    }
  }
}

/** `project` is `wanted` or one of its sub-projects (`home` holds `home.garden`, not `homework`). */
function inProject(project: string | null, wanted: string): boolean {
  return project !== null && (project === wanted || (project.startsWith(wanted) && project[wanted.length] === "."));
}

/** Ids of the tasks others can wait on: live ones that are not done or cancelled (as `Replica::list` gathers them). */
export function openTasks(rows: Iterable<Summary>): Set<NodeId> {
  const open = new Set<NodeId>();
  for (const row of rows) {
    if (row.status !== null && row.status !== "done" && row.status !== "cancelled" && !row.deleted) open.add(row.id);
  }
  return open;
}

/** Whether a task waits on another open task. */
export function isBlocked(row: Summary, open: ReadonlySet<NodeId>): boolean {
  return row.depends.some((d) => open.has(d));
}

/**
 * Taskwarrior's urgency, with its default coefficients: priority, due
 * proximity, active, scheduled, age, tags, project, annotations, `+next`,
 * and a penalty for blocked and waiting tasks. Rounded to 3 decimals.
 */
export function urgency(row: Summary, open: ReadonlySet<NodeId>, nowMs: number): number {
  if (row.kind !== "task") return 0;
  // The terms are added in the engine's order: floating-point sums depend on it.
  let u = row.priority === "H" ? 6.0 : row.priority === "M" ? 3.9 : row.priority === "L" ? 1.8 : 0.0;
  if (row.tags.includes("next")) u += 15.0;
  if (row.due !== null) {
    const daysOverdue = (nowMs - row.due) / 86_400_000.0;
    const scale = daysOverdue >= 7.0 ? 1.0 : daysOverdue >= -14.0 ? ((daysOverdue + 14.0) * 0.8) / 21.0 + 0.2 : 0.2;
    u += 12.0 * scale;
  }
  if (row.status === "active") u += 4.0;
  if (row.scheduled !== null && row.scheduled <= nowMs) u += 5.0;
  const ageDays = Math.max(nowMs - row.created, 0) / 86_400_000.0;
  u += 2.0 * Math.min(ageDays / 365.0, 1.0);
  u += countWeight(row.tags.length);
  if (row.project !== null) u += 1.0;
  u += countWeight(row.annotations);
  if (isBlocked(row, open)) u -= 5.0;
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
export function sortForListing(
  rows: readonly Summary[],
  open: ReadonlySet<NodeId>,
  nowMs: number,
  limit?: number,
): Listed[] {
  const keyed = rows.map((row) => ({ urgency: urgency(row, open, nowMs), row })).sort(listingOrder);
  return limit === undefined ? keyed : keyed.slice(0, limit);
}

/** A listed node, with its index row and urgency. */
export interface ListedNode extends Listed {
  node: NodeJson;
}

/**
 * The nodes matching `filter` with their urgency, in listing order, as
 * `heph ls` lists them (engine `Replica::list`). With `limit`, only the
 * first `limit` rows. Node ids are unique, as in a replica.
 */
export function list(nodes: Iterable<NodeJson>, filter: Filter, now: Date, limit?: number): ListedNode[] {
  const nowMs = now.getTime();
  const byId = new Map<NodeId, NodeJson>();
  for (const node of nodes) byId.set(node.id, node);
  const rows = [...byId.values()].map(summaryOf);
  const open = openTasks(rows);
  let kept = rows.filter((row) => filter.matches(row, nowMs));
  if (filter.blocked) kept = kept.filter((row) => isBlocked(row, open));
  // Every row was made from a node in `byId`.
  return sortForListing(kept, open, nowMs, limit).map((listed) => ({ ...listed, node: byId.get(listed.row.id)! }));
}
