// The service worker: keeps the app's shell (the page, its hashed assets,
// the Automerge wasm) so the app opens with no network at all; the owner's
// data is in IndexedDB, not here. One cache per build (`__VERSION__`, the
// digest of everything in it): a new build installs beside the old one and
// deletes it once active, so the shell never mixes two builds.
declare const __SHELL__: string[];
declare const __VERSION__: string;

const sw = self as unknown as ServiceWorkerGlobalScope;
const CACHE = `heph-shell-${__VERSION__}`;
/** Paths the hub answers itself; never served from the cache. */
const LIVE = ["/sync", "/rpc", "/config", "/healthz", "/metrics"];

sw.addEventListener("install", (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      await cache.addAll(__SHELL__.map((p) => new Request(p, { cache: "reload" })));
      await sw.skipWaiting();
    })(),
  );
});

sw.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      for (const key of await caches.keys()) if (key.startsWith("heph-shell-") && key !== CACHE) await caches.delete(key);
      await sw.clients.claim();
    })(),
  );
});

sw.addEventListener("fetch", (event) => {
  const req = event.request;
  const url = new URL(req.url);
  if (req.method !== "GET" || url.origin !== location.origin || LIVE.some((p) => url.pathname.startsWith(p))) return;
  if (req.mode === "navigate") {
    // The network first, so a new build shows when online; the cached
    // shell when the hub cannot be reached.
    event.respondWith(
      (async () => {
        try {
          const fresh = await fetch(req);
          if (fresh.ok) return fresh;
          throw new Error(`status ${fresh.status}`);
        } catch {
          const cache = await caches.open(CACHE);
          return (await cache.match("/index.html")) ?? Response.error();
        }
      })(),
    );
    return;
  }
  // Hashed assets never change: the cache first.
  event.respondWith(
    (async () => {
      const cache = await caches.open(CACHE);
      const hit = await cache.match(req);
      return hit ?? fetch(req);
    })(),
  );
});
