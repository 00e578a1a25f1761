//! Recurrence on a replica: finding the live templates, making their missing
//! instances in one write, and the series a task belongs to.
//!
//! Templates and instances are found by their index rows (which carry the
//! `uda` map); only templates' documents are read, to plan their series.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Plan, index_of, is_template, mask_char, parent_of, plan};
use crate::doc::{Edit, NodeDoc};
use crate::error::Error;
use crate::id::NodeId;
use crate::node::{Node, NodeKind, NodeSummary, Status};
use crate::replica::Replica;
use crate::store::Reader;
use crate::when::Clock;

/// One instance a pass made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Made {
    /// Its template.
    pub template: NodeId,
    /// The instance.
    pub id: NodeId,
    /// Its index in the series.
    pub index: u32,
    /// When it is due.
    pub due: DateTime<Utc>,
}

/// A template a pass could not work with, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Skipped {
    /// The template.
    pub id: NodeId,
    /// Why, for a person.
    pub reason: String,
}

/// What a recurrence pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RecurReport {
    /// Instances made, by template and index.
    pub made: Vec<Made>,
    /// Templates whose mask changed.
    pub masks: Vec<NodeId>,
    /// Templates finished: their series ended and nothing of it is pending.
    pub finished: Vec<NodeId>,
    /// Templates left alone because they cannot be read as a series.
    pub skipped: Vec<Skipped>,
}

/// A recurring task's series: its template and the instances still to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Series {
    /// The template.
    pub template: NodeId,
    /// Pending (open) instances, by index.
    pub pending: Vec<NodeId>,
}

/// A row's series: `Some(None)` for a template, `Some(Some((parent,
/// index)))` for an instance, `None` for a task that does not recur.
fn role(row: &NodeSummary) -> Option<Option<(NodeId, u32)>> {
    if row.kind != NodeKind::Task {
        return None;
    }
    match (row.uda(super::RECUR), row.uda(super::PARENT)) {
        (Some(_), None) => Some(None),
        (_, Some(parent)) => {
            let index = row.uda(super::IMASK).and_then(super::parse_index)?;
            Some(Some((NodeId::parse(parent)?, index)))
        }
        (None, None) => None,
    }
}

fn live(row: &NodeSummary) -> bool {
    !row.deleted && !matches!(row.status, Some(Status::Done | Status::Cancelled))
}

fn row_char(row: &NodeSummary) -> char {
    mask_char(row.status, row.deleted, row.wait.is_some())
}

/// What a pass found to do: templates with a plan that changes something,
/// and the templates it had to leave alone.
struct Survey {
    work: Vec<(Node, Plan)>,
    skipped: Vec<Skipped>,
}

/// Every live template with its plan, where the plan changes something.
fn survey(r: &Reader, clock: &Clock, limit: u32) -> Result<Survey, Error> {
    let mut templates = Vec::new();
    // Every instance's state by template (derived ids and Taskwarrior's own uuids alike).
    let mut known: HashMap<NodeId, BTreeMap<u32, char>> = HashMap::new();
    // Only rows that name `recur` or `parent` can be part of a series.
    r.scan_containing(&[super::RECUR, super::PARENT], |row| {
        match role(&row) {
            Some(None) if live(&row) => templates.push(row.id),
            Some(Some((parent, index))) => {
                known.entry(parent).or_default().insert(index, row_char(&row));
            }
            _ => {}
        }
        true
    })?;
    let mut work = Vec::new();
    let mut skipped = Vec::new();
    for id in templates {
        let Some(doc) = r.doc(id)? else { continue };
        let template = doc.materialise_as(id)?;
        let states = known.remove(&id).unwrap_or_default();
        match plan(&template, &states, clock, limit) {
            Ok(p) if p.changes(&template) => work.push((template, p)),
            Ok(_) => {}
            // A template another program wrote may lack what heph needs;
            // it is left as it is, and said so.
            Err(e) => skipped.push(Skipped { id, reason: e.to_string() }),
        }
    }
    Ok(Survey { work, skipped })
}

impl Replica {
    /// Whether [`Self::generate_recurrences`] would write anything now: an
    /// instance to make, a mask to mend or a template to finish. Reads only
    /// (for commands that open the store read-only).
    pub fn recurrences_due(&self, clock: &Clock, limit: u32) -> Result<bool, Error> {
        Ok(!self.store().read(|r| survey(r, clock, limit))?.work.is_empty())
    }

    /// Makes the missing instances of every live template, mends their
    /// masks and finishes ended series, in one write transaction (none when
    /// there is nothing to do). `limit` is the number of future pending
    /// instances each template keeps (Taskwarrior's `recurrence.limit`,
    /// at least 1). Instances are made with deterministic ids and first
    /// changes (see [`crate::recur`]); one another device made already is
    /// not made again. Templates that cannot be read as a series are left
    /// alone and listed in the report.
    pub fn generate_recurrences(&self, clock: &Clock, limit: u32) -> Result<RecurReport, Error> {
        let Survey { work, skipped } = self.store().read(|r| survey(r, clock, limit))?;
        let mut report = RecurReport { skipped, ..RecurReport::default() };
        if work.is_empty() {
            return Ok(report);
        }
        let origin = self.origin();
        // Documents are built before the write transaction.
        let mut built = Vec::new();
        for (_, p) in &work {
            for node in &p.create {
                let (mut doc, changes) = NodeDoc::create_derived(node, super::GENERATED)?;
                doc.set_actor(&origin);
                built.push((node.clone(), doc, changes));
            }
        }
        self.store().write(|w| {
            for (node, doc, changes) in &built {
                // Made meanwhile (synced from a device that made it): the same document.
                if w.doc(node.id)?.is_some() {
                    continue;
                }
                w.save_local(node.id, doc, changes)?;
                report.made.push(Made {
                    template: parent_of(node).unwrap_or(node.id),
                    id: node.id,
                    index: index_of(node).unwrap_or(0),
                    due: node.due.unwrap_or(node.created),
                });
            }
            for (template, p) in &work {
                let Some(mut doc) = w.doc(template.id)? else { continue };
                let mut edits = Vec::new();
                if template.uda.get(super::MASK) != Some(&p.mask) {
                    edits.push(Edit::Uda(super::MASK.into(), Some(p.mask.clone())));
                    report.masks.push(template.id);
                }
                if p.finished {
                    // The same end on every device that finishes it: the last due.
                    edits.push(Edit::Status(Status::Cancelled));
                    edits.push(Edit::End(last_due(template, clock, limit)));
                    report.finished.push(template.id);
                }
                if let Some(change) = doc.edit(&edits, super::GENERATED, clock.now)? {
                    w.save_local(template.id, &doc, &[change])?;
                }
            }
            Ok(())
        })?;
        Ok(report)
    }

    /// The series `id` belongs to (as template or instance), with its
    /// pending instances; `None` when `id` does not recur.
    pub fn series(&self, id: NodeId) -> Result<Option<Series>, Error> {
        let node = self.get(id)?;
        let template = if is_template(&node) {
            id
        } else {
            match parent_of(&node) {
                Some(t) => t,
                None => return Ok(None),
            }
        };
        let mut pending: Vec<(u32, NodeId)> = Vec::new();
        self.store().read(|r| {
            r.scan(|row| {
                if let Some(Some((parent, index))) = role(&row)
                    && parent == template
                    && live(&row)
                {
                    pending.push((index, row.id));
                }
                true
            })
        })?;
        pending.sort();
        Ok(Some(Series { template, pending: pending.into_iter().map(|(_, id)| id).collect() }))
    }
}

/// The due of the last occurrence of an ended series (its finishing time).
fn last_due(template: &Node, clock: &Clock, limit: u32) -> Option<DateTime<Utc>> {
    super::schedule(template, clock, limit, usize::MAX).ok().and_then(|s| s.dues.last().copied()).or(template.due)
}
