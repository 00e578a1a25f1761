import "./setup.ts";
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { A } from "../../src/automerge.ts";
import { fromBase64, toBase64 } from "../../src/bytes.ts";
import * as Doc from "../../src/doc.ts";
import type { Conflict, Edit, Kind, NodeJson } from "../../src/model.ts";

// The fixtures come from the engine (engine/tests/web_doc_fixtures.rs, whose
// header documents their shape); regenerate them there, never by hand.

interface Step {
  edits: Edit[];
  message: string;
  now: string;
}

interface GenesisCase {
  id: string;
  kind: Kind;
  day?: string;
  change: string;
}

interface EditCase {
  name: string;
  create: { node: NodeJson; edits: Edit[]; actor: string; message: string };
  steps: Step[];
  changes: string[];
  node: NodeJson;
}

interface MergeCase {
  name: string;
  id: string;
  base: string[];
  branches: { actor: string; steps: Step[]; changes: string[] }[];
  conflicts: Conflict[];
  resolves: { field: string; value: string; now: string; change: string | null }[];
  node: NodeJson;
}

function fixture<T>(name: string): T {
  return JSON.parse(readFileSync(new URL(`../fixtures/${name}`, import.meta.url), "utf8")) as T;
}

const genesisCases = fixture<{ cases: GenesisCase[] }>("genesis.json").cases;
const { cases, merges } = fixture<{ cases: EditCase[]; merges: MergeCase[] }>("edits.json");

const b64 = (change: Uint8Array | null): string | null => (change ? toBase64(change) : null);

/** Runs `steps` on `doc`, returning the document and every change made. */
function replay(doc: Doc.NodeDoc, steps: Step[]): { doc: Doc.NodeDoc; changes: Uint8Array[] } {
  const changes: Uint8Array[] = [];
  for (const s of steps) {
    const made = Doc.edit(doc, s.edits, s.message, new Date(s.now));
    doc = made.doc;
    if (made.change) changes.push(made.change);
  }
  return { doc, changes };
}

function loaded(changes: string[]): Doc.NodeDoc {
  return Doc.applyChanges(Doc.empty(), changes.map(fromBase64));
}

test("sha256 and derived ids agree with node:crypto and the engine", () => {
  // Lengths around the padding boundaries (55, 56, 64 bytes) included.
  const texts = ["", "abc", "heph/journal/2026-11-25", "x".repeat(55), "y".repeat(56), "z".repeat(200), "ünï🎉"];
  for (const text of texts) {
    const bytes = new TextEncoder().encode(text);
    const expected = createHash("sha256").update(bytes).digest("hex");
    assert.equal(Buffer.from(Doc.sha256(bytes)).toString("hex"), expected, text);
  }
  for (const c of genesisCases.filter((c) => c.day)) assert.equal(Doc.journalId(c.day!), c.id);
  assert.match(Doc.randomId(), /^[0-9a-f]{32}$/);
  assert.notEqual(Doc.randomId(), Doc.randomId());
  assert.equal(Doc.parseId("0123456789ABCDEF-0123-4567-89ab-cdef01234567"), undefined);
  assert.equal(Doc.parseId(" 01234567-89AB-CDEF-0123-456789abcdef "), "0123456789abcdef0123456789abcdef");
});

test("every genesis is byte-identical to the engine's", () => {
  assert.ok(genesisCases.length > 20);
  for (const c of genesisCases) {
    const { doc, change } = c.day ? Doc.journalGenesis(c.day) : Doc.genesis(c.id, c.kind);
    assert.equal(toBase64(change), c.change, `${c.kind} ${c.id} ${c.day ?? ""}`);
    // Nothing else is ever written as the genesis actor.
    const genesisActor = A.decodeChange(change).actor;
    assert.notEqual(A.getActorId(doc), genesisActor);
    assert.equal(Doc.materialise(doc, c.id).kind, c.kind);
  }
});

test("creating and editing makes the engine's changes, byte for byte", () => {
  assert.ok(cases.length >= 25);
  for (const c of cases) {
    const made = Doc.create(c.create.node, c.create.edits, c.create.actor, c.create.message);
    const stepped = replay(made.doc, c.steps);
    const changes = [...made.changes, ...stepped.changes].map(toBase64);
    assert.deepEqual(changes, c.changes, c.name);
    assert.deepEqual(Doc.materialise(stepped.doc, c.node.id), c.node, c.name);
  }
});

test("the engine's changes read back as the engine's node", () => {
  for (const c of cases) {
    assert.deepEqual(Doc.materialise(loaded(c.changes), c.node.id), c.node, c.name);
  }
  for (const m of merges) {
    const resolved = m.resolves.flatMap((r) => (r.change ? [r.change] : []));
    const all = [...m.base, ...m.branches.flatMap((b) => b.changes), ...resolved];
    assert.deepEqual(Doc.materialise(loaded(all), m.id), m.node, m.name);
  }
});

test("concurrent edits conflict and resolve as in the engine", () => {
  for (const m of merges) {
    const branches = m.branches.map((b) => {
      const made = replay(Doc.load(concat(m.base.map(fromBase64)), b.actor), b.steps);
      assert.deepEqual(made.changes.map(toBase64), b.changes, `${m.name}: branch ${b.actor}`);
      return made;
    });
    let merged = branches[0]!.doc;
    for (const other of branches.slice(1)) merged = Doc.applyChanges(merged, other.changes);
    assert.deepEqual(Doc.conflicts(merged, m.id), m.conflicts, m.name);
    for (const r of m.resolves) {
      const made = Doc.resolve(merged, r.field, r.value, new Date(r.now));
      assert.equal(b64(made.change), r.change, `${m.name}: resolve ${r.field}`);
      merged = made.doc;
    }
    assert.deepEqual(Doc.materialise(merged, m.id), m.node, m.name);
  }
});

test("a task created the way the app does reads back whole", () => {
  const id = Doc.randomId();
  const now = new Date("2026-11-25T12:00:00.000Z");
  const draft: NodeJson = {
    id, kind: "task", title: "From the app", body: "", tags: [], links: [],
    created: now.toISOString(), modified: now.toISOString(), deleted: false, status: "pending",
  };
  const { doc, changes } = Doc.create(draft, [{ edit: "add_tag", value: "web" }], "0a".repeat(16), "add");
  assert.equal(changes.length, 2);
  const node = Doc.materialise(doc, id);
  // The engine prints whole seconds without a fraction.
  const at = "2026-11-25T12:00:00Z";
  assert.deepEqual(node, { ...draft, tags: ["web"], created: at, modified: at });
  assert.deepEqual(Doc.heads(Doc.load(Doc.save(doc))), Doc.heads(doc));
  const [, content] = changes;
  const genesisOnly = Doc.applyChanges(Doc.empty(), [changes[0]!]);
  assert.deepEqual(Doc.changesSince(doc, Doc.heads(genesisOnly)).map(toBase64), [toBase64(content!)]);
  assert.deepEqual(Doc.changesSince(doc, ["00".repeat(32)]).length, 2);
  assert.deepEqual(Doc.edit(doc, [], "nothing", now), { doc, change: null });
});

test("a document of another node or of no kind is refused", () => {
  const { doc } = Doc.genesis("0123456789abcdef0123456789abcdef", "note");
  const other = "ffffffffffffffffffffffffffffffff";
  assert.throws(() => Doc.materialise(doc, other), { name: "DocError", reason: "not_a_node" });
  assert.throws(() => Doc.materialise(Doc.empty(), other), /it has no kind/);
});

test("an edit never overwrites a value heph cannot read", () => {
  const id = "0123456789abcdef0123456789abcdef";
  const born = Doc.genesis(id, "task");
  // Another program replaced the tags with a number and the body with a string.
  const foreign = A.change(born.doc, { message: "foreign", time: 0 }, () => {
    const h = A.getBackend(born.doc);
    h.put("_root", "tags", 3, "int");
    h.put("_root", "body", "plain", "str");
  });
  assert.throws(() => Doc.edit(foreign, [{ edit: "add_tag", value: "x" }], "modify", new Date(0)), {
    name: "DocError",
    reason: "occupied",
    message: "field tags holds an int, which heph cannot read; it will not overwrite it",
  });
  // A string body is carried over into text and then edited.
  const { doc } = Doc.edit(foreign, [{ edit: "append_body", value: "more" }], "modify", new Date(0));
  const node = Doc.materialise(doc, id);
  assert.equal(node.body, "plain\nmore\n");
  assert.deepEqual(node.extra, { tags: 3 });
});

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

test("a body typed against an older text keeps what arrived meanwhile (editAt)", async () => {
  const { A } = await import("../../src/automerge.ts");
  const Doc = await import("../../src/doc.ts");
  const id = Doc.randomId();
  const base = Doc.create({ id, kind: "task", title: "t", body: "one\n", tags: [], links: [], created: "2026-11-26T10:00:00Z", modified: "2026-11-26T10:00:00Z", deleted: false, status: "pending" }, [], "aa".repeat(16), "add t");
  const shown = A.getHeads(base.doc);
  // Another device appends a line; it arrives before our typing is saved.
  const theirs = Doc.edit(Doc.setActor(A.clone(base.doc), "bb".repeat(16)), [{ edit: "body", value: "one\ntheirs\n" }], "edit", new Date());
  const merged = Doc.applyChanges(base.doc, [theirs.change!]);
  // We typed "mine" at the start of the text we saw.
  const ours = Doc.editAt(merged, shown, [{ edit: "body", value: "mine one\n" }], "edit body", new Date());
  assert.equal(Doc.materialise(ours.doc, id).body, "mine one\ntheirs\n");
});
