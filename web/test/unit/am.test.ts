import "./setup.ts";
import { test } from "node:test";
import assert from "node:assert/strict";
import { A } from "../../src/automerge.ts";

test("automerge loads from its wasm", () => {
  let doc = A.from<{ x: number }>({ x: 1 });
  doc = A.change(doc, (d) => { d.x = 2; });
  assert.equal(doc.x, 2);
});
