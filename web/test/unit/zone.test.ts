// The browser's zone: dates typed in the app resolve with the offset in
// force on their own day, as the engine's `Clock` does (engine/src/when.rs
// tests the same instants under the same zones). Node reads `TZ` when it
// changes, and every test file runs in a process of its own.
import { strict as assert } from "node:assert";
import { test } from "node:test";

import { browserZone, display, parseDay, parseWhen } from "../../src/when.ts";
import { Filter } from "../../src/query.ts";

function inZone(zone: string, run: () => void): void {
  const before = process.env.TZ;
  process.env.TZ = zone;
  try {
    run();
  } finally {
    process.env.TZ = before;
  }
}

const utc = (s: string): string => parseWhen(s, new Date(), 0).toISOString();

test("Berlin: a summer date typed in winter is midnight at +02:00; skipped and repeated times", () => {
  inZone("Europe/Berlin", () => {
    const winter = new Date("2026-11-25T09:30:00Z");
    const at = (s: string, now = winter): string => parseWhen(s, now, browserZone).toISOString();
    assert.equal(at("2027-07-01"), utc("2027-06-30T22:00:00Z"));
    assert.equal(at("2027-01-15"), utc("2027-01-14T23:00:00Z"));
    assert.equal(at("2027-03-28T02:30"), utc("2027-03-28T01:30:00Z"), "skipped: moves on by the gap");
    assert.equal(at("2026-10-25T02:30"), utc("2026-10-25T00:30:00Z"), "repeated: the first one");
    const saturday = new Date("2027-03-27T09:00:00Z");
    assert.equal(at("tomorrow", saturday), utc("2027-03-27T23:00:00Z"));
    assert.equal(at("tomorrow+1d", saturday), utc("2027-03-28T22:00:00Z"));
    assert.equal(display(new Date("2027-06-30T22:00:00Z"), browserZone), "2027-07-01");
    // Hours are real time across the jump; days are calendar days (engine `when` tests).
    const sunday = new Date("2027-03-28T02:10:00Z");
    assert.equal(at("now-2h", sunday), utc("2027-03-28T00:10:00Z"));
    assert.equal(at("in 3 hours", sunday), utc("2027-03-28T05:10:00Z"));
    assert.equal(at("now-1d", sunday), utc("2027-03-27T03:10:00Z"));
    assert.equal(at("today+3h", sunday), utc("2027-03-28T02:00:00Z"));
    assert.equal(at("eod+1s", sunday), utc("2027-03-28T22:00:00Z"));
    // In the hour a fall-back night repeats, now is the instant now.
    const repeated = new Date("2026-10-25T01:30:00Z");
    assert.equal(at("now", repeated), utc("2026-10-25T01:30:00Z"));
    assert.equal(at("now+1h", repeated), utc("2026-10-25T02:30:00Z"));
    assert.equal(at("now-1h", repeated), utc("2026-10-25T00:30:00Z"));
  });
});

test("São Paulo: a day whose midnight was skipped starts at 01:00", () => {
  inZone("America/Sao_Paulo", () => {
    const now = new Date("2018-11-03T15:00:00Z");
    assert.equal(parseWhen("tomorrow", now, browserZone).toISOString(), utc("2018-11-04T03:00:00Z"));
    assert.equal(parseWhen("2018-11-05", now, browserZone).toISOString(), utc("2018-11-05T02:00:00Z"));
    assert.equal(parseDay("tomorrow", now, browserZone), "2018-11-04");
    // +TODAY's bounds follow the zone too: the 4th ran from 03:00 to 02:00 UTC.
    const f = Filter.parse(["+TODAY"], new Date("2018-11-04T12:00:00Z"), browserZone);
    assert.deepEqual(f.bounds.days.slice(1, 3), [Date.parse("2018-11-04T03:00:00Z"), Date.parse("2018-11-05T02:00:00Z")]);
  });
});
