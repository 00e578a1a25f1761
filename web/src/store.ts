// The browser replica's storage: IndexedDB.
//
// Object stores:
// - `docs`: id → DocRecord — the saved Automerge document, its heads, and
//   the node materialised from it (the list and search read only this, so a
//   reload shows the list without loading one Automerge document);
// - `pending`: auto-increment → PendingChange — local changes the hub has
//   not acknowledged, in the order they were made;
// - `meta`: key → value — the sync cursor, the hub's id and log position,
//   this browser's device id, and whether a reconciliation is owed.
//
// Durability: every write that must stay together (a document and its
// pending change; received documents and the cursor that covers them) is
// one IndexedDB transaction, awaited until `complete` — so a reload never
// finds a cursor past documents it does not hold, nor an edit shown but not
// queued for the hub.
import type { NodeJson } from "./model.ts";

export interface DocRecord {
  id: string;
  /** The saved document (A.save). */
  bytes: Uint8Array;
  /** Its heads, hex: what a reconciliation offers without loading it. */
  heads: string[];
  node: NodeJson | null;
  /** Fields with concurrent values (see doc.ts `conflicts`). */
  conflicts: string[];
}

export interface PendingChange {
  seq?: number;
  doc: string;
  bytes: Uint8Array;
}

export interface Known {
  seq: number;
  hash: string;
}

export interface Meta {
  device?: string;
  hub?: string;
  cursor?: number;
  known?: Known | null;
  reconcile?: boolean;
  lastSync?: number;
}

const NAME = "heph";
const VERSION = 3;

/**
 * A DocRecord as stored: the node as JSON text and the heads joined, since
 * IndexedDB clones flat strings far faster than object trees (a bootstrap
 * stores thousands of records at once).
 */
interface Stored {
  id: string;
  bytes: Uint8Array;
  heads: string;
  node: string | null;
  conflicts: string[];
}

function toStored(r: DocRecord): Stored {
  return { id: r.id, bytes: r.bytes, heads: r.heads.join(","), node: r.node ? JSON.stringify(r.node) : null, conflicts: r.conflicts };
}

/**
 * Documents of one bootstrap frame, stored as one record: IndexedDB's cost
 * is mostly per record, and a first load stores thousands of documents.
 * A document's own record in `docs` (written when it changes later) wins
 * over its entry here.
 */
interface Chunk {
  n?: number;
  ids: string[];
  /** Every document's bytes, end to end; `ends[i]` is where document i ends. */
  bytes: Uint8Array;
  ends: number[];
  heads: string[];
  /** The nodes, one JSON array. */
  nodes: string;
  conflicts: string[][];
}

function toChunk(records: DocRecord[]): Chunk {
  const size = records.reduce((n, r) => n + r.bytes.length, 0);
  const bytes = new Uint8Array(size);
  const ends: number[] = [];
  let at = 0;
  for (const r of records) {
    bytes.set(r.bytes, at);
    at += r.bytes.length;
    ends.push(at);
  }
  return {
    ids: records.map((r) => r.id),
    bytes,
    ends,
    heads: records.map((r) => r.heads.join(",")),
    nodes: JSON.stringify(records.map((r) => r.node)),
    conflicts: records.map((r) => r.conflicts),
  };
}

function fromChunk(c: Chunk): DocRecord[] {
  const nodes = JSON.parse(c.nodes) as (NodeJson | null)[];
  return c.ids.map((id, i) => ({
    id,
    bytes: c.bytes.slice(i === 0 ? 0 : c.ends[i - 1], c.ends[i]),
    heads: c.heads[i] ? c.heads[i]!.split(",") : [],
    node: nodes[i] ?? null,
    conflicts: c.conflicts[i] ?? [],
  }));
}

function fromStored(s: Stored): DocRecord {
  return {
    id: s.id,
    bytes: s.bytes,
    heads: s.heads ? s.heads.split(",") : [],
    node: s.node ? (JSON.parse(s.node) as NodeJson) : null,
    conflicts: s.conflicts,
  };
}

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error("IndexedDB request failed"));
  });
}

function done(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onabort = () => reject(tx.error ?? new Error("IndexedDB transaction aborted"));
    tx.onerror = () => reject(tx.error ?? new Error("IndexedDB transaction failed"));
  });
}

export class Store {
  private constructor(private readonly db: IDBDatabase) {}

  /** Opens (creating on first use) the replica of the hub at `scope`. */
  static async open(scope: string): Promise<Store> {
    const req = indexedDB.open(`${NAME}:${scope}`, VERSION);
    req.onupgradeneeded = (ev) => {
      const db = req.result;
      // Version 1 stored records as object trees: start over from the hub
      // (unsent edits stay in `pending` and are sent again).
      if (ev.oldVersion === 1) {
        db.deleteObjectStore("docs");
        req.transaction?.objectStore("meta").delete("cursor");
        req.transaction?.objectStore("meta").delete("known");
      }
      if (!db.objectStoreNames.contains("docs")) db.createObjectStore("docs", { keyPath: "id" });
      if (!db.objectStoreNames.contains("pending")) db.createObjectStore("pending", { keyPath: "seq", autoIncrement: true });
      if (!db.objectStoreNames.contains("meta")) db.createObjectStore("meta");
      if (!db.objectStoreNames.contains("chunks")) db.createObjectStore("chunks", { keyPath: "n", autoIncrement: true });
    };
    const db = await request(req);
    // Another tab upgrading the schema: let it, this tab reloads.
    db.onversionchange = () => db.close();
    return new Store(db);
  }

  async meta(): Promise<Meta> {
    const tx = this.db.transaction("meta", "readonly");
    const store = tx.objectStore("meta");
    const [keys, values] = await Promise.all([request(store.getAllKeys()), request(store.getAll())]);
    const meta: Record<string, unknown> = {};
    keys.forEach((k, i) => (meta[String(k)] = values[i]));
    return meta as Meta;
  }

  /** Every document record (node and heads; bytes too — IndexedDB has no projection). */
  async allDocs(): Promise<DocRecord[]> {
    const tx = this.db.transaction(["chunks", "docs"], "readonly");
    const [chunks, own] = await Promise.all([
      request(tx.objectStore("chunks").getAll() as IDBRequest<Chunk[]>),
      request(tx.objectStore("docs").getAll() as IDBRequest<Stored[]>),
    ]);
    const byId = new Map<string, DocRecord>();
    for (const c of chunks) for (const r of fromChunk(c)) byId.set(r.id, r);
    for (const s of own) byId.set(s.id, fromStored(s));
    return [...byId.values()];
  }


  async doc(id: string): Promise<DocRecord | undefined> {
    const tx = this.db.transaction("docs", "readonly");
    const s = await request(tx.objectStore("docs").get(id) as IDBRequest<Stored | undefined>);
    return s && fromStored(s);
  }

  async pending(limit?: number): Promise<PendingChange[]> {
    const tx = this.db.transaction("pending", "readonly");
    return request(tx.objectStore("pending").getAll(null, limit) as IDBRequest<PendingChange[]>);
  }

  async pendingCount(): Promise<number> {
    const tx = this.db.transaction("pending", "readonly");
    return request(tx.objectStore("pending").count());
  }

  /**
   * One atomic write: documents to store, local changes to queue, pending
   * changes the hub acknowledged (every seq up to `ackedUpto`), meta keys.
   */
  async write(w: {
    docs?: DocRecord[];
    /** Documents new to this replica, stored as one record (a bootstrap frame). */
    chunk?: DocRecord[];
    queue?: PendingChange[];
    ackedUpto?: number;
    meta?: Meta;
    /**
     * Writes that can be lost without harm (bootstrap frames before the
     * last: the cursor has not moved past them) skip the flush to disk.
     */
    relaxed?: boolean;
  }): Promise<void> {
    const tx = this.db.transaction(["docs", "chunks", "pending", "meta"], "readwrite", { durability: w.relaxed ? "relaxed" : "strict" });
    const finished = done(tx);
    const docs = tx.objectStore("docs");
    for (const d of w.docs ?? []) docs.put(toStored(d));
    if (w.chunk && w.chunk.length > 0) tx.objectStore("chunks").add(toChunk(w.chunk));
    const pending = tx.objectStore("pending");
    for (const p of w.queue ?? []) pending.add({ doc: p.doc, bytes: p.bytes });
    if (w.ackedUpto !== undefined) pending.delete(IDBKeyRange.upperBound(w.ackedUpto));
    const meta = tx.objectStore("meta");
    for (const [k, v] of Object.entries(w.meta ?? {})) {
      if (v === undefined) continue;
      meta.put(v, k);
    }
    await finished;
  }

  /** Forgets everything (sign-out with "forget this browser"). */
  async clear(): Promise<void> {
    const stores = ["docs", "chunks", "pending", "meta"];
    const tx = this.db.transaction(stores, "readwrite");
    const finished = done(tx);
    for (const s of stores) tx.objectStore(s).clear();
    await finished;
  }

  close(): void {
    this.db.close();
  }
}
