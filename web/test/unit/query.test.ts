import "./setup.ts";
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { words } from "../../src/grammar.ts";
import type { NodeJson } from "../../src/model.ts";
import { searchNodes } from "../../src/listing.ts";
import { Filter, FilterError, Graph, list, sortForListing, summaryOf } from "../../src/query.ts";
import { parseInstant } from "../../src/when.ts";

// The fixture comes from the engine (engine/tests/web_grammar_fixtures.rs,
// whose header documents its shape); regenerate it there, never by hand.

interface ListingCase {
  filter: string;
  limit?: number;
  rows?: { id: string; urgency: number }[];
  error?: string;
}

const fixture = JSON.parse(readFileSync(new URL("../fixtures/listing.json", import.meta.url), "utf8")) as {
  now: string;
  nodes: NodeJson[];
  cases: ListingCase[];
};

const now = new Date(parseInstant(fixture.now));
/** The fixture's `now` is at +01:00. */
const OFFSET = 60;

test("listings agree with the engine: rows, order and urgency", () => {
  assert.ok(fixture.cases.length >= 20, "the fixture covers the filters");
  for (const c of fixture.cases) {
    // `Filter::parse`, then `Replica::list`: either may refuse the filter.
    const listing = () => list(fixture.nodes, Filter.parse(words(c.filter), now, OFFSET), now, c.limit);
    if (c.error !== undefined) {
      const engines = (e: unknown): boolean => e instanceof FilterError && e.message === c.error;
      assert.throws(listing, engines, `${c.filter}: expected ${c.error}`);
      continue;
    }
    const rows = listing().map(({ row, urgency }) => ({ id: row.id, urgency }));
    // Strict equality: urgency must be the same double, sign of zero included.
    assert.deepEqual(rows, c.rows, `${JSON.stringify(c.filter)}${c.limit === undefined ? "" : ` limit ${c.limit}`}`);
  }
});

test("listed rows carry their nodes", () => {
  const listed = list(fixture.nodes, new Filter(), now);
  assert.ok(listed.length > 0);
  for (const { row, node } of listed) assert.equal(node.id, row.id);
});

test("a limit keeps the head of the full order", () => {
  const rows = fixture.nodes.map(summaryOf);
  const graph = Graph.of(rows);
  const full = sortForListing(rows, graph, now.getTime());
  for (const n of [0, 1, 7, rows.length, rows.length + 3]) {
    assert.deepEqual(sortForListing(rows, graph, now.getTime(), n), full.slice(0, n));
  }
});

test("everything keeps every live node of every kind", () => {
  const live = fixture.nodes.filter((n) => !n.deleted).length;
  assert.equal(list(fixture.nodes, Filter.everything(), now).length, live);
});

test("a pair given with spaces stays whole, negated or not", () => {
  const parse = (ws: string[]) => JSON.stringify(Filter.parse(ws, now, OFFSET));
  assert.equal(parse(["!project:Our Home"]), parse(["!", "project:Our Home"]));
  assert.notEqual(parse(["!project:Our Home"]), parse(["!project:Our", "Home"]));
  assert.equal(parse(["project:Our Home"]), parse(["(", "project:Our Home", ")"]));
});

test("search finds a word whether it was written composed or decomposed", () => {
  const base = fixture.nodes.find((n) => !n.deleted)!;
  const nodes = new Map<string, NodeJson>([
    ["a", { ...base, id: "a", title: "Cafe\u0301 menu", body: "", tags: [], project: undefined }],
    ["b", { ...base, id: "b", title: "Reading", body: "A na\u00efve reader", tags: [], project: undefined }],
  ]);
  const titles = (q: string) => searchNodes(nodes, q).map((n) => n.title);
  assert.deepEqual(titles("caf\u00e9"), ["Cafe\u0301 menu"]);
  assert.deepEqual(titles("CAFE\u0301"), ["Cafe\u0301 menu"]);
  assert.deepEqual(titles("nai\u0308ve"), ["Reading"]);
  assert.deepEqual(titles("naive"), []);
});
