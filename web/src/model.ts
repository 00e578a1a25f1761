// The node model, in the engine's own JSON form (engine/src/node.rs `Node`,
// engine/src/doc.rs `Edit`): what `heph show --json` prints, what the
// fixtures generated from the engine hold, and what the app works with.

/** A node id: 32 lower-case hex digits (128 bits). */
export type NodeId = string;
export type Kind = "task" | "note" | "journal";
export type Status = "pending" | "active" | "done" | "cancelled" | "waiting";
export type Priority = "H" | "M" | "L";

/** A dated comment on a node. Times are RFC 3339 strings in UTC. */
export interface Annotation {
  entry: string;
  description: string;
}

/** A node in full: the materialised state of its document (engine `Node`). */
export interface NodeJson {
  id: NodeId;
  kind: Kind;
  title: string;
  body: string;
  tags: string[];
  links: NodeId[];
  created: string;
  modified: string;
  deleted: boolean;
  status?: Status;
  priority?: Priority;
  due?: string;
  wait?: string;
  scheduled?: string;
  start?: string;
  end?: string;
  project?: string;
  depends?: NodeId[];
  annotations?: Annotation[];
  date?: string;
  uda?: Record<string, string>;
  extra?: Record<string, unknown>;
}

/** One change a user makes to a node (engine `Edit`, serde's tagged form). */
export type Edit =
  | { edit: "title"; value: string }
  | { edit: "body"; value: string }
  | { edit: "append_body"; value: string }
  | { edit: "status"; value: Status }
  | { edit: "priority"; value: Priority | null }
  | { edit: "due"; value: string | null }
  | { edit: "wait"; value: string | null }
  | { edit: "scheduled"; value: string | null }
  | { edit: "project"; value: string | null }
  | { edit: "add_tag"; value: string }
  | { edit: "remove_tag"; value: string }
  | { edit: "link"; value: NodeId }
  | { edit: "unlink"; value: NodeId }
  | { edit: "depend"; value: NodeId }
  | { edit: "undepend"; value: NodeId }
  | { edit: "annotate"; value: Annotation }
  | { edit: "start"; value: string | null }
  | { edit: "end"; value: string | null }
  | { edit: "deleted"; value: boolean }
  | { edit: "uda"; value: [string, string | null] };

/** Concurrent values of one field of one node (engine `Conflict`). */
export interface Conflict {
  id: NodeId;
  field: string;
  /** Rendered values; the first is the one currently shown. */
  values: string[];
}
