// The browser's replica: every node of the owner, materialised for the
// views, with the Automerge documents behind them loaded on demand.
//
// Local edits go through the document layer (doc.ts: the engine's layout
// and edit rules), are stored with their change queued for the hub in one
// IndexedDB transaction, and only then shown. Changes from the hub are
// applied and stored together with the cursor that covers them.
import { A } from "./automerge.ts";
import * as Doc from "./doc.ts";
import type { Conflict, Edit, Kind, NodeJson } from "./model.ts";
import type { DocRecord, Known, Meta, PendingChange } from "./store.ts";
import { Store } from "./store.ts";
import { fromBase64 } from "./bytes.ts";
import { readRecord, viewedRecord, type Readers } from "./readers.ts";
import type { WireDoc } from "./wire.ts";

/**
 * Told which nodes changed; `settled` when they end a run of writes (the
 * last frame of a bootstrap), so a view that throttles its redraws while
 * thousands of nodes arrive draws the end at once.
 */
type Listener = (ids: Set<string>, settled: boolean) => void;

function randomHex(bytes: number): string {
  const b = crypto.getRandomValues(new Uint8Array(bytes));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** A blank node (engine `Node::new`): tasks start pending. */
export function newNode(id: string, kind: Kind, title: string, now: Date): NodeJson {
  const t = now.toISOString();
  const node: NodeJson = { id, kind, title, body: "", tags: [], links: [], created: t, modified: t, deleted: false };
  if (kind === "task") node.status = "pending";
  return node;
}

/** Documents kept loaded at most (the rest stay as bytes). */
const LOADED = 64;

export class Replica {
  readonly nodes = new Map<string, NodeJson>();
  readonly conflicted = new Map<string, string[]>();
  private readonly records = new Map<string, DocRecord>();
  private readonly loaded = new Map<string, Doc.NodeDoc>();
  private readonly listeners = new Set<Listener>();
  /** Serialises writes, so records and the store never interleave. */
  private queue: Promise<unknown> = Promise.resolve();
  meta: Meta;
  /** Workers that read bootstrap snapshots, when the page has them. */
  readers: Readers | null = null;
  /** Local changes the hub has not acknowledged (kept in step with the store). */
  unsent = 0;

  private constructor(readonly store: Store, meta: Meta, readonly device: string) {
    this.meta = meta;
  }

  /** Opens the replica for `scope` (the hub's URL): IndexedDB first, no network. */
  static async open(scope: string): Promise<Replica> {
    const store = await Store.open(scope);
    const meta = await store.meta();
    let device = meta.device;
    if (!device) {
      device = randomHex(16);
      await store.write({ meta: { device } });
      meta.device = device;
    }
    const replica = new Replica(store, meta, device);
    replica.unsent = await store.pendingCount();
    for (const record of await store.allDocs()) replica.index(record);
    return replica;
  }

  private index(record: DocRecord): void {
    this.records.set(record.id, record);
    if (record.node) this.nodes.set(record.id, record.node);
    if (record.conflicts.length > 0) this.conflicted.set(record.id, record.conflicts);
    else this.conflicted.delete(record.id);
  }

  on(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(ids: Iterable<string>, settled = false): void {
    const set = new Set(ids);
    if (set.size === 0 && !settled) return;
    for (const l of this.listeners) l(set, settled);
  }

  /** Runs `job` after every write before it (one writer at a time). */
  private serial<T>(job: () => Promise<T>): Promise<T> {
    const next = this.queue.then(job, job);
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** The loaded document of `id`, with this browser as its actor. */
  private docOf(id: string): Doc.NodeDoc | undefined {
    const hit = this.loaded.get(id);
    if (hit) {
      this.loaded.delete(id);
      this.loaded.set(id, hit);
      return hit;
    }
    const record = this.records.get(id);
    if (!record) return undefined;
    const doc = A.load<unknown>(record.bytes, { actor: this.device }) as Doc.NodeDoc;
    this.remember(id, doc);
    return doc;
  }

  private remember(id: string, doc: Doc.NodeDoc): void {
    this.loaded.delete(id);
    this.loaded.set(id, doc);
    while (this.loaded.size > LOADED) {
      const oldest = this.loaded.keys().next().value as string;
      const gone = this.loaded.get(oldest);
      this.loaded.delete(oldest);
      if (gone) A.free(gone);
    }
  }

  private recordOf(id: string, doc: Doc.NodeDoc, bytes?: Uint8Array): DocRecord {
    let node: NodeJson | null = null;
    let conflicts: string[] = [];
    try {
      node = Doc.materialise(doc, id);
      conflicts = Doc.conflicts(doc, id).map((c) => c.field);
    } catch (e) {
      console.warn(`node ${id} cannot be read`, e);
    }
    return { id, bytes: bytes ?? A.save(doc), heads: A.getHeads(doc), node, conflicts };
  }

  /** Conflicts of one node, with their values. */
  conflictsOf(id: string): Conflict[] {
    const doc = this.docOf(id);
    return doc ? Doc.conflicts(doc, id) : [];
  }

  /** Nodes linking to `id`. */
  backlinks(id: string): NodeJson[] {
    const out: NodeJson[] = [];
    for (const n of this.nodes.values()) if (!n.deleted && n.links.includes(id)) out.push(n);
    return out;
  }

  private async commitLocal(id: string, doc: Doc.NodeDoc, changes: Uint8Array[]): Promise<NodeJson | null> {
    const record = this.recordOf(id, doc);
    await this.store.write({ docs: [record], queue: changes.map((bytes) => ({ doc: id, bytes })) });
    this.unsent += changes.length;
    this.remember(id, doc);
    this.index(record);
    this.emit([id]);
    this.localWrites();
    return record.node;
  }

  /** Creates a node: `title` and `edits` on top of its deterministic genesis. */
  create(kind: Kind, title: string, edits: Edit[], message: string, now = new Date()): Promise<NodeJson | null> {
    return this.serial(async () => {
      const id = Doc.randomId();
      const draft = newNode(id, kind, title, now);
      const { doc, changes } = Doc.create(draft, edits, this.device, message);
      return this.commitLocal(id, doc, changes);
    });
  }

  /** The heads of node `id`'s document (hex), empty when it is not here. */
  headsOf(id: string): string[] {
    return this.records.get(id)?.heads ?? [];
  }

  /**
   * Applies `edits` to node `id` as one change. With `at` (heads the user
   * saw), the edits are made against that state, so a body typed over an
   * older text keeps what arrived meanwhile.
   */
  edit(id: string, edits: Edit[], message: string, now = new Date(), at?: string[]): Promise<NodeJson | null> {
    return this.serial(async () => {
      const doc = this.docOf(id);
      if (!doc) throw new Error(`no node ${id}`);
      const { doc: next, change } = at ? Doc.editAt(doc, at, edits, message, now) : Doc.edit(doc, edits, message, now);
      if (!change) return this.nodes.get(id) ?? null;
      return this.commitLocal(id, next, [change]);
    });
  }

  /** Ends a conflict on `field` with the value rendered as `value`. */
  resolve(id: string, field: string, value: string, now = new Date()): Promise<NodeJson | null> {
    return this.serial(async () => {
      const doc = this.docOf(id);
      if (!doc) throw new Error(`no node ${id}`);
      const { doc: next, change } = Doc.resolve(doc, field, value, now);
      if (!change) return this.nodes.get(id) ?? null;
      return this.commitLocal(id, next, [change]);
    });
  }

  /** The journal node of `day` (YYYY-MM-DD), created by its shared genesis if new. */
  journal(day: string): Promise<NodeJson | null> {
    return this.serial(async () => {
      const id = Doc.journalId(day);
      const known = this.nodes.get(id);
      if (known) return known;
      const { doc, change } = Doc.journalGenesis(day);
      const mine = A.clone(doc, { actor: this.device }) as Doc.NodeDoc;
      return this.commitLocal(id, mine, [change]);
    });
  }

  // --- from the hub -------------------------------------------------------

  /** Hook for the sync client: local changes were queued. */
  localWrites: () => void = () => {};

  /** Stores changes from the hub (one `changes` frame) with the cursor. */
  receiveChanges(changes: { doc: string; bytes: string }[], cursor: number, known: Known | null): Promise<void> {
    return this.serial(async () => {
      const byDoc = new Map<string, Uint8Array[]>();
      for (const c of changes) {
        const list = byDoc.get(c.doc) ?? [];
        list.push(fromBase64(c.bytes));
        byDoc.set(c.doc, list);
      }
      const records: DocRecord[] = [];
      for (const [id, list] of byDoc) {
        const doc = this.docOf(id) ?? (A.init<unknown>({ actor: this.device }) as Doc.NodeDoc);
        const [next] = A.applyChanges(doc, list);
        this.remember(id, next as Doc.NodeDoc);
        records.push(this.recordOf(id, next as Doc.NodeDoc));
      }
      const meta: Meta = { cursor, lastSync: Date.now() };
      if (this.advances(known)) meta.known = known;
      await this.store.write({ docs: records, meta });
      Object.assign(this.meta, meta);
      for (const r of records) this.index(r);
      this.emit(byDoc.keys());
    });
  }

  /**
   * Stores bootstrap snapshots. `upto` is set on the last frame only: the
   * cursor moves then, so a bootstrap cut short starts over (merging is
   * idempotent) rather than resuming after documents it never got.
   */
  receiveSnapshot(docs: WireDoc[], upto: number | null, known: Known | null): Promise<void> {
    // Documents new to this browser come with the hub's reading of them, or
    // are read off the page's thread, starting now (while earlier frames are
    // still being stored).
    const fresh = docs.filter((d) => !this.records.has(d.doc) && !d.view);
    const decoded = this.readers && fresh.length >= 32 ? this.readers.read(fresh) : null;
    return this.serial(async () => {
      const read = new Map((decoded ? await decoded : []).map((r) => [r.id, r]));
      const records: DocRecord[] = [];
      const fresh: DocRecord[] = [];
      for (const d of docs) {
        if (this.records.has(d.doc)) {
          // Held here already (made offline, or an earlier bootstrap): merge.
          const local = this.docOf(d.doc);
          if (!local) continue;
          const merged = A.loadIncremental(local, fromBase64(d.bytes)) as Doc.NodeDoc;
          this.remember(d.doc, merged);
          records.push(this.recordOf(d.doc, merged));
          continue;
        }
        // Not kept loaded: a bootstrap of thousands of documents would fill
        // memory; the saved bytes are the hub's, stored as they came.
        fresh.push(viewedRecord(d) ?? read.get(d.doc) ?? readRecord(d));
      }
      const meta: Meta = { lastSync: Date.now() };
      if (upto !== null) meta.cursor = upto;
      if (upto !== null && this.advances(known)) meta.known = known;
      await this.store.write({ docs: records, chunk: fresh, meta, relaxed: upto === null });
      Object.assign(this.meta, meta);
      for (const r of records) this.index(r);
      for (const r of fresh) this.index(r);
      this.emit(
        docs.map((d) => d.doc),
        upto !== null,
      );
    });
  }

  /** Records what the hub said about itself (its id; a restart of the cursor). */
  setMeta(meta: Meta): Promise<void> {
    return this.serial(async () => {
      await this.store.write({ meta });
      Object.assign(this.meta, meta);
    });
  }

  /**
   * Whether `known` (a hub position some frame named) is at least as far
   * into the hub's log as the one kept: the kept one only moves forward,
   * as in the engine (`advance_known`).
   */
  private advances(known: Known | null): known is Known {
    return known !== null && (this.meta.known == null || known.seq >= this.meta.known.seq);
  }

  /** Drops acknowledged local changes (every pending seq up to `upto`). */
  acknowledge(upto: number, known: Known | null): Promise<void> {
    return this.serial(async () => {
      const meta: Meta = { lastSync: Date.now() };
      if (this.advances(known)) meta.known = known;
      await this.store.write({ ackedUpto: upto, meta });
      Object.assign(this.meta, meta);
      this.unsent = await this.store.pendingCount();
    });
  }

  pending(limit?: number): Promise<PendingChange[]> {
    return this.store.pending(limit);
  }

  /** Every document's heads, in id order (a reconciliation's `have`). */
  heads(): { doc: string; heads: string[] }[] {
    return [...this.records.values()]
      .map((r) => ({ doc: r.id, heads: r.heads }))
      .sort((a, b) => (a.doc < b.doc ? -1 : a.doc > b.doc ? 1 : 0));
  }

  /** The changes of `id` the holder of `theirs` lacks, in causal order. */
  changesSince(id: string, theirs: string[]): Uint8Array[] {
    const doc = this.docOf(id);
    return doc ? Doc.changesSince(doc, theirs) : [];
  }
}
