// A small pool of snapshot readers (reader.worker.ts), one per core up to
// two; without workers (or if they fail to start) the page reads itself.
import type { ReadAnswer, ReadRequest } from "./reader.worker.ts";
import { fromBase64 } from "./bytes.ts";
import { readSaved } from "./doc.ts";
import type { NodeJson } from "./model.ts";
import type { DocRecord } from "./store.ts";
import type { WireDoc } from "./wire.ts";

/** The record of a saved document as a snapshot frame carries it (base64). */
export function readRecord(doc: { doc: string; bytes: string }): DocRecord {
  const bytes = fromBase64(doc.bytes);
  const read = readSaved(bytes, doc.doc);
  return { id: doc.doc, bytes, heads: read.heads, node: read.node, conflicts: read.conflicts };
}

/**
 * The record of a snapshot frame's document as the hub read it (the
 * engine's reading of exactly these bytes: `WireDoc.view`), or null when
 * the hub sent none and the page reads the document itself.
 */
export function viewedRecord(doc: WireDoc): DocRecord | null {
  const view = doc.view;
  if (!view) return null;
  // The engine's serde form of a node, which always writes the fields the
  // schema marks optional for reading (body, tags, links, deleted).
  const node = view.node as unknown as NodeJson;
  return { id: doc.doc, bytes: fromBase64(doc.bytes), heads: view.heads, node, conflicts: view.conflicts };
}

type Pending = { resolve: (r: DocRecord[]) => void; reject: (e: unknown) => void };

export class Readers {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, Pending>();
  private next = 1;

  constructor(url: string, wasm: ArrayBuffer, size = Math.min(2, Math.max(1, navigator.hardwareConcurrency || 1))) {
    for (let i = 0; i < size; i++) {
      const w = new Worker(url, { type: "module", name: `heph-reader-${i}` });
      w.onmessage = (ev: MessageEvent<ReadAnswer>) => {
        const p = this.pending.get(ev.data.job);
        this.pending.delete(ev.data.job);
        p?.resolve(ev.data.records);
      };
      w.onerror = (ev) => {
        for (const p of this.pending.values()) p.reject(new Error(`snapshot reader failed: ${ev.message}`));
        this.pending.clear();
      };
      w.postMessage({ wasm: wasm.slice(0) });
      this.workers.push(w);
    }
  }

  /** Reads `docs` split across the workers; records come back in order. */
  async read(docs: { doc: string; bytes: string }[]): Promise<DocRecord[]> {
    const n = this.workers.length;
    const per = Math.ceil(docs.length / n);
    const parts = await Promise.all(
      this.workers.map((w, i) => {
        const slice = docs.slice(i * per, (i + 1) * per);
        if (slice.length === 0) return Promise.resolve([] as DocRecord[]);
        const job = this.next++;
        return new Promise<DocRecord[]>((resolve, reject) => {
          this.pending.set(job, { resolve, reject });
          const req: ReadRequest = { job, docs: slice };
          w.postMessage(req);
        });
      }),
    );
    return parts.flat();
  }
}
