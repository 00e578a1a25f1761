//! Taskwarrior-style recurrence: a template task that makes one task per
//! occurrence.
//!
//! # The contract (others build on it)
//! Recurrence lives in a task's `uda` map, under Taskwarrior's own names and
//! formats, so `heph export --format taskwarrior` gives Taskwarrior the same
//! attributes back:
//!
//! | key | on | value |
//! |---|---|---|
//! | `recur` | template, instances | the period as typed (`weekly`, `2w`, `monthly`; see [`Period`]) |
//! | `until` | template, instances | Taskwarrior's date, `YYYYMMDDTHHMMSSZ`: no occurrence after it |
//! | `mask` | template | one character per instance made so far: `-` pending, `+` done, `X` deleted, `W` waiting |
//! | `imask` | instance | its index in the series, as integer text |
//! | `parent` | instance | the template's id, dashed ([`NodeId::to_uuid`]) |
//!
//! **A template is a task with `recur` set and no `parent`** ([`is_template`]);
//! an instance has `parent`. Listings hide templates by exactly this rule.
//!
//! # Instances are the same everywhere
//! Instance `i` of template `T` has the id `NodeId::derived("heph/recur/{T
//! hex}/{i}")` ([`instance_id`]), and every field of it is a pure function of
//! the template's state and `i` ([`instance`]); it is created with
//! [`crate::NodeDoc::create_derived`]. Two devices that make the same
//! occurrence offline make byte-identical changes and end, after sync, with
//! one document. Its `created` (and `modified`) time is the due time of the
//! occurrence before it (when Taskwarrior, at its default limit, would have
//! made it), never before the template's own `created`; the first
//! instance's is the template's.
//!
//! # What is made, and when
//! [`plan`] follows Taskwarrior 2.6's `generateDueDates`: occurrences run from
//! the template's `due`, one [`Period`] apart, until `limit` of them lie after
//! now (`recurrence.limit`, default 1) or the next would pass `until`.
//! Every occurrence at an index the mask does not cover yet is made (so a
//! template whose `due` is weeks back makes all the missed ones, as
//! Taskwarrior does). An instance's `wait` and `scheduled` keep the
//! template's distance from `due`. Differences from Taskwarrior 2.6, on
//! purpose: no instance is made past `until` (Taskwarrior makes one, then
//! deletes it as expired), and instances are not deleted when `until`
//! passes. When the series has ended and no instance is pending, the
//! template is finished (cancelled, which Taskwarrior's export calls
//! deleted, as Taskwarrior does).
//!
//! The mask is a cache of the instances' states: each pass writes the state
//! of every instance the store holds into it (a done instance is `+`), so a
//! mask that two devices changed concurrently is mended by the next pass.

mod generate;
mod period;

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, Utc};

pub use generate::{Made, RecurReport, Series, Skipped};
pub use period::{Period, PeriodError, Step};

use crate::id::NodeId;
use crate::node::{Node, NodeKind, Status};
use crate::when::Clock;

/// The period, on templates and instances.
pub const RECUR: &str = "recur";
/// The history message of the changes recurrence makes by itself (new
/// instances, a template's mask, a series' end): `heph undo` passes over
/// them, as they would only be made again.
pub const GENERATED: &str = "recur";
/// The last possible occurrence, on templates and instances.
pub const UNTIL: &str = "until";
/// The states of the instances made so far, on templates.
pub const MASK: &str = "mask";
/// The index of an instance in its series.
pub const IMASK: &str = "imask";
/// The template of an instance (dashed uuid).
pub const PARENT: &str = "parent";

/// Taskwarrior's date format, used for `until`.
pub use crate::taskwarrior::TW_DATE;

/// The default number of future pending instances a template keeps
/// (Taskwarrior's `recurrence.limit`).
pub const DEFAULT_LIMIT: u32 = 1;

/// The most instances one template makes in one pass; a pass later makes
/// the rest. Bounds the work of a short period started long ago.
pub const MAX_PER_PASS: usize = 1000;

/// Why a template's series could not be worked out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecurError {
    /// The period is not one Taskwarrior reads.
    #[error(transparent)]
    Period(#[from] PeriodError),
    /// A recurring task needs a due date to count from.
    #[error("a recurring task needs a due date (add due:DATE, e.g. due:tomorrow or due:1st)")]
    NoDue,
    /// `until` is not a date.
    #[error("until {0:?} is not a date (Taskwarrior's form is 20271231T000000Z)")]
    BadUntil(String),
}

/// Whether `node` is a recurrence template: a task with `recur` and no `parent`.
#[must_use]
pub fn is_template(node: &Node) -> bool {
    node.kind == NodeKind::Task && node.uda.contains_key(RECUR) && !node.uda.contains_key(PARENT)
}

/// The template of an instance, when `node` is one.
#[must_use]
pub fn parent_of(node: &Node) -> Option<NodeId> {
    node.uda.get(PARENT).and_then(|p| NodeId::parse(p))
}

/// The index of an instance in its series.
#[must_use]
pub fn index_of(node: &Node) -> Option<u32> {
    parse_index(node.uda.get(IMASK)?)
}

/// Reads an `imask`: Taskwarrior writes an integer; some exports carry it
/// as a decimal.
#[must_use]
pub fn parse_index(text: &str) -> Option<u32> {
    let text = text.trim();
    text.parse().ok().or_else(|| text.parse::<f64>().ok().filter(|f| f.fract() == 0.0 && *f >= 0.0).map(|f| f as u32))
}

/// The id of instance `index` of `template`.
#[must_use]
pub fn instance_id(template: NodeId, index: u32) -> NodeId {
    NodeId::derived(&format!("heph/recur/{}/{index}", template.to_hex()))
}

/// `until` as stored (Taskwarrior's date).
#[must_use]
pub fn format_until(t: DateTime<Utc>) -> String {
    t.format(TW_DATE).to_string()
}

/// Reads a stored `until` (Taskwarrior's form, or RFC 3339).
pub fn parse_until(text: &str) -> Result<DateTime<Utc>, RecurError> {
    NaiveDateTime::parse_from_str(text.trim(), TW_DATE)
        .map(|t| t.and_utc())
        .or_else(|_| DateTime::parse_from_rfc3339(text.trim()).map(|t| t.to_utc()))
        .map_err(|_| RecurError::BadUntil(text.to_string()))
}

/// The mask character of an instance in this state (Taskwarrior's
/// `updateRecurrenceMask`).
#[must_use]
pub fn mask_char(node_status: Option<Status>, deleted: bool, waiting: bool) -> char {
    match node_status {
        _ if deleted => 'X',
        Some(Status::Cancelled) => 'X',
        Some(Status::Done) => '+',
        Some(Status::Waiting) => 'W',
        _ if waiting => 'W',
        _ => '-',
    }
}

/// Whether two mask characters say the same of an instance: `-` and `W`
/// are both still to do.
fn same_state(a: char, b: char) -> bool {
    let open = |c| c == '-' || c == 'W';
    a == b || (open(a) && open(b))
}

/// Two masks of one template as one: as long as the longer, and where they
/// differ, a finished state (`+`, `X`) over an open or unknown one, else
/// `incoming`'s. Importing an older copy of a template thus keeps the
/// instances made since.
#[must_use]
pub fn merge_masks(current: &str, incoming: &str) -> String {
    let (a, b): (Vec<char>, Vec<char>) = (current.chars().collect(), incoming.chars().collect());
    let finished = |c: char| c == '+' || c == 'X';
    (0..a.len().max(b.len()))
        .map(|i| match (a.get(i).copied(), b.get(i).copied()) {
            (Some(x), Some(y)) if finished(x) && !finished(y) => x,
            (_, Some(y)) => y,
            (Some(x), None) => x,
            (None, None) => '?',
        })
        .collect()
}

/// The due times of a template's series (Taskwarrior's `generateDueDates`):
/// from its `due`, one period apart, until `limit` lie after `clock.now`, or
/// the next would pass `until` (then `exhausted`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// Due time of each index.
    pub dues: Vec<DateTime<Utc>>,
    /// Whether the series ends with these (by `until`).
    pub exhausted: bool,
}

/// Works out the schedule of `template`, looking at most `horizon`
/// occurrences far.
pub fn schedule(template: &Node, clock: &Clock, limit: u32, horizon: usize) -> Result<Schedule, RecurError> {
    let period = Period::parse(template.uda.get(RECUR).map_or("", String::as_str))?;
    let due = template.due.ok_or(RecurError::NoDue)?;
    let until = template.uda.get(UNTIL).filter(|u| !u.is_empty()).map(|u| parse_until(u)).transpose()?;
    let mut dues = Vec::new();
    let mut ahead = 0;
    let mut at = Some(due);
    while let Some(t) = at {
        if until.is_some_and(|u| t > u) {
            return Ok(Schedule { dues, exhausted: true });
        }
        dues.push(t);
        if t > clock.now {
            ahead += 1;
        }
        if ahead >= limit.max(1) || dues.len() >= horizon {
            break;
        }
        at = period.next(t, clock);
    }
    Ok(Schedule { dues, exhausted: at.is_none() })
}

/// Instance `index` of `template`, due at `due`; `created` is its creation
/// (and modification) time. A pure function of its arguments: see the
/// module doc.
#[must_use]
pub fn instance(template: &Node, index: u32, due: DateTime<Utc>, created: DateTime<Utc>) -> Node {
    let mut n = template.clone();
    n.id = instance_id(template.id, index);
    n.status = Some(Status::Pending);
    n.start = None;
    n.end = None;
    n.deleted = false;
    n.extra = BTreeMap::new();
    let shift = |t: Option<DateTime<Utc>>| t.zip(template.due).map(|(t, d)| due + (t - d));
    n.wait = shift(template.wait);
    n.scheduled = shift(template.scheduled);
    n.due = Some(due);
    n.uda.remove(MASK);
    n.uda.insert(PARENT.into(), template.id.to_uuid());
    n.uda.insert(IMASK.into(), index.to_string());
    n.created = created;
    n.modified = created;
    n.normalised()
}

/// What one pass does to one template.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// New instances, by index.
    pub create: Vec<Node>,
    /// The mask afterwards.
    pub mask: String,
    /// The series has ended and nothing of it is pending: finish the template.
    pub finished: bool,
}

impl Plan {
    /// Whether the pass changes anything for this template.
    #[must_use]
    pub fn changes(&self, template: &Node) -> bool {
        !self.create.is_empty() || self.finished || template.uda.get(MASK).map_or("", String::as_str) != self.mask
    }
}

/// The pass for `template`: `known` holds, by index, the mask character of
/// every instance of it the store holds (made here, synced, or imported
/// from Taskwarrior with its own uuid).
pub fn plan(template: &Node, known: &BTreeMap<u32, char>, clock: &Clock, limit: u32) -> Result<Plan, RecurError> {
    let stored: Vec<char> = template.uda.get(MASK).map(|m| m.chars().collect()).unwrap_or_default();
    let horizon = stored.len() + MAX_PER_PASS;
    let Schedule { dues, exhausted } = schedule(template, clock, limit, horizon)?;
    let known_len = known.keys().next_back().map_or(0, |i| *i as usize + 1);
    let len = stored.len().max(dues.len()).max(known_len);
    let mut mask = String::with_capacity(len);
    let mut create = Vec::new();
    for i in 0..len {
        let index = u32::try_from(i).unwrap_or(u32::MAX);
        let c = match (known.get(&index), stored.get(i)) {
            (Some(&k), Some(&s)) if same_state(k, s) => s,
            (Some(&k), _) => k,
            (None, Some(&s)) => s,
            (None, None) => match dues.get(i) {
                Some(&due) => {
                    let created = i
                        .checked_sub(1)
                        .and_then(|p| dues.get(p))
                        .map_or(template.created, |prev| (*prev).max(template.created));
                    let node = instance(template, index, due, created);
                    let c = if node.wait.is_some() { 'W' } else { '-' };
                    create.push(node);
                    c
                }
                // Beyond the schedule and not held: a gap in foreign data.
                None => '?',
            },
        };
        mask.push(c);
    }
    let finished = exhausted && create.is_empty() && mask.len() >= dues.len() && !mask.contains(['-', 'W']);
    Ok(Plan { create, mask, finished })
}

#[cfg(test)]
mod tests;
