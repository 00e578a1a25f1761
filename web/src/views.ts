// The views: tasks (quick add, filter, done in one tap), a node's detail
// (every field editable, conflicts on the field they belong to), notes,
// today's journal, search, and sign-in. Each view renders once and then
// patches itself when its nodes change, so typing is never interrupted.
import type { Edit, NodeJson, Priority, Status } from "./model.ts";
import type { Replica } from "./replica.ts";
import { h, ago, localDay } from "./ui.ts";
import { listTasks, searchNodes } from "./listing.ts";
import { asShown, typedOver } from "./textarea.ts";
import { quickAdd, ModError, udasInUse } from "./grammar.ts";
import { type Zone, browserZone, display, parseWhen, relative } from "./when.ts";
import type { Auth } from "./auth.ts";

export interface Ctx {
  replica: Replica;
  auth: Auth | null;
  go(hash: string): void;
  /** The live region for short confirmations ("Added …"). */
  say(text: string): void;
}

export interface View {
  el: HTMLElement;
  /**
   * Nodes changed (locally or from the hub); `settled` when they end a run
   * of writes (a bootstrap's last frame): draw now, unthrottled.
   */
  update?(ids: Set<string>, settled: boolean): void;
  /** Keyboard shortcut handler; true when handled. */
  key?(e: KeyboardEvent): boolean;
  destroy?(): void;
}

/** The browser's zone: each date with the offset in force on it. */
const offset = (): Zone => browserZone;
const short = (id: string): string => id.slice(0, 8);

/** A row's due date as `heph ls` shows it: relative, red when past. */
function dueText(iso: string | undefined, now: number): { text: string; over: boolean; title: string } | null {
  if (!iso) return null;
  const t = new Date(iso);
  return { text: `due ${relative(t, new Date(now))}`, over: t.getTime() < now, title: display(t, offset()) };
}

// --- tasks ------------------------------------------------------------------

export function tasksView(ctx: Ctx, query: URLSearchParams): View {
  const PAGE = 200;
  let shown = PAGE;
  let selected = 0;
  let rows: NodeJson[] = [];
  const filterWords = query.get("f") ?? "";
  const error = h("p", { class: "error", role: "alert" });
  const input = h("input", {
    id: "quick-add",
    name: "quick",
    autocomplete: "off",
    placeholder: "Add a task: Call Ana due:fri +work pri:H",
    "aria-label": "Quick add",
  });
  const form = h(
    "form",
    { class: "quick", onsubmit: (e: Event) => void add(e) },
    input,
    h("button", { class: "primary", type: "submit" }, "Add"),
  );
  const filter = h("input", {
    id: "filter",
    value: filterWords,
    placeholder: "Filter: (+work or +home) due.before:eow project.not:home",
    "aria-label": "Filter",
  });
  filter.addEventListener("change", () => ctx.go(`#/tasks${filter.value.trim() ? `?f=${encodeURIComponent(filter.value.trim())}` : ""}`));
  const count = h("span", { class: "count" });
  const list = h("ul", { class: "list", id: "task-list", role: "list" });
  const more = h("button", { class: "more", type: "button", onclick: () => ((shown += PAGE * 5), draw()) }, "Show more");
  const el = h("section", { "aria-label": "Tasks" }, form, error, h("div", { class: "filters" }, filter, count), list, more);

  async function add(e: Event): Promise<void> {
    e.preventDefault();
    error.textContent = "";
    const line = input.value.trim();
    if (!line) return;
    try {
      const parsed = quickAdd(line, new Date(), offset(), udasInUse(ctx.replica.nodes.values()));
      if (!parsed.title) throw new ModError("a task needs a title: Buy milk due:tomorrow +errand");
      const edits: Edit[] = [...parsed.edits];
      for (const [adds, prefix] of parsed.depends) edits.push({ edit: adds ? "depend" : "undepend", value: resolvePrefix(ctx.replica, prefix) });
      const node = await ctx.replica.create("task", parsed.title, edits, `add ${line}`);
      input.value = "";
      ctx.say(`Added “${node?.title ?? parsed.title}”`);
    } catch (err) {
      error.textContent = err instanceof Error ? err.message : String(err);
    }
  }

  function draw(): void {
    const now = Date.now();
    try {
      rows = listTasks(ctx.replica.nodes, filterWords, new Date(now), offset());
      error.textContent = error.textContent?.startsWith("filter:") ? "" : error.textContent;
    } catch (err) {
      rows = [];
      error.textContent = `filter: ${err instanceof Error ? err.message : String(err)}`;
    }
    count.textContent = `${rows.length} task${rows.length === 1 ? "" : "s"}`;
    list.replaceChildren(...rows.slice(0, shown).map((n, i) => taskRow(ctx, n, now, i === selected)));
    if (rows.length === 0) list.append(h("li", { class: "empty" }, filterWords ? "No task matches this filter." : "Nothing to do. Add a task above."));
    more.hidden = rows.length <= shown;
  }
  draw();

  function move(by: number): void {
    selected = Math.max(0, Math.min(rows.length - 1, selected + by));
    draw();
    list.children[selected]?.scrollIntoView({ block: "nearest" });
  }

  // Redraws are coalesced: at most one per animation frame, and while
  // thousands of nodes arrive (a bootstrap) at most one per 300 ms; the
  // end of such a run is drawn at once.
  let lastDraw = 0;
  let scheduled = false;
  function redraw(now = false): void {
    if (scheduled && !now) return;
    scheduled = true;
    const wait = now ? 0 : Math.max(0, lastDraw + 300 - performance.now());
    const run = () =>
      requestAnimationFrame(() => {
        scheduled = false;
        lastDraw = performance.now();
        draw();
      });
    if (wait > 0 && busy) setTimeout(run, wait);
    else run();
  }
  /** Many changes in a short time: throttle. */
  let busy = false;
  let recent = 0;
  const pace = setInterval(() => {
    busy = recent > 200;
    recent = 0;
  }, 500);

  return {
    el,
    update: (ids, settled) => {
      recent += ids.size;
      if (ids.size > 200) busy = true;
      redraw(settled);
    },
    destroy: () => clearInterval(pace),
    key(e) {
      if (e.key === "j" || e.key === "ArrowDown") return move(1), true;
      if (e.key === "k" || e.key === "ArrowUp") return move(-1), true;
      const node = rows[selected];
      if (e.key === "Enter" && node) return ctx.go(`#/node/${node.id}`), true;
      if (e.key === "x" && node) return void done(ctx, node), true;
      if (e.key === "a" || e.key === "n") return input.focus(), true;
      if (e.key === "f") return filter.focus(), true;
      return false;
    },
  };
}

function resolvePrefix(replica: Replica, prefix: string): string {
  const p = prefix.toLowerCase();
  const hits = [...replica.nodes.keys()].filter((id) => id.startsWith(p));
  if (hits.length === 1) return hits[0]!;
  throw new ModError(hits.length === 0 ? `no node starts with ${prefix}` : `${prefix} matches ${hits.length} nodes: type more of the id`);
}

async function done(ctx: Ctx, node: NodeJson): Promise<void> {
  const next: Status = node.status === "done" ? "pending" : "done";
  await ctx.replica.edit(node.id, [{ edit: "status", value: next }], next === "done" ? "done" : "modify status:pending");
  ctx.say(next === "done" ? `Done: “${node.title}”` : `Reopened “${node.title}”`);
}

function taskRow(ctx: Ctx, n: NodeJson, now: number, sel: boolean): HTMLLIElement {
  const due = dueText(n.due, now);
  const conflicts = ctx.replica.conflicted.get(n.id);
  const isDone = n.status === "done";
  return h(
    "li",
    {
      class: `row${isDone ? " done" : ""}${sel ? " sel" : ""}`,
      tabindex: 0,
      "data-id": n.id,
      onclick: (e: Event) => {
        if ((e.target as HTMLElement).tagName !== "INPUT") ctx.go(`#/node/${n.id}`);
      },
      onkeydown: (e: Event) => {
        if ((e as KeyboardEvent).key === "Enter" && (e.target as HTMLElement).tagName === "LI") ctx.go(`#/node/${n.id}`);
      },
    },
    h("input", {
      type: "checkbox",
      class: "done",
      checked: isDone,
      "aria-label": `Done: ${n.title}`,
      onchange: () => void done(ctx, n),
    }),
    h("span", { class: "title" }, n.status === "active" ? "▶ " : "", n.title),
    h(
      "span",
      { class: "meta" },
      conflicts ? h("span", { class: "tag", title: `conflicting values: ${conflicts.join(", ")}` }, "⚠") : null,
      n.priority ? h("span", {}, `pri:${n.priority}`) : null,
      n.project ? h("span", {}, n.project) : null,
      n.tags.map((t) => h("span", { class: "tag" }, `+${t}`)),
      due ? h("span", { class: `due${due.over ? " over" : ""}`, title: due.title }, due.text) : null,
    ),
  );
}

// --- a node -----------------------------------------------------------------

const TASK_STATUSES: Status[] = ["pending", "active", "waiting", "done", "cancelled"];

export function nodeView(ctx: Ctx, id: string): View {
  const r = ctx.replica;
  const el = h("section", { class: "detail", "aria-label": "Node" });
  let bodyTimer: ReturnType<typeof setTimeout> | undefined;
  let body: HTMLTextAreaElement | null = null;

  /** The document's heads when the textarea last showed its body. */
  let bodyHeads: string[] = [];
  /** The body the textarea was last given (its value has LF line ends only). */
  let bodyShown = "";

  async function commit(edits: Edit[], message: string, at?: string[]): Promise<void> {
    try {
      await r.edit(id, edits, message, new Date(), at);
    } catch (err) {
      ctx.say(`Not saved: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** Shows the document's body in the textarea (caret kept), from now on the base of typing. */
  function showBody(): void {
    const n = r.nodes.get(id);
    if (!body || !n) return;
    bodyHeads = r.headsOf(id);
    bodyShown = n.body;
    if (body.value === asShown(n.body)) return;
    const focused = document.activeElement === body;
    const at = body.selectionStart;
    body.value = n.body;
    if (focused) body.setSelectionRange(at, at);
  }

  /**
   * Saves what was typed, as a diff from the text it was typed over (so
   * text that arrived from elsewhere meanwhile stays), then shows the merge.
   */
  async function flushBody(): Promise<void> {
    clearTimeout(bodyTimer);
    bodyTimer = undefined;
    if (!body) return;
    const typed = body.value;
    const n = r.nodes.get(id);
    const value = typedOver(bodyShown, typed);
    if (n && value !== bodyShown) await commit([{ edit: "body", value }], "edit body", bodyHeads);
    // More typing while saving: that text is saved next time.
    if (body.value === typed && bodyTimer === undefined) showBody();
  }

  function conflictFor(field: string): HTMLElement | null {
    const c = r.conflictsOf(id).find((x) => x.field === field);
    if (!c) return null;
    return h(
      "div",
      { class: "conflict", "data-conflict": field },
      h("b", {}, "⚠ conflict"),
      h("span", {}, "keep:"),
      c.values.map((v) =>
        h("button", { type: "button", onclick: () => void r.resolve(id, field, v).then(() => ctx.say(`Kept ${field}: ${v}`)) }, v.length > 40 ? `${v.slice(0, 40)}…` : v || "(empty)"),
      ),
    );
  }

  function field(label: string, name: string, control: HTMLElement): HTMLElement {
    return h("div", { class: "field" }, h("label", { for: `f-${name}` }, label), control, conflictFor(name));
  }

  function text(name: string, value: string, onset: (v: string) => void, placeholder = ""): HTMLInputElement {
    const input = h("input", { type: "text", id: `f-${name}`, name, value, placeholder });
    input.addEventListener("change", () => onset(input.value.trim()));
    return input;
  }

  function draw(): void {
    const n = r.nodes.get(id);
    if (!n) {
      el.replaceChildren(h("p", { class: "empty" }, "This node is not on this device (yet). It appears here once it syncs."), h("a", { href: "#/tasks" }, "Back to tasks"));
      return;
    }
    const isTask = n.kind === "task";
    const status = h("select", { id: "f-status", name: "status" }, TASK_STATUSES.map((s) => h("option", { value: s, selected: n.status === s }, s)));
    status.addEventListener("change", () => void commit([{ edit: "status", value: status.value as Status }], `modify status:${status.value}`));
    const priority = h("select", { id: "f-priority", name: "priority" }, h("option", { value: "" }, "none"), (["H", "M", "L"] as Priority[]).map((p) => h("option", { value: p, selected: n.priority === p }, p)));
    priority.addEventListener("change", () => void commit([{ edit: "priority", value: (priority.value || null) as Priority | null }], `modify pri:${priority.value}`));
    const dueError = h("span", { class: "error" });
    const dateField = (name: "due" | "wait" | "scheduled", label: string) =>
      field(
        label,
        name,
        text(name, n[name] ? display(new Date(n[name]!), offset()) : "", (v) => {
          dueError.textContent = "";
          try {
            const value = v ? parseWhen(v, new Date(), offset()).toISOString() : null;
            void commit([{ edit: name, value }], `modify ${name}:${v}`);
          } catch (err) {
            dueError.textContent = `${name}: ${err instanceof Error ? err.message : String(err)}`;
          }
        }, "fri, tomorrow, 2026-12-24, eom"),
      );
    body = h("textarea", { id: "f-body", name: "body", spellcheck: true, placeholder: "Markdown" });
    body.value = n.body;
    bodyHeads = r.headsOf(id);
    bodyShown = n.body;
    body.addEventListener("input", () => {
      clearTimeout(bodyTimer);
      bodyTimer = setTimeout(() => void flushBody(), 400);
    });
    body.addEventListener("blur", () => void flushBody());
    const tags = text("tags", n.tags.map((t) => `+${t}`).join(" "), (v) => {
      const want = new Set(v.split(/\s+/).map((t) => t.replace(/^\+/, "")).filter(Boolean));
      const edits: Edit[] = [];
      for (const t of want) if (!n.tags.includes(t)) edits.push({ edit: "add_tag", value: t });
      for (const t of n.tags) if (!want.has(t)) edits.push({ edit: "remove_tag", value: t });
      if (edits.length) void commit(edits, `modify tags`);
    }, "+work +home");
    const annotation = h("input", { type: "text", id: "f-annotate", placeholder: "Add an annotation and press Enter" });
    annotation.addEventListener("keydown", (e) => {
      if (e.key !== "Enter" || !annotation.value.trim()) return;
      void commit([{ edit: "annotate", value: { entry: new Date().toISOString(), description: annotation.value.trim() } }], `annotate ${annotation.value.trim()}`);
      annotation.value = "";
    });
    const link = h("input", { type: "text", id: "f-link", placeholder: "Link to: id prefix, then Enter" });
    const linkError = h("span", { class: "error" });
    link.addEventListener("keydown", (e) => {
      if (e.key !== "Enter" || !link.value.trim()) return;
      try {
        const to = resolvePrefix(r, link.value.trim());
        void commit([{ edit: "link", value: to }], `link ${short(to)}`);
        link.value = "";
        linkError.textContent = "";
      } catch (err) {
        linkError.textContent = err instanceof Error ? err.message : String(err);
      }
    });
    const nodeLink = (to: string) => {
      const other = r.nodes.get(to);
      return h("li", {}, h("a", { href: `#/node/${to}` }, other?.title ?? short(to)), " ", h("span", { class: "small" }, other?.kind ?? "not here yet"));
    };
    el.replaceChildren(
      ...[
      h("div", { class: "row-actions" }, h("a", { href: n.kind === "task" ? "#/tasks" : n.kind === "note" ? "#/notes" : "#/journal" }, "← back"), h("span", { class: "small" }, `${n.kind} ${short(n.id)} · changed ${ago(Date.parse(n.modified))}`)),
      field("Title", "title", text("title", n.title, (v) => v && v !== n.title && void commit([{ edit: "title", value: v }], `modify ${v}`))),
      isTask
        ? h(
            "div",
            { class: "grid" },
            field("Status", "status", status),
            field("Priority", "priority", priority),
            field("Project", "project", text("project", n.project ?? "", (v) => void commit([{ edit: "project", value: v || null }], `modify project:${v}`), "home.garden")),
            dateField("due", "Due"),
            dateField("scheduled", "Scheduled"),
            dateField("wait", "Wait"),
          )
        : null,
      dueError,
      field("Tags", "tags", tags),
      field("Body", "body", body),
      h("div", { class: "field" }, h("label", {}, "Annotations"), h("ul", { class: "annotations" }, (n.annotations ?? []).map((a) => h("li", {}, h("span", { class: "small" }, new Date(a.entry).toLocaleString()), " ", a.description))), annotation),
      h(
        "div",
        { class: "field" },
        h("label", {}, "Links"),
        h("ul", { class: "links" }, n.links.map(nodeLink)),
        link,
        linkError,
        h("label", {}, "Backlinks"),
        h("ul", { class: "links", id: "backlinks" }, r.backlinks(id).map((b) => nodeLink(b.id))),
      ),
      h(
        "div",
        { class: "row-actions" },
        isTask && n.status !== "done" ? h("button", { class: "primary", type: "button", onclick: () => void done(ctx, n) }, "Done") : null,
        h("button", { type: "button", onclick: () => void commit([{ edit: "deleted", value: !n.deleted }], n.deleted ? "restore" : "delete") }, n.deleted ? "Restore" : "Delete"),
      ),
      ].filter((x): x is HTMLElement => x !== null),
    );
  }
  draw();

  return {
    el,
    update(ids) {
      if (!ids.has(id)) return;
      const n = r.nodes.get(id);
      const active = document.activeElement;
      if (!n) return draw();
      const typing = bodyTimer !== undefined;
      if (body && active === body) {
        // Someone else edited while we type: what we typed is saved against
        // the text we typed over (flushBody), then the merge shows.
        if (!typing) showBody();
        return;
      }
      if (typing) return;
      if ((active instanceof HTMLInputElement || active instanceof HTMLSelectElement) && el.contains(active) && active.id) {
        // Redraw (new values, conflict markers) but keep the field being
        // typed in as it is, focused, with its caret.
        const { id: focused, value } = active;
        const caret: [number | null, number | null] | null = active instanceof HTMLInputElement ? [active.selectionStart, active.selectionEnd] : null;
        draw();
        const again = document.getElementById(focused);
        if (again instanceof HTMLInputElement || again instanceof HTMLSelectElement) {
          again.value = value;
          again.focus();
          if (caret && again instanceof HTMLInputElement && again.type === "text") again.setSelectionRange(caret[0], caret[1]);
        }
        return;
      }
      draw();
    },
    key(e) {
      if (e.key === "Escape") return history.back(), true;
      if (e.key === "x") {
        const n = r.nodes.get(id);
        if (n?.kind === "task") return void done(ctx, n), true;
      }
      if (e.key === "e") return document.getElementById("f-body")?.focus(), true;
      return false;
    },
    destroy: () => void flushBody(),
  };
}

// --- notes, journal, search --------------------------------------------------

export function notesView(ctx: Ctx): View {
  const list = h("ul", { class: "list", id: "note-list" });
  const title = h("input", { id: "note-title", placeholder: "New note title", "aria-label": "New note title" });
  const form = h(
    "form",
    {
      class: "quick",
      onsubmit: async (e: Event) => {
        e.preventDefault();
        const t = title.value.trim();
        if (!t) return;
        const node = await ctx.replica.create("note", t, [], `note ${t}`);
        title.value = "";
        if (node) ctx.go(`#/node/${node.id}`);
      },
    },
    title,
    h("button", { class: "primary", type: "submit" }, "New note"),
  );
  function draw(): void {
    const notes = [...ctx.replica.nodes.values()].filter((n) => n.kind === "note" && !n.deleted).sort((a, b) => b.modified.localeCompare(a.modified));
    list.replaceChildren(
      ...notes.slice(0, 500).map((n) => h("li", { class: "row", tabindex: 0, onclick: () => ctx.go(`#/node/${n.id}`) }, h("span", { class: "title" }, n.title), h("span", { class: "meta" }, n.tags.map((t) => h("span", { class: "tag" }, `+${t}`)), ago(Date.parse(n.modified))))),
    );
    if (notes.length === 0) list.append(h("li", { class: "empty" }, "No notes yet."));
  }
  draw();
  return { el: h("section", { "aria-label": "Notes" }, form, list), update: () => draw() };
}

export function journalView(ctx: Ctx): View {
  const el = h("section", { "aria-label": "Journal" }, h("p", { class: "boot" }, "Opening today's journal…"));
  let inner: View | null = null;
  const day = localDay();
  void ctx.replica.journal(day).then((node) => {
    if (!node) return;
    inner = nodeView(ctx, node.id);
    const days = [...ctx.replica.nodes.values()].filter((n) => n.kind === "journal" && n.id !== node.id).sort((a, b) => (b.date ?? "").localeCompare(a.date ?? "")).slice(0, 30);
    el.replaceChildren(h("h2", {}, `Journal · ${day}`), inner.el, h("h3", {}, "Earlier days"), h("ul", { class: "list" }, days.map((d) => h("li", { class: "row", onclick: () => ctx.go(`#/node/${d.id}`) }, h("span", { class: "title" }, d.title)))));
  });
  return { el, update: (ids, settled) => inner?.update?.(ids, settled), key: (e) => inner?.key?.(e) ?? false, destroy: () => inner?.destroy?.() };
}

export function searchView(ctx: Ctx, query: URLSearchParams): View {
  const input = h("input", { id: "search", type: "search", value: query.get("q") ?? "", placeholder: "Search titles, bodies, tags", "aria-label": "Search" });
  const list = h("ul", { class: "list", id: "search-results" });
  function draw(): void {
    const q = input.value.trim();
    const hits = q ? searchNodes(ctx.replica.nodes, q).slice(0, 200) : [];
    list.replaceChildren(...hits.map((n) => h("li", { class: "row", tabindex: 0, onclick: () => ctx.go(`#/node/${n.id}`) }, h("span", { class: "title" }, n.title), h("span", { class: "meta" }, n.kind))));
    if (q && hits.length === 0) list.append(h("li", { class: "empty" }, "No matches."));
  }
  input.addEventListener("input", () => {
    history.replaceState(null, "", `#/search?q=${encodeURIComponent(input.value)}`);
    draw();
  });
  draw();
  setTimeout(() => input.focus());
  return { el: h("section", { "aria-label": "Search" }, h("div", { class: "filters" }, input), list), update: () => draw() };
}

export function loginView(ctx: Ctx, message: string | null): View {
  const auth = ctx.auth;
  const token = h("input", { id: "manual-token", type: "password", autocomplete: "off", placeholder: "Paste a bearer token", "aria-label": "Bearer token" });
  const err = h("p", { class: "error", role: "alert" }, message ?? "");
  const el = h(
    "section",
    { class: "login", "aria-label": "Sign in" },
    h("h2", {}, "Sign in to sync"),
    h("p", { class: "small" }, "Your tasks and notes stay in this browser and keep working while you are signed out; signing in lets them sync with the hub."),
    auth?.canLogin ? h("button", { class: "primary", id: "login", type: "button", onclick: () => void auth.login().catch((e: unknown) => (err.textContent = String(e instanceof Error ? e.message : e))) }, "Sign in") : h("p", {}, "This hub names no sign-in provider; paste a token instead."),
    h("details", {}, h("summary", {}, "Use a token instead"), h("form", { class: "quick", onsubmit: (e: Event) => { e.preventDefault(); if (token.value.trim() && auth) { auth.setManual(token.value); ctx.go("#/tasks"); location.reload(); } } }, token, h("button", { type: "submit" }, "Use token"))),
    err,
    h("a", { href: "#/tasks" }, "Continue with the copy in this browser"),
  );
  return { el };
}
