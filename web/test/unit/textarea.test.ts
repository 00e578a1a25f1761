import { test } from "node:test";
import assert from "node:assert/strict";
import { asShown, typedOver } from "../../src/textarea.ts";

test("a body with LF line ends is saved as typed", () => {
  assert.equal(typedOver("a\nb", "a\nbc"), "a\nbc");
  assert.equal(typedOver("", "new"), "new");
});

test("looking at a CR LF body changes nothing", () => {
  const base = "one\r\ntwo\r\n\r\nthree\r\n";
  assert.equal(typedOver(base, asShown(base)), base);
});

test("typing in a CR LF body keeps every other line end", () => {
  const base = "one\r\ntwo\r\nthree";
  assert.equal(typedOver(base, "one\ntwo!\nthree"), "one\r\ntwo!\r\nthree");
  assert.equal(typedOver(base, "one\ntwo\nthree\nfour"), "one\r\ntwo\r\nthree\r\nfour");
  assert.equal(typedOver(base, "one\nthree"), "one\r\nthree");
  assert.equal(typedOver(base, "zero\none\ntwo\nthree"), "zero\r\none\r\ntwo\r\nthree");
  assert.equal(typedOver(base, ""), "");
});

test("mixed line ends are kept where untouched and new ones are LF", () => {
  const base = "a\r\nb\nc\rd";
  assert.equal(asShown(base), "a\nb\nc\nd");
  assert.equal(typedOver(base, "a\nb\nc\nd"), base);
  assert.equal(typedOver(base, "a\nb\nX\nc\nd"), "a\r\nb\nX\nc\rd");
  assert.equal(typedOver(base, "a\nb\nc\nd\ne"), "a\r\nb\nc\rd\ne");
});

test("a change next to a CR LF does not split it", () => {
  const base = "x\r\ny";
  assert.equal(typedOver(base, "x\n\ny"), "x\r\n\r\ny");
  assert.equal(typedOver(base, "xy"), "xy");
  assert.equal(typedOver(base, "x!\ny"), "x!\r\ny");
});
