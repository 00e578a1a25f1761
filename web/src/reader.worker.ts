// A worker that reads bootstrap snapshots: loads each saved document into
// Automerge's backend and materialises its node (doc.ts `readSaved`), off
// the page's thread. The page runs two, so a first load of thousands of
// documents uses both cores while the main thread stores and draws.
import { initAutomerge } from "./automerge.ts";
import { readRecord } from "./readers.ts";
import type { DocRecord } from "./store.ts";

export interface ReadRequest {
  job: number;
  docs: { doc: string; bytes: string }[];
}

export interface ReadAnswer {
  job: number;
  records: DocRecord[];
}

const scope = self as unknown as DedicatedWorkerGlobalScope;
let ready: Promise<void> | undefined;

scope.onmessage = async (ev: MessageEvent<{ wasm: ArrayBuffer } | ReadRequest>) => {
  const data = ev.data;
  if ("wasm" in data) {
    ready = initAutomerge(new Uint8Array(data.wasm));
    return;
  }
  await ready;
  const records: DocRecord[] = data.docs.map(readRecord);
  const answer: ReadAnswer = { job: data.job, records };
  scope.postMessage(answer, records.map((r) => r.bytes.buffer));
};
