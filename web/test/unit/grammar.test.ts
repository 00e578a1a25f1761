import "./setup.ts";
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { ModError, parseMods, quickAdd, udasInUse, words } from "../../src/grammar.ts";
import type { Edit } from "../../src/model.ts";
import { WhenError, display, formatInstant, parseDay, parseInstant, parseWhen, relative } from "../../src/when.ts";

// The fixtures come from the engine (engine/tests/web_grammar_fixtures.rs,
// whose header documents their shape); regenerate them there, never by hand.

interface ModsCase {
  now: string;
  line: string;
  udas?: string[];
  ok?: { title: string | null; edits: Edit[]; depends: [boolean, string][] };
  error?: string;
}

interface WhenCase {
  now: string;
  input: string;
  ok?: string;
  day?: string;
  error?: string;
}

interface RenderCase {
  t: string;
  now: string;
  text: string;
}

const fixture = JSON.parse(readFileSync(new URL("../fixtures/quick-add.json", import.meta.url), "utf8")) as {
  cases: ModsCase[];
  when: WhenCase[];
  relative: RenderCase[];
  display: RenderCase[];
};

/** The offset of an RFC 3339 time, in minutes east of UTC. */
function offsetOf(rfc3339: string): number {
  const m = /([+-])(\d{2}):(\d{2})$/.exec(rfc3339);
  return m ? (m[1] === "-" ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3])) : 0;
}

const instant = (rfc3339: string): Date => new Date(parseInstant(rfc3339));

const DATE_EDITS = new Set(["due", "wait", "scheduled"]);

/**
 * An engine edit as the browser must make it. Dates are milliseconds in the
 * browser (and in the stored document), so a time the engine writes with
 * nanoseconds or as a leap second is compared as the instant it stores.
 */
function expected(edit: Edit): Edit {
  if (!DATE_EDITS.has(edit.edit) || typeof edit.value !== "string") return edit;
  return { ...edit, value: formatInstant(instant(edit.value)) } as Edit;
}

const where = (c: { now: string; line?: string; input?: string }): string =>
  `${JSON.stringify(c.line ?? c.input)} @ ${c.now}`;

test("quick add agrees with the engine on every shared line", () => {
  assert.ok(fixture.cases.length >= 60, "the fixture covers the grammar");
  for (const c of fixture.cases) {
    const run = () => quickAdd(c.line, instant(c.now), offsetOf(c.now), c.udas ?? []);
    if (c.error !== undefined) {
      const engines = (e: unknown): boolean => e instanceof ModError && e.message === c.error;
      assert.throws(run, engines, `${where(c)}: expected ${c.error}`);
      continue;
    }
    assert.ok(c.ok, where(c));
    assert.deepEqual(run(), { ...c.ok, edits: c.ok.edits.map(expected) }, where(c));
  }
});

test("dates are written exactly as the engine writes them, where milliseconds can", () => {
  let exact = 0;
  for (const c of fixture.cases) {
    for (const edit of c.ok?.edits ?? []) {
      if (!DATE_EDITS.has(edit.edit) || typeof edit.value !== "string") continue;
      if (expected(edit).value === edit.value) exact++;
    }
  }
  // All but the nanosecond and leap-second stamps.
  assert.ok(exact >= 100, `${exact} dates written identically`);
});

test("date errors carry the attribute and the date problem", () => {
  const now = instant("2026-11-27T09:15:00+01:00");
  const err = (() => {
    try {
      quickAdd("a sch:frob", now, 60);
    } catch (e) {
      return e;
    }
    return null;
  })();
  assert.ok(err instanceof ModError);
  assert.equal(err.date?.key, "scheduled");
  assert.equal(err.date?.problem.kind, "unrecognised");
  // Words passed directly may hold whitespace: a blank date is no date.
  assert.throws(() => parseMods(["due: "], now, 60), /^ModError: due: no date given/);
  assert.deepEqual(words(" a\u2003b\tc\n"), ["a", "b", "c"]);
});

test("parseWhen and parseDay agree with the engine, whitespace included", () => {
  for (const c of fixture.when) {
    const [now, offset] = [instant(c.now), offsetOf(c.now)];
    if (c.error !== undefined) {
      const engines = (e: unknown): boolean => e instanceof WhenError && e.message === c.error;
      assert.throws(() => parseWhen(c.input, now, offset), engines, where(c));
      assert.throws(() => parseDay(c.input, now, offset), WhenError, where(c));
      continue;
    }
    assert.equal(parseWhen(c.input, now, offset).getTime(), parseInstant(c.ok ?? ""), where(c));
    assert.equal(parseDay(c.input, now, offset), c.day, where(c));
  }
});

test("relative and display render as the engine does", () => {
  for (const c of fixture.relative) {
    assert.equal(relative(instant(c.t), instant(c.now)), c.text, `relative ${c.t} from ${c.now}`);
  }
  for (const c of fixture.display) {
    assert.equal(display(instant(c.t), offsetOf(c.now)), c.text, `display ${c.t} at ${c.now}`);
  }
});

test("times round-trip through the engine's JSON form", () => {
  const times = [
    "2026-11-27T00:00:00Z",
    "2026-11-27T00:00:00.120Z",
    "+10000-12-29T23:00:00Z",
    "-7972-11-27T08:15:00Z",
    "0000-12-31T23:00:00Z",
  ];
  for (const text of times) assert.equal(formatInstant(instant(text)), text);
  assert.equal(parseInstant("2026-12-31T23:59:60Z"), parseInstant("2027-01-01T00:00:00Z"));
  assert.equal(parseInstant("2026-12-24T14:00:00.123456789+05:30"), Date.UTC(2026, 11, 24, 8, 30, 0, 123));
});

test("the UDAs in use are those of tasks that are not deleted, recurrence aside", () => {
  const task = (uda: Record<string, string>, deleted = false) => ({ kind: "task", deleted, uda });
  const nodes = [
    task({ estimate: "3h", recur: "weekly", parent: "x" }),
    task({ size: "L" }, true),
    { kind: "note", deleted: false, uda: { mood: "ok" } },
    task({ area: "home", estimate: "1h" }),
  ];
  assert.deepEqual(udasInUse(nodes), ["area", "estimate"]);
});
