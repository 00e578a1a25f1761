import "./setup.ts";
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { readRecord, viewedRecord } from "../../src/readers.ts";
import type { WireDoc } from "../../src/wire.ts";

// A hub sends a bootstrapping page its reading of each document (the
// engine's `DocView::read`), and the page lists that instead of reading the
// bytes itself. The two readings must be one: for every document of the
// shared table of edits and merges (web/test/fixtures/views.json, generated
// from the engine), the record made from the hub's reading is the record
// the page makes from the bytes.

const fixture = JSON.parse(readFileSync(new URL("../fixtures/views.json", import.meta.url), "utf8")) as {
  docs: { name: string; id: string; bytes: string; view: string }[];
};

test("the hub's reading of a document is the page's own, field for field", () => {
  assert.ok(fixture.docs.length >= 30);
  let conflicted = 0;
  for (const d of fixture.docs) {
    const wire: WireDoc = { doc: d.id, bytes: d.bytes, view: JSON.parse(d.view) as WireDoc["view"] };
    const own = readRecord(wire);
    const viewed = viewedRecord(wire);
    assert.ok(viewed, `${d.name}: a reading`);
    // The stored node is JSON text: the same text, key order included.
    assert.equal(JSON.stringify(viewed.node), JSON.stringify(own.node), d.name);
    assert.deepEqual(viewed.conflicts, own.conflicts, d.name);
    assert.deepEqual(viewed.heads, own.heads, d.name);
    assert.deepEqual(viewed.bytes, own.bytes, d.name);
    if (viewed.conflicts.length > 0) conflicted++;
  }
  assert.ok(conflicted >= 3, "documents with conflicts are among them");
});

test("a document sent without a reading is read by the page", () => {
  const d = fixture.docs[0]!;
  assert.equal(viewedRecord({ doc: d.id, bytes: d.bytes }), null);
  assert.equal(viewedRecord({ doc: d.id, bytes: d.bytes, view: null }), null);
});
