// Boot: the service worker, Automerge, the replica from IndexedDB (the list
// shows before any network), then the hub's /config, sign-in and sync.
import wasmUrl from "@automerge/automerge/automerge.wasm";
import { initAutomerge } from "./automerge.ts";
import { Auth, AuthError, type HubConfig } from "./auth.ts";
import { Replica } from "./replica.ts";
import { Readers } from "./readers.ts";
import { SyncClient, type SyncStatus } from "./sync.ts";
import { h, ago } from "./ui.ts";
import { journalView, loginView, nodeView, notesView, searchView, tasksView, type Ctx, type View } from "./views.ts";

declare global {
  interface Window {
    /** For tests and the console: the running app. */
    heph?: { replica: Replica; sync: SyncClient | null; status: () => SyncStatus | null; ready: boolean };
  }
}

const HUB_KEY = "heph.hub";

/** The hub: the page's own origin unless the owner chose another. */
function hubUrl(): string {
  return localStorage.getItem(HUB_KEY) ?? location.origin;
}

function syncUrl(hub: string): string {
  const u = new URL("/sync", hub);
  u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
  return u.toString();
}

async function boot(): Promise<void> {
  const root = document.getElementById("app")!;
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/sw.js").catch((e: unknown) => console.warn("service worker:", e));
  }
  const wasm = await fetch(wasmUrl).then((r) => r.arrayBuffer());
  await initAutomerge(new Uint8Array(wasm));
  const hub = hubUrl();
  const replica = await Replica.open(new URL(hub).host);
  const reader = document.querySelector<HTMLMetaElement>('meta[name="heph-reader"]')?.content;
  if (reader && typeof Worker !== "undefined") {
    try {
      replica.readers = new Readers(reader, wasm);
    } catch (e) {
      console.warn("snapshot readers:", e);
    }
  }

  let status: SyncStatus | null = null;
  let config: HubConfig | null = null;
  let auth: Auth | null = null;
  let sync: SyncClient | null = null;
  let authMessage: string | null = null;

  const live = h("div", { class: "sr-only", role: "status", "aria-live": "polite", style: "position:absolute;left:-9999px" });
  const statusEl = h("div", { class: "status", id: "sync-status", "aria-label": "Sync status" });
  const banner = h("div", { id: "banner" });
  const tabs = h("nav", { class: "tabs", "aria-label": "Views" });
  const main = h("main", { id: "view" });
  root.replaceChildren(h("div", { class: "app" }, h("header", { class: "top" }, h("h1", {}, "heph"), tabs, statusEl), banner, main, live));

  let view: View | null = null;
  const ctx: Ctx = {
    replica,
    get auth() {
      return auth;
    },
    go: (hash) => {
      if (location.hash === hash) route();
      else location.hash = hash;
    },
    say: (text) => {
      live.textContent = text;
    },
  };

  function route(): void {
    view?.destroy?.();
    const [path = "", q = ""] = location.hash.replace(/^#/, "").split("?");
    const query = new URLSearchParams(q);
    const parts = path.split("/").filter(Boolean);
    const where = parts[0] ?? "tasks";
    if (where === "node" && parts[1]) view = nodeView(ctx, parts[1]);
    else if (where === "notes") view = notesView(ctx);
    else if (where === "journal") view = journalView(ctx);
    else if (where === "search") view = searchView(ctx, query);
    else if (where === "login") view = loginView(ctx, authMessage);
    else view = tasksView(ctx, query);
    tabs.replaceChildren(
      ...[["tasks", "Tasks"], ["notes", "Notes"], ["journal", "Journal"], ["search", "Search"]].map(([k, label]) =>
        h("a", { href: `#/${k}`, "aria-current": where === k ? "page" : undefined }, label!),
      ),
    );
    main.replaceChildren(view.el);
  }
  addEventListener("hashchange", route);
  replica.on((ids, settled) => {
    view?.update?.(ids, settled);
    drawStatus();
  });
  window.addEventListener("keydown", (e: KeyboardEvent) => {
    const t = e.target as HTMLElement;
    const typing = t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable;
    if (e.key === "Escape" && typing) return void t.blur();
    if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === "/") {
      e.preventDefault();
      return ctx.go("#/search");
    }
    if (e.key === "g") return ctx.go("#/tasks");
    if (view?.key?.(e)) e.preventDefault();
  });

  function drawStatus(): void {
    const pills: HTMLElement[] = [];
    const s = status;
    const conflicts = replica.conflicted.size;
    const pending = replica.unsent;
    if (!s) pills.push(h("span", { class: "pill" }, "local copy"));
    else if (s.phase === "online") pills.push(h("span", { class: "pill ok", "data-state": "online" }, s.catchingUp ? "⟳ catching up" : `⟳ ${s.lastSync ? ago(s.lastSync) : "now"}`));
    else if (s.phase === "auth") pills.push(h("span", { class: "pill warn", "data-state": "auth" }, "⚠ sign-in needed"));
    else if (s.phase === "offline" || s.phase === "error") pills.push(h("span", { class: "pill warn", "data-state": "offline" }, `⚠ offline${s.lastSync ? ` · synced ${ago(s.lastSync)}` : ""}`));
    else pills.push(h("span", { class: "pill", "data-state": "connecting" }, "connecting…"));
    if (pending > 0) pills.push(h("span", { class: "pill", "data-state": "unsent" }, `${pending} unsent`));
    if (conflicts > 0) pills.push(h("span", { class: "pill warn", "data-state": "conflicts" }, `⚠ ${conflicts} conflict${conflicts === 1 ? "" : "s"}`));
    statusEl.replaceChildren(...pills);
    const lines: HTMLElement[] = [];
    if (s?.phase === "auth") {
      lines.push(h("div", { class: "banner warn" }, h("span", {}, `The hub needs you to sign in (${s.error ?? "no valid token"}). Your edits are kept in this browser and sent once you do.`), h("a", { href: "#/login" }, "Sign in")));
    } else if (s && (s.phase === "offline" || s.phase === "error") && s.error) {
      lines.push(h("div", { class: "banner warn" }, h("span", {}, `Cannot reach the hub (${s.error}). You are working on the copy in this browser; ${pending > 0 ? `${pending} unsent edit${pending === 1 ? " is" : "s are"} kept and will be sent` : "edits will sync"} when it is back.`)));
    }
    banner.replaceChildren(...lines);
  }
  setInterval(drawStatus, 2000);

  route();
  drawStatus();
  window.heph = { replica, sync: null, status: () => status, ready: false };

  // The network, after the local copy is on screen.
  config = await Auth.config(hub);
  if (!config) {
    // The hub cannot be reached now: work locally; try again later.
    status = { phase: "offline", pending: replica.unsent, catchingUp: false, error: "the hub does not answer", lastSync: replica.meta.lastSync };
    drawStatus();
    window.heph.ready = true;
    const retry = setInterval(async () => {
      if (await Auth.config(hub)) {
        clearInterval(retry);
        location.reload();
      }
    }, 5000);
    return;
  }
  auth = new Auth(hub, config);
  try {
    if (await auth.completeLogin()) ctx.go("#/tasks");
  } catch (e) {
    authMessage = e instanceof Error ? e.message : String(e);
    ctx.go("#/login");
  }
  const a = auth;
  sync = new SyncClient(replica, {
    url: syncUrl(hub),
    token: () => a.token(),
    onStatus: (s) => {
      status = s;
      drawStatus();
    },
    onAuthFailed: () => {
      void a.rejected().then(() => {
        if (a.signedIn) sync?.reconnectNow();
      });
    },
  });
  window.heph.sync = sync;
  if (config.auth && !auth.signedIn) {
    status = { phase: "auth", pending: replica.unsent, catchingUp: false, error: "not signed in", lastSync: replica.meta.lastSync };
    drawStatus();
    if (!location.hash.startsWith("#/login")) ctx.go("#/login");
  } else {
    sync.start();
  }
  // Renew the token before it expires and hand it to the open connection.
  setInterval(() => {
    const at = a.renewAt;
    if (at !== undefined && Date.now() >= at) void a.token().then((t) => t && sync?.reauth(t)).catch((e: unknown) => e instanceof AuthError && sync?.reconnectNow());
  }, 10_000);
  window.heph.ready = true;
}

boot().catch((e: unknown) => {
  const root = document.getElementById("app");
  if (root) root.replaceChildren(h("p", { class: "error" }, `heph could not start: ${e instanceof Error ? e.message : String(e)}. Reload the page; your data stays in this browser.`));
  console.error(e);
});
