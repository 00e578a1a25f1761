import "./setup.ts";
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { A } from "../../src/automerge.ts";
import { fromBase64 } from "../../src/bytes.ts";
import * as Doc from "../../src/doc.ts";
import type { Edit, NodeJson } from "../../src/model.ts";

// `readSaved` reads a document with a linear history from one materialised
// tree and skips the conflict check; anything else key by key. Whichever
// way it goes, it must give what the full reader gives for the loaded
// document: `materialise` and `conflicts`.

type Backend = ReturnType<typeof A.getBackend>;

const ME = "aa".repeat(16);
const THEM = "bb".repeat(16);
const AT = new Date("2026-11-26T10:00:00Z");

/** Checks readSaved against the full reader; and, given `reader`, that it read that way. */
function expectSame(doc: Doc.NodeDoc | Uint8Array, id: string, reader: "tree" | "backend" | undefined, what: string): Doc.SavedRead {
  const bytes = doc instanceof Uint8Array ? doc : A.save(doc);
  const got = Doc.readSaved(bytes, id);
  const loaded = A.load<unknown>(bytes) as Doc.NodeDoc;
  let node: NodeJson | null = null;
  let conflicts: string[] = [];
  let error: string | undefined;
  try {
    node = Doc.materialise(loaded, id);
    conflicts = Doc.conflicts(loaded, id).map((c) => c.field);
  } catch (e) {
    error = (e as Error).message;
  }
  // The stored node is JSON text: the same text, key order included.
  assert.equal(JSON.stringify(got.node), JSON.stringify(node), what);
  assert.deepEqual(got.node, node, what);
  assert.deepEqual(got.conflicts, conflicts, what);
  assert.equal(got.error, error, what);
  assert.deepEqual(got.heads, A.getHeads(loaded), what);
  if (reader) assert.equal(got.reader, reader, what);
  return got;
}

function task(id: string, extra: Partial<NodeJson> = {}): NodeJson {
  const t = AT.toISOString();
  return { id, kind: "task", title: "a task", body: "", tags: [], links: [], created: t, modified: t, deleted: false, status: "pending", ...extra };
}

/** The saved document after one change written straight into the backend, the way another program might. */
function raw(doc: Doc.NodeDoc, write: (h: Backend) => void): Uint8Array {
  const h = A.getBackend(doc).fork(THEM) as Backend;
  write(h);
  h.commit("raw", AT.getTime());
  return h.save();
}

test("a linear history reads from the tree exactly as the full reader reads it", () => {
  const id = Doc.randomId();
  const other = Doc.randomId();
  const node = task(id, {
    body: "line one\nline two ünï 🎉\n",
    tags: ["work", "home", "10", "9", "__proto__", "constructor", "é"],
    links: [other],
    depends: [other],
    priority: "H",
    project: "home.garden",
    due: "2026-12-01T09:00:00.000Z",
    wait: "2026-11-28T00:00:00.000Z",
    annotations: [
      { entry: "2026-11-26T11:00:00.000Z", description: "second" },
      { entry: "2026-11-26T10:30:00.000Z", description: "first" },
    ],
    uda: { estimate: "3h", __proto__: "odd", toString: "x" } as Record<string, string>,
  });
  // Genesis and content: two changes.
  const made = Doc.create(node, [], ME, "add");
  expectSame(made.doc, id, "tree", "created");

  // More changes, still one line, by two actors in turn.
  let doc = made.doc;
  const edits: Edit[][] = [
    [{ edit: "title", value: "renamed" }, { edit: "status", value: "active" }],
    [{ edit: "remove_tag", value: "home" }, { edit: "annotate", value: { entry: "2026-11-27T08:00:00.000Z", description: "third" } }],
    [{ edit: "due", value: null }, { edit: "uda", value: ["estimate", null] }, { edit: "deleted", value: true }],
  ];
  for (const [i, e] of edits.entries()) {
    doc = Doc.setActor(doc, i % 2 === 0 ? THEM : ME);
    doc = Doc.edit(doc, e, "edit", new Date(AT.getTime() + (i + 1) * 60_000)).doc;
    expectSame(doc, id, "tree", `after edit ${i}`);
  }

  // A journal day, and a bare genesis.
  expectSame(Doc.journalGenesis("2026-11-26").doc, Doc.journalId("2026-11-26"), "tree", "journal genesis");
  expectSame(Doc.genesis(id, "note").doc, id, "tree", "note genesis");
});

test("values heph does not write read the same from the tree", () => {
  const id = Doc.randomId();
  const doc = raw(Doc.create(task(id), [], ME, "add").doc, (h) => {
    for (const [key, value, type] of [
      ["an_int", -7, "int"],
      ["a_uint", 7, "uint"],
      ["a_float", 2.5, "f64"],
      ["a_whole_float", 3, "f64"],
      ["a_counter", 4, "counter"],
      ["a_bool", false, "boolean"],
      ["a_null", null, "null"],
      ["a_time", new Date(AT.getTime() + 1), "timestamp"],
      ["start", 1764151200000, "int"],
      ["end", 8.64e15 + 1, "int"],
    ] as const) {
      h.put("_root", key, value as number, type);
    }
    h.increment("_root", "a_counter", 3);
    h.put("_root", "some_bytes", new Uint8Array([0, 1, 255]) as unknown as number, "bytes");
    h.put("_root", "priority", "urgent", "str");
    h.put("_root", "scheduled", "tomorrow", "str");
    // A title as text, as JavaScript writers make it.
    const title = h.putObject("_root", "title", "");
    h.splice(title, 0, 0, "text title");
    // Keys a plain JavaScript object would mishandle, at the root and inside.
    const proto = h.putObject("_root", "__proto__", "");
    h.splice(proto, 0, 0, "a text at __proto__");
    const nested = h.putObject("_root", "nested", {});
    for (const k of ["b", "10", "9", "a", "__proto__", "constructor", "", "😀", "\uE000"]) h.put(nested, k, k.length, "int");
    // More values than are shown: which ones are cut depends on key order.
    const many = h.putObject("_root", "many", {});
    for (let i = 0; i < 600; i++) {
      h.put(many, `#${i}`, i, "int");
      h.put(many, String(i), i, "int");
    }
    const list = h.putObject(nested, "list", []);
    h.insert(list, 0, "x", "str");
    h.insertObject(list, 1, { deep: 1.5 });
    const body = h.putObject("_root", "body", "");
    h.splice(body, 0, 0, "hello world");
    h.splitBlock(body, 5, { type: "paragraph", parents: [], attrs: {} });
    // A UDA that is not text, and set members that are not ids.
    const uda = h.getWithType("_root", "uda")![1] as string;
    h.put(uda, "n", 5, "int");
    h.put(uda, "__proto__", "p", "str");
    const links = h.getWithType("_root", "links")![1] as string;
    h.put(links, "not-an-id", true, "boolean");
    const annotations = h.getWithType("_root", "annotations")![1] as string;
    h.insert(annotations, 0, "not an annotation", "str");
    const item = h.insertObject(annotations, 1, {});
    h.put(item, "description", "no entry", "str");
  });
  const read = expectSame(doc, id, "tree", "unusual values");
  assert.equal(read.node?.title, "text title");
  assert.ok(read.node?.extra && "__proto__" in read.node.extra, "a __proto__ key is kept in extra");
  assert.equal(Object.getPrototypeOf(read.node!.extra), Object.prototype);

  // A list where heph keeps a set: read, and kept, the same way.
  const listed = raw(Doc.create(task(id), [], ME, "add").doc, (h) => {
    const tags = h.putObject("_root", "tags", []);
    h.insert(tags, 0, "from-a-list", "str");
  });
  expectSame(listed, id, "tree", "tags as a list");
});

test("documents that are not nodes fail the same way", () => {
  const id = Doc.randomId();
  expectSame(A.init<unknown>() as Doc.NodeDoc, id, "backend", "empty document");
  const wrongKind = raw(Doc.create(task(id), [], ME, "add").doc, (h) => h.put("_root", "kind", "recipe", "str"));
  expectSame(wrongKind, id, "backend", "unknown kind");
  expectSame(Doc.create(task(id), [], ME, "add").doc, Doc.randomId(), "backend", "another node's id");
});

/** A node edited on two devices at once, then merged and edited on top (one head again). */
function branched(mine: Edit[], theirs: Edit[]): { doc: Doc.NodeDoc; id: string } {
  const id = Doc.randomId();
  const base = Doc.create(task(id, { tags: ["work"] }), [], ME, "add").doc;
  const a = Doc.edit(base, mine, "mine", new Date(AT.getTime() + 60_000));
  const b = Doc.edit(Doc.setActor(A.clone(base), THEM), theirs, "theirs", new Date(AT.getTime() + 60_000));
  let doc = Doc.applyChanges(a.doc, [b.change!]);
  assert.equal(A.getHeads(doc).length, 2);
  doc = Doc.edit(doc, [{ edit: "add_tag", value: "after" }], "after", new Date(AT.getTime() + 120_000)).doc;
  assert.equal(A.getHeads(doc).length, 1, "the edit after the merge depends on both branches");
  return { doc, id };
}

test("a history that branched is read key by key: no conflict stays none", () => {
  // Different fields on each side: concurrent changes, no concurrent values
  // (`modified` is written by both, and is never a conflict).
  const { doc, id } = branched([{ edit: "title", value: "mine" }], [{ edit: "add_tag", value: "theirs" }, { edit: "priority", value: "L" }]);
  const read = expectSame(doc, id, "backend", "branched and merged, no conflict");
  assert.deepEqual(read.conflicts, []);
  assert.equal(read.node?.title, "mine");
  assert.deepEqual(read.node?.tags, ["after", "theirs", "work"]);
});

test("a history that branched keeps its conflicts, though it has one head", () => {
  const { doc, id } = branched(
    [{ edit: "title", value: "mine" }, { edit: "body", value: "my body" }],
    [{ edit: "title", value: "theirs" }, { edit: "body", value: "their body" }, { edit: "project", value: "p" }],
  );
  const read = expectSame(doc, id, "backend", "branched and merged, conflicting");
  assert.deepEqual(read.conflicts, ["title"]);

  // Two heads, not merged yet.
  const base = Doc.create(task(id), [], ME, "add").doc;
  const a = Doc.edit(base, [{ edit: "status", value: "done" }], "a", new Date(AT.getTime() + 60_000));
  const b = Doc.edit(Doc.setActor(A.clone(base), THEM), [{ edit: "status", value: "cancelled" }], "b", new Date(AT.getTime() + 60_000));
  const twoHeads = Doc.applyChanges(a.doc, [b.change!]);
  assert.deepEqual(expectSame(twoHeads, id, "backend", "two heads").conflicts, ["status"]);
});

test("the engine's merge fixtures read the same through readSaved", () => {
  const { merges } = JSON.parse(readFileSync(new URL("../fixtures/edits.json", import.meta.url), "utf8")) as {
    merges: { name: string; id: string; base: string[]; branches: { changes: string[] }[] }[];
  };
  assert.ok(merges.length > 0);
  for (const m of merges) {
    // Some bases are concurrent already; every merge is.
    const base = Doc.applyChanges(Doc.empty(), m.base.map(fromBase64));
    expectSame(base, m.id, undefined, `${m.name}: base`);
    const all = Doc.applyChanges(base, m.branches.flatMap((b) => b.changes.map(fromBase64)));
    const read = expectSame(all, m.id, "backend", `${m.name}: merged`);
    assert.ok(read.conflicts.length > 0, `${m.name}: its conflicts`);
  }
});
