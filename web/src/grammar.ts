// Quick-add lines, Taskwarrior-style: `Call Ana due:fri +work pri:H`, read by
// the rules of engine/src/parse.rs (`parse_mods`), which this module ports;
// the engine's fixtures (web/test/fixtures/quick-add.json) hold both to the
// same answers.
//
// `key:value` words for known keys set attributes (an empty value clears
// one), `+tag` adds and `-tag` removes a tag, and the remaining words form
// the title. After a lone `--`, every word is title text. A word shaped like
// an attribute with an unknown key (`foo:bar`) is an error.

import type { Edit, Kind, Priority, Status } from "./model.ts";
import { WhenError, type Zone, debugQuote, formatInstant, parseWhen, splitWhitespace } from "./when.ts";

/** Parsed modification words (the engine's `Mods`). */
export interface Mods {
  /** The title words joined by single spaces, or null when there were none. */
  title: string | null;
  /** Attribute edits, in the order given. */
  edits: Edit[];
  /** Dependencies by id prefix: `[true, p]` adds, `[false, p]` removes. */
  depends: [boolean, string][];
}

/** Why modification words could not be read; `message` is the engine's text. */
export class ModError extends Error {
  override readonly name = "ModError";

  constructor(
    message: string,
    /** For a date: the attribute and what was wrong with it. */
    readonly date?: { key: string; problem: WhenError },
  ) {
    super(message);
  }
}

/** A value that is not one of the allowed ones; `message` is the engine's `FromStr` error. */
export class ValueError extends Error {
  override readonly name = "ValueError";
}

/**
 * The words of a quick-add (or filter) line: split at whitespace, nothing
 * else. There is no quoting, because the grammar needs none: a title is
 * every word that is not a modification, and `--` makes the rest literal.
 * This is what a shell hands `heph add` for the same line typed unquoted.
 */
export function words(line: string): string[] {
  return splitWhitespace(line);
}

/**
 * Reads a quick-add line; `now` and the user's `zone` anchor relative dates,
 * and `udas` (see {@link udasInUse}) are attributes too. Throws {@link ModError}.
 */
export function quickAdd(line: string, now: Date, zone: Zone, udas: readonly string[] = []): Mods {
  return parseMods(words(line), now, zone, udas);
}

/** The recurrence attributes, kept among the UDAs under Taskwarrior's names (engine `query::RECURRENCE`). */
const RECURRENCE: readonly string[] = ["recur", "until", "mask", "imask", "parent"];

/**
 * The UDAs some task (not deleted) carries: attributes in a quick-add, as
 * in `heph add` (a UDA configured in Taskwarrior is one on every task).
 */
export function udasInUse(nodes: Iterable<{ kind: string; deleted: boolean; uda?: Record<string, string> }>): string[] {
  const found = new Set<string>();
  for (const n of nodes) {
    if (n.kind !== "task" || n.deleted || !n.uda) continue;
    for (const key of Object.keys(n.uda)) if (!RECURRENCE.includes(key)) found.add(key);
  }
  return [...found].sort();
}

/**
 * Parses modification words; `now` and the user's `zone` anchor relative
 * dates, and `udas` are attributes too (engine `parse_mods_with`). Throws {@link ModError}.
 */
export function parseMods(words: readonly string[], now: Date, zone: Zone, udas: readonly string[] = []): Mods {
  const mods: Mods = { title: null, edits: [], depends: [] };
  const title: string[] = [];
  let literal = false;
  const date = (key: string, value: string): string | null => {
    if (value === "") return null;
    try {
      return formatInstant(parseWhen(value, now, zone));
    } catch (e) {
      if (e instanceof WhenError) throw new ModError(`${key}: ${e.message}`, { key, problem: e });
      throw e;
    }
  };
  for (const word of words) {
    if (literal) {
      title.push(word);
      continue;
    }
    if (word === "--") {
      literal = true;
      continue;
    }
    const sign = word[0];
    if ((sign === "+" || sign === "-") && validTag(word.slice(1))) {
      mods.edits.push({ edit: sign === "+" ? "add_tag" : "remove_tag", value: word.slice(1) });
      continue;
    }
    const colon = word.indexOf(":");
    if (colon < 0) {
      title.push(word);
      continue;
    }
    const value = word.slice(colon + 1);
    const lower = asciiLower(word.slice(0, colon));
    // An abbreviation with no value stays text (`Prio:` in a title), as `re:` does;
    // the full names and the short forms heph always took clear with one (`pri:`).
    const named = attributeNamed(lower);
    const usable = named !== null && (value !== "" || named === lower || CLEARING.includes(lower));
    switch (usable ? named : lower) {
      case "due":
        mods.edits.push({ edit: "due", value: date("due", value) });
        break;
      case "wait":
        mods.edits.push({ edit: "wait", value: date("wait", value) });
        break;
      case "scheduled":
        mods.edits.push({ edit: "scheduled", value: date("scheduled", value) });
        break;
      case "priority":
        mods.edits.push({
          edit: "priority",
          value: value === "" ? null : badValueAs(ModError, () => parsePriority(value)),
        });
        break;
      case "project":
        mods.edits.push({ edit: "project", value: value === "" ? null : value });
        break;
      case "status":
        mods.edits.push({ edit: "status", value: badValueAs(ModError, () => parseStatus(value)) });
        break;
      case "depends":
        for (const part of value.split(",").filter((p) => p !== "")) {
          mods.depends.push(part.startsWith("-") ? [false, part.slice(1)] : [true, part]);
        }
        break;
      case "recur":
      case "until":
        // Recurrence (engine/src/recur) is made by heph and hephd; the browser only lists it.
        throw new ModError(
          `'${word}': the browser app cannot make recurring tasks yet; add it with heph add … ${word}`,
        );
      default: {
        const key = word.slice(0, colon);
        if (udas.includes(key)) {
          mods.edits.push({ edit: "uda", value: [key, value === "" ? null : value] });
          break;
        }
        if (attributeShaped(key, value)) {
          throw new ModError(
            `'${word}': ${key} is not an attribute (known: ${[...ATTRIBUTES, ...udas].join(", ")}); ` +
              "to put the word in the title, write it after --",
          );
        }
        title.push(word);
      }
    }
  }
  if (title.length > 0) mods.title = title.join(" ");
  return mods;
}

/** The attributes modification words set, by their full names (the engine's `ATTRIBUTES`). */
export const ATTRIBUTES: readonly string[] = ["due", "wait", "scheduled", "priority", "project", "status", "depends", "recur", "until"];

/** Short forms that clear their attribute with an empty value (`pri:`), as the engine's `CLEARING`. */
const CLEARING: readonly string[] = ["pri", "pro", "proj", "sch", "sched", "dep"];

/**
 * The attribute `key` (lower case) names: one of {@link ATTRIBUTES}, or an
 * unambiguous abbreviation of one of at least 3 letters (`pri`, `proj`,
 * `sched`, `wai`, `stat`), as in filters.
 */
function attributeNamed(key: string): string | null {
  return abbreviated(key, ATTRIBUTES);
}

/**
 * The one of `names` that `word` is, or abbreviates with at least 3 letters
 * and no other name sharing them (engine `parse::abbreviated`): attribute
 * names in modifications and filters alike.
 */
export function abbreviated<T extends string>(word: string, names: readonly T[]): T | null {
  const exact = names.find((n) => n === word);
  if (exact !== undefined) return exact;
  const found = names.filter((n) => word.length >= 3 && n.startsWith(word));
  return found.length === 1 ? (found[0] ?? null) : null;
}

/**
 * Whether `key:value` is shaped like an attribute, so that an unknown key is
 * an error rather than title text: a key of ASCII letters, digits, `_`, `.`
 * and `-` starting with a letter or `_`, and a value that is not empty and
 * does not start with `/` (so `https://x.org`, `10:30` and `re:` are text).
 */
function attributeShaped(key: string, value: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_.-]*$/.test(key) && value !== "" && !value.startsWith("/");
}

/** Runs `read`, turning a {@link ValueError} into `As` with the same message (the engine's `map_err(BadValue)`). */
export function badValueAs<T>(As: new (message: string) => Error, read: () => T): T {
  try {
    return read();
  } catch (e) {
    if (e instanceof ValueError) throw new As(e.message);
    throw e;
  }
}

// A tag is one word of letters, digits, `_`, `-`, `.` or `/`, and not digits
// only (so `-5` stays a title word). Rust's `is_alphanumeric` is Alphabetic
// or a numeric general category.
const TAG = /^[\p{Alphabetic}\p{Nd}\p{Nl}\p{No}_\-./]+$/u;

/** Whether `tag` (without its `+`/`-`) is a tag. */
export function validTag(tag: string): boolean {
  return TAG.test(tag) && !/^[0-9]+$/.test(tag);
}

/** Rust's `to_ascii_lowercase`: keys match case-insensitively in ASCII only. */
function asciiLower(s: string): string {
  return s.replace(/[A-Z]+/g, (run) => run.toLowerCase());
}

// The engine's `FromStr` vocabularies (engine/src/node.rs): names and
// aliases, matched case-insensitively in ASCII.

const STATUSES: Readonly<Record<string, Status>> = {
  pending: "pending",
  active: "active",
  started: "active",
  done: "done",
  completed: "done",
  cancelled: "cancelled",
  canceled: "cancelled",
  waiting: "waiting",
};
const KINDS: Readonly<Record<string, Kind>> = { task: "task", note: "note", journal: "journal" };
const PRIORITIES: Readonly<Record<string, Priority>> = {
  h: "H",
  high: "H",
  m: "M",
  medium: "M",
  med: "M",
  l: "L",
  low: "L",
};

function lookup<T>(table: Readonly<Record<string, T>>, text: string): T | undefined {
  const key = asciiLower(text);
  return Object.hasOwn(table, key) ? table[key] : undefined;
}

/** A status by name or alias (`completed`, `started`…). Throws {@link ValueError}. */
export function parseStatus(text: string): Status {
  const status = lookup(STATUSES, text);
  if (status !== undefined) return status;
  throw new ValueError(`${debugQuote(text)} is not one of: pending, active, done, cancelled, waiting`);
}

/** A node kind by name. Throws {@link ValueError}. */
export function parseKind(text: string): Kind {
  const kind = lookup(KINDS, text);
  if (kind !== undefined) return kind;
  throw new ValueError(`${debugQuote(text)} is not one of: task, note, journal`);
}

/** A priority: H/M/L or high/medium/med/low. Throws {@link ValueError}. */
export function parsePriority(text: string): Priority {
  const priority = lookup(PRIORITIES, text);
  if (priority !== undefined) return priority;
  throw new ValueError(`${debugQuote(text)} is not a priority (H, M or L)`);
}
