// The browser's side of a sync session: the hub's own /sync protocol, the
// same frames, cursors, bootstrap snapshots and acks as a device
// (engine/src/sync/spoke.rs is the reference state machine).
//
//   open -> [auth] -> hello -> welcome -> catch-up (changes | snapshot)
//   pushes: one in flight; each ack drops its changes from `pending`
//   reconciliation (hub replaced, restored, or waiting on history it
//   lacks): have -> need -> pushes of what the hub lacks
//
// Nothing here loses an edit: local changes stay in IndexedDB until the hub
// acknowledges them, and a dropped connection only schedules a retry.
import { AuthUnavailable } from "./auth.ts";
import { toBase64 } from "./bytes.ts";
import type { Replica } from "./replica.ts";
import type { ClientFrame, HubFrame, WireChange } from "./wire.ts";

export const PROTOCOL_VERSION = 3;
/** Bytes one push carries at most (engine `BATCH_BYTES`). */
const BATCH_BYTES = 1024 * 1024;
/** Changes one push carries at most (engine `MAX_PUSH_CHANGES`). */
const MAX_PUSH_CHANGES = 4096;
/** Documents one `have` offers. */
const HAVE_BATCH = 4096;

export type Phase = "connecting" | "online" | "offline" | "auth" | "error";

export interface SyncStatus {
  phase: Phase;
  /** When the hub last confirmed we were in step (ms since the epoch). */
  lastSync?: number;
  /** Local changes the hub has not acknowledged. */
  pending: number;
  /** Why the last session ended, for people. */
  error?: string;
  /** The hub still sends the catch-up. */
  catchingUp: boolean;
}

export interface SyncOptions {
  /** ws:// or wss:// URL of the hub's /sync. */
  url: string;
  /** The bearer token to send first, or null when the hub needs none. */
  token: () => Promise<string | null>;
  onStatus: (s: SyncStatus) => void;
  /** Called when the hub refused the token: a new login is needed. */
  onAuthFailed?: () => void;
}

type InFlight = { batch: number; kind: "local"; upto: number; n: number } | { batch: number; kind: "repair"; n: number };

interface Reconcile {
  offered: number;
  awaitingNeed: boolean;
  queue: WireChange[];
}

export class SyncClient {
  private ws: WebSocket | null = null;
  private stopped = false;
  private retry = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private open = false;
  private inFlight: InFlight | null = null;
  private nextBatch = 1;
  private reconcile: Reconcile | null = null;
  private head = 0;
  status: SyncStatus;

  constructor(private readonly replica: Replica, private readonly opts: SyncOptions) {
    this.status = { phase: "connecting", pending: 0, catchingUp: false, lastSync: replica.meta.lastSync };
    replica.localWrites = () => void this.pump();
    addEventListener("online", () => this.reconnectNow());
    // The browser knows the network is gone before the socket does.
    addEventListener("offline", () => this.ws?.close(1000, "offline"));
  }

  start(): void {
    this.stopped = false;
    void this.refreshPending();
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.ws?.close(1000, "stopped");
  }

  /** Reconnects at once (the network came back, or a new token). */
  reconnectNow(): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.retry = 0;
    if (this.ws && this.ws.readyState <= WebSocket.OPEN) this.ws.close(1000, "reconnect");
    else this.connect();
  }

  /** Hands a renewed token to the open connection (the hub extends it). */
  reauth(token: string): void {
    if (this.ws && this.open) this.send(this.ws, { type: "auth", token });
  }

  private set(patch: Partial<SyncStatus>): void {
    this.status = { ...this.status, ...patch };
    this.opts.onStatus(this.status);
  }

  private async refreshPending(): Promise<void> {
    this.set({ pending: this.replica.unsent });
  }

  private connect(): void {
    if (this.stopped) return;
    this.set({ phase: this.status.phase === "offline" ? "offline" : "connecting" });
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.opts.url);
    } catch (e) {
      this.closed(`cannot reach the hub: ${String(e)}`, 1006);
      return;
    }
    this.ws = ws;
    this.open = false;
    this.inFlight = null;
    this.reconcile = null;
    ws.onopen = () => void this.hello(ws);
    ws.onmessage = (ev) => void this.receive(ws, String(ev.data));
    ws.onclose = (ev) => {
      if (this.ws === ws) this.closed(ev.reason || "the connection to the hub dropped", ev.code);
    };
  }

  private send(ws: WebSocket, frame: ClientFrame): void {
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(frame));
  }

  private async hello(ws: WebSocket): Promise<void> {
    try {
      const token = await this.opts.token();
      if (token) this.send(ws, { type: "auth", token });
    } catch (e) {
      if (e instanceof AuthUnavailable) {
        // The provider is out of reach, not refusing: retry as after a drop.
        ws.close(1000, "the sign-in provider cannot be reached");
        return;
      }
      // No usable token: the page asks for a login; retry after it.
      this.ws = null;
      ws.close(1000, "no token");
      this.set({ phase: "auth", error: String(e instanceof Error ? e.message : e) });
      this.opts.onAuthFailed?.();
      return;
    }
    const m = this.replica.meta;
    const cursor = m.cursor ?? 0;
    this.send(ws, {
      type: "hello",
      version: PROTOCOL_VERSION,
      origin: this.replica.device,
      cursor,
      bootstrap: cursor === 0,
      // The hub's reading of each document comes with it: the list shows
      // without reading thousands of documents first.
      views: cursor === 0,
      known: m.known ?? null,
    });
  }

  private closed(reason: string, code: number): void {
    this.ws = null;
    this.open = false;
    this.inFlight = null;
    if (this.stopped) return;
    if (code === 4401 || code === 4403) {
      this.set({ phase: "auth", error: reason || "the hub refused the sign-in", catchingUp: false });
      this.opts.onAuthFailed?.();
      // Retried when a new token arrives (reconnectNow), and slowly meanwhile.
      this.schedule(60_000);
      return;
    }
    const offline = typeof navigator !== "undefined" && navigator.onLine === false;
    this.set({ phase: offline ? "offline" : "error", error: offline ? "offline" : reason, catchingUp: false });
    const delay = Math.min(30_000, 500 * 2 ** this.retry) * (0.75 + Math.random() / 2);
    this.retry = Math.min(this.retry + 1, 10);
    this.schedule(delay);
  }

  private schedule(ms: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), ms);
  }

  private async receive(ws: WebSocket, text: string): Promise<void> {
    let frame: HubFrame;
    try {
      frame = JSON.parse(text) as HubFrame;
    } catch {
      ws.close(1002, "bad frame");
      return;
    }
    try {
      await this.handle(ws, frame);
    } catch (e) {
      console.error("sync:", e);
      this.set({ error: String(e instanceof Error ? e.message : e) });
      ws.close(1011, "client error");
    }
  }

  private async handle(ws: WebSocket, frame: HubFrame): Promise<void> {
    switch (frame.type) {
      case "welcome": {
        if (frame.version < 2 || frame.version > PROTOCOL_VERSION) {
          throw new Error(`the hub speaks protocol ${frame.version}; this app speaks 2 to ${PROTOCOL_VERSION}`);
        }
        const m = this.replica.meta;
        const replaced = m.hub !== undefined && m.hub !== frame.hub;
        if (replaced || frame.diverged) {
          // Another log, or an older copy of this one: start the cursor
          // over and give the hub whatever it lacks of ours.
          await this.replica.setMeta({ hub: frame.hub, cursor: 0, known: null, reconcile: true });
          if (replaced && (m.cursor ?? 0) !== 0 && !frame.diverged) {
            // Our hello carried a cursor into another hub's log: start again.
            ws.close(1000, "hub changed");
            return;
          }
        } else if (m.hub === undefined) {
          await this.replica.setMeta({ hub: frame.hub });
        }
        this.head = frame.head;
        this.open = true;
        this.retry = 0;
        const caughtUp = (this.replica.meta.cursor ?? 0) >= this.head;
        this.set({ phase: "online", error: undefined, catchingUp: !caughtUp, lastSync: caughtUp ? Date.now() : this.status.lastSync });
        if (this.replica.meta.reconcile) this.reconcile = { offered: 0, awaitingNeed: false, queue: [] };
        await this.pump();
        return;
      }
      case "changes": {
        const seqs = frame.changes.map((c) => c.seq ?? 0);
        const upto = Math.max(0, ...seqs);
        const known = frame.position ? { seq: upto, hash: frame.position } : null;
        await this.replica.receiveChanges(frame.changes, Math.max(upto, this.replica.meta.cursor ?? 0), known);
        this.caughtUp();
        return;
      }
      case "snapshot": {
        const done = frame.more ? null : frame.upto;
        const known = done !== null && frame.hash ? { seq: done, hash: frame.hash } : null;
        await this.replica.receiveSnapshot(frame.docs, done, known);
        this.caughtUp();
        return;
      }
      case "ack": {
        const flight = this.inFlight;
        if (!flight || flight.batch !== frame.batch || frame.seqs.length !== flight.n) {
          throw new Error(`the hub acknowledged batch ${frame.batch}, which is not in flight`);
        }
        this.inFlight = null;
        const top = Math.max(0, ...frame.seqs);
        const known = top > 0 && frame.position ? { seq: top, hash: frame.position } : null;
        // A repair's position counts too: once the reconciliation ends
        // those changes count as sent, and only the position lets the next
        // hello show a hub that lost them again (restored once more).
        if (flight.kind === "local") await this.replica.acknowledge(flight.upto, known);
        else if (known) await this.replica.acknowledge(0, known);
        if ((frame.waiting ?? []).length > 0 && !this.reconcile) {
          // The hub keeps changes it cannot apply: it lacks history we hold.
          await this.replica.setMeta({ reconcile: true });
          this.reconcile = { offered: 0, awaitingNeed: false, queue: [] };
        }
        await this.refreshPending();
        this.set({ lastSync: Date.now() });
        await this.pump();
        return;
      }
      case "need": {
        const r = this.reconcile;
        if (!r) return;
        r.awaitingNeed = false;
        for (const d of frame.docs) {
          for (const bytes of this.replica.changesSince(d.doc, d.heads)) {
            r.queue.push({ doc: d.doc, bytes: toBase64(bytes) });
          }
        }
        await this.pump();
        return;
      }
      case "error": {
        this.set({ error: `${frame.code}: ${frame.message}` });
        if (frame.code === "unauthorized" || frame.code === "forbidden") {
          if (frame.close) this.set({ phase: "auth" });
        }
        return;
      }
    }
  }

  private caughtUp(): void {
    const cursor = this.replica.meta.cursor ?? 0;
    if (cursor >= this.head) this.set({ catchingUp: false, lastSync: Date.now() });
  }

  /** Sends what is due: a `have`, a repair push, or the next local push. */
  private async pump(): Promise<void> {
    const ws = this.ws;
    await this.refreshPending();
    if (!ws || !this.open) return;
    const r = this.reconcile;
    if (r) {
      const all = this.replica.heads();
      if (!r.awaitingNeed && r.queue.length === 0 && r.offered < all.length) {
        const docs = all.slice(r.offered, r.offered + HAVE_BATCH);
        r.offered += docs.length;
        r.awaitingNeed = true;
        this.send(ws, { type: "have", docs });
      }
      if (!this.inFlight && r.queue.length > 0) {
        const changes = r.queue.splice(0, fitting(r.queue, (c) => c.bytes.length));
        const batch = this.nextBatch++;
        this.inFlight = { batch, kind: "repair", n: changes.length };
        this.send(ws, { type: "push", batch, changes });
      }
      if (!r.awaitingNeed && r.queue.length === 0 && r.offered >= all.length && !this.inFlight) {
        this.reconcile = null;
        await this.replica.setMeta({ reconcile: false });
      } else {
        return;
      }
    }
    if (this.inFlight) return;
    const pending = await this.replica.pending(MAX_PUSH_CHANGES);
    if (pending.length === 0 || this.ws !== ws || this.inFlight) return;
    const sent = pending.slice(0, fitting(pending, (p) => Math.ceil(p.bytes.length / 3) * 4));
    const changes: WireChange[] = sent.map((p) => ({ doc: p.doc, bytes: toBase64(p.bytes) }));
    const upto = sent.at(-1)?.seq ?? 0;
    const batch = this.nextBatch++;
    this.inFlight = { batch, kind: "local", upto, n: changes.length };
    this.send(ws, { type: "push", batch, changes });
  }
}

/**
 * How many of the first `items` one push carries: always one, then as many
 * as fit in BATCH_BYTES and MAX_PUSH_CHANGES. `base64` is an item's size on
 * the wire.
 */
function fitting<T>(items: readonly T[], base64: (item: T) => number): number {
  let size = 0;
  let n = 0;
  for (const item of items) {
    const add = base64(item) + 64;
    if (n > 0 && (size + add > BATCH_BYTES || n >= MAX_PUSH_CHANGES)) break;
    size += add;
    n++;
  }
  return n;
}
