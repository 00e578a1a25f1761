// What the views list: tasks as `heph ls` lists them (query.ts: the
// engine's filter, urgency and order), and a search over every node.
import { words } from "./grammar.ts";
import type { NodeJson } from "./model.ts";
import { Filter, list } from "./query.ts";
import type { Zone } from "./when.ts";

/**
 * The tasks `heph ls LINE` would list, in its order: Taskwarrior's filter
 * language (`(+work or +home) due.before:eow`, `project.not:home`,
 * `+READY`). Throws query.ts's `FilterError` on a filter the engine refuses.
 */
export function listTasks(nodes: Map<string, NodeJson>, line: string, now: Date, zone: Zone): NodeJson[] {
  const filter = Filter.parse(words(line), now, zone);
  return list(nodes.values(), filter, now).map((l) => l.node);
}

/**
 * The forms a search word may be stored in, as `heph search` seeks them:
 * lower-cased, composed (NFC) and decomposed (NFD). Text synced from another
 * system (macOS file names are decomposed) may be in either.
 */
function searchForms(word: string): string[] {
  const lower = word.toLowerCase();
  const composed = lower.normalize("NFC");
  const decomposed = lower.normalize("NFD");
  return composed === decomposed ? [composed] : [composed, decomposed];
}

/** Nodes matching every word of `q` in the title, body, tags or project, best first. */
export function searchNodes(nodes: Map<string, NodeJson>, q: string): NodeJson[] {
  const words = q.split(/\s+/).filter(Boolean).map(searchForms);
  if (words.length === 0) return [];
  const hits: { n: NodeJson; score: number }[] = [];
  for (const n of nodes.values()) {
    if (n.deleted) continue;
    const title = n.title.toLowerCase();
    const rest = `${n.body}\n${n.tags.join(" ")}\n${n.project ?? ""}`.toLowerCase();
    let score = 0;
    let all = true;
    for (const forms of words) {
      if (forms.some((w) => title.includes(w))) score += 3;
      else if (forms.some((w) => rest.includes(w))) score += 1;
      else {
        all = false;
        break;
      }
    }
    if (all) hits.push({ n, score });
  }
  return hits.sort((a, b) => b.score - a.score || b.n.modified.localeCompare(a.n.modified)).map((x) => x.n);
}

