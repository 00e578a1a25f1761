//! Filters and ordering for listings, in Taskwarrior's vocabulary.
//!
//! A filter is a list of words: `status:done`, `+tag`, `-tag`, `project:home`,
//! `pri:H`, `due:today`, `due.before:eow`, `due.after:2026-12-01`,
//! `kind:note`, `+OVERDUE`, `+ACTIVE`, `+BLOCKED`, and plain words that must
//! all appear in the title. Everything here works on index rows
//! ([`NodeSummary`]) so listing never loads a document.

use std::collections::HashSet;

use chrono::Duration;

use crate::id::NodeId;
use crate::node::{NodeKind, NodeSummary, Priority, Status};
use crate::when::{Clock, WhenError, parse_when};

/// Which statuses a filter keeps.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StatusFilter {
    /// Pending and active tasks whose wait date has passed (the default report).
    Open,
    /// Any of these (effective) statuses.
    Only(Vec<Status>),
    /// Every status.
    All,
}

/// Why a filter could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FilterError {
    /// A date in the filter.
    #[error(transparent)]
    When(#[from] WhenError),
    /// A value that is not one of the allowed ones.
    #[error("{0}")]
    BadValue(String),
}

/// A parsed filter.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Filter {
    /// Node kinds kept; empty = every kind.
    pub kinds: Vec<NodeKind>,
    /// Statuses kept (tasks only; notes and journals have none).
    pub status: StatusFilter,
    /// Tags that must all be present.
    pub tags: Vec<String>,
    /// Tags that must all be absent.
    pub without_tags: Vec<String>,
    /// Project, matching sub-projects too (`home` matches `home.garden`).
    pub project: Option<String>,
    /// Priority.
    pub priority: Option<Priority>,
    /// Due at or after (ms).
    pub due_from: Option<i64>,
    /// Due before (ms).
    pub due_before: Option<i64>,
    /// Words that must all appear in the title (lower-cased).
    pub words: Vec<String>,
    /// Keep deleted nodes (and only them).
    pub deleted: bool,
    /// Only overdue tasks.
    pub overdue: bool,
    /// Only tasks that wait on open dependencies (filled in by the listing).
    pub blocked: bool,
}

impl Default for Filter {
    /// The default report: open tasks.
    fn default() -> Self {
        Self {
            kinds: vec![NodeKind::Task],
            status: StatusFilter::Open,
            tags: Vec::new(),
            without_tags: Vec::new(),
            project: None,
            priority: None,
            due_from: None,
            due_before: None,
            words: Vec::new(),
            deleted: false,
            overdue: false,
            blocked: false,
        }
    }
}

impl Filter {
    /// A filter that keeps every live node of every kind.
    #[must_use]
    pub fn everything() -> Self {
        Self { kinds: Vec::new(), status: StatusFilter::All, ..Self::default() }
    }

    /// Parses filter words; `now` anchors relative dates.
    pub fn parse<S: AsRef<str>>(words: &[S], now: &Clock) -> Result<Self, FilterError> {
        let mut f = Self::default();
        let mut kind_given = false;
        let mut status_given = false;
        for word in words {
            let word = word.as_ref();
            if let Some(tag) = word.strip_prefix('+') {
                match tag {
                    "OVERDUE" => f.overdue = true,
                    "ACTIVE" => {
                        f.status = StatusFilter::Only(vec![Status::Active]);
                        status_given = true;
                    }
                    "BLOCKED" => f.blocked = true,
                    "DELETED" => f.deleted = true,
                    _ => f.tags.push(tag.to_string()),
                }
                continue;
            }
            if let Some(tag) = word.strip_prefix('-').filter(|t| !t.is_empty()) {
                f.without_tags.push(tag.to_string());
                continue;
            }
            let Some((key, value)) = word.split_once(':') else {
                f.words.push(word.to_lowercase());
                continue;
            };
            match key {
                "status" | "st" => {
                    status_given = true;
                    f.status = match value {
                        "all" | "any" => StatusFilter::All,
                        "open" => StatusFilter::Open,
                        "deleted" => {
                            f.deleted = true;
                            StatusFilter::All
                        }
                        list => StatusFilter::Only(
                            list.split(',').map(str::parse).collect::<Result<_, _>>().map_err(FilterError::BadValue)?,
                        ),
                    };
                }
                "kind" | "k" => {
                    kind_given = true;
                    f.kinds = match value {
                        "all" | "any" => Vec::new(),
                        list => {
                            list.split(',').map(str::parse).collect::<Result<_, _>>().map_err(FilterError::BadValue)?
                        }
                    };
                }
                "project" | "pro" | "proj" => f.project = Some(value.to_string()),
                "priority" | "pri" => f.priority = Some(value.parse().map_err(FilterError::BadValue)?),
                "due" => {
                    let day = parse_when(value, now)?;
                    f.due_from = Some(day.timestamp_millis());
                    f.due_before = Some((day + Duration::days(1)).timestamp_millis());
                }
                "due.before" | "due.under" | "due.below" => {
                    f.due_before = Some(parse_when(value, now)?.timestamp_millis())
                }
                "due.by" => f.due_before = Some(parse_when(value, now)?.timestamp_millis() + 1),
                "due.after" | "due.over" | "due.above" => {
                    f.due_from = Some(parse_when(value, now)?.timestamp_millis() + 1)
                }
                _ => f.words.push(word.to_lowercase()),
            }
        }
        // Asking for notes or journals means any status; asking for a status means tasks.
        if kind_given && !status_given && !f.kinds.contains(&NodeKind::Task) {
            f.status = StatusFilter::All;
        }
        if f.deleted && !status_given {
            f.status = StatusFilter::All;
        }
        Ok(f)
    }

    /// Whether `row` passes (except `blocked`, which needs the whole set).
    #[must_use]
    pub fn matches(&self, row: &NodeSummary, now_ms: i64) -> bool {
        if row.deleted != self.deleted {
            return false;
        }
        if !self.kinds.is_empty() && !self.kinds.contains(&row.kind) {
            return false;
        }
        let status = row.effective_status(now_ms);
        let status_ok = match (&self.status, status) {
            (StatusFilter::All, _) => true,
            (StatusFilter::Open, Some(s)) => matches!(s, Status::Pending | Status::Active),
            (StatusFilter::Open, None) => row.kind != NodeKind::Task,
            (StatusFilter::Only(list), Some(s)) => list.contains(&s),
            (StatusFilter::Only(_), None) => false,
        };
        if !status_ok {
            return false;
        }
        if !self.tags.iter().all(|t| row.tags.contains(t)) || self.without_tags.iter().any(|t| row.tags.contains(t)) {
            return false;
        }
        if let Some(p) = &self.project {
            let ok = row
                .project
                .as_deref()
                .is_some_and(|rp| rp == p || rp.strip_prefix(p.as_str()).is_some_and(|rest| rest.starts_with('.')));
            if !ok {
                return false;
            }
        }
        if self.priority.is_some() && row.priority != self.priority {
            return false;
        }
        if self.due_from.is_some() || self.due_before.is_some() || self.overdue {
            let Some(due) = row.due else { return false };
            if self.due_from.is_some_and(|f| due < f) || self.due_before.is_some_and(|b| due >= b) {
                return false;
            }
            if self.overdue && (due >= now_ms || matches!(status, Some(Status::Done | Status::Cancelled))) {
                return false;
            }
        }
        if !self.words.is_empty() {
            let title = row.title.to_lowercase();
            if !self.words.iter().all(|w| title.contains(w.as_str())) {
                return false;
            }
        }
        true
    }
}

/// Whether a task waits on another open task.
#[must_use]
pub fn is_blocked(row: &NodeSummary, open_tasks: &HashSet<NodeId>) -> bool {
    row.depends.iter().any(|d| open_tasks.contains(d))
}

/// Taskwarrior's urgency, with its default coefficients: priority, due
/// proximity, active, scheduled, age, tags, project, annotations, `+next`,
/// and a penalty for blocked and waiting tasks.
#[must_use]
#[allow(clippy::cast_precision_loss)]
pub fn urgency(row: &NodeSummary, open_tasks: &HashSet<NodeId>, now_ms: i64) -> f64 {
    if row.kind != NodeKind::Task {
        return 0.0;
    }
    let mut u = match row.priority {
        Some(Priority::H) => 6.0,
        Some(Priority::M) => 3.9,
        Some(Priority::L) => 1.8,
        None => 0.0,
    };
    if row.tags.iter().any(|t| t == "next") {
        u += 15.0;
    }
    if let Some(due) = row.due {
        let days_overdue = (now_ms - due) as f64 / 86_400_000.0;
        let scale = if days_overdue >= 7.0 {
            1.0
        } else if days_overdue >= -14.0 {
            (days_overdue + 14.0) * 0.8 / 21.0 + 0.2
        } else {
            0.2
        };
        u += 12.0 * scale;
    }
    if row.status == Some(Status::Active) {
        u += 4.0;
    }
    if row.scheduled.is_some_and(|s| s <= now_ms) {
        u += 5.0;
    }
    let age_days = (now_ms - row.created).max(0) as f64 / 86_400_000.0;
    u += 2.0 * (age_days / 365.0).min(1.0);
    u += match row.tags.len() {
        0 => 0.0,
        1 => 0.8,
        2 => 0.9,
        _ => 1.0,
    };
    if row.project.is_some() {
        u += 1.0;
    }
    u += match row.annotations {
        0 => 0.0,
        1 => 0.8,
        2 => 0.9,
        _ => 1.0,
    };
    if is_blocked(row, open_tasks) {
        u -= 5.0;
    }
    if row.effective_status(now_ms) == Some(Status::Waiting) {
        u -= 3.0;
    }
    (u * 1000.0).round() / 1000.0
}

/// Sorts rows for a listing: tasks by urgency (highest first), then due date;
/// other nodes by last change (newest first). Ties break on id, so the order
/// is the same on every device. With `limit`, only the first `limit` rows are
/// sorted and returned.
#[must_use]
pub fn sort_for_listing(
    rows: Vec<NodeSummary>,
    open_tasks: &HashSet<NodeId>,
    now_ms: i64,
    limit: Option<usize>,
) -> Vec<(f64, NodeSummary)> {
    let mut keyed: Vec<(f64, NodeSummary)> = rows.into_iter().map(|r| (urgency(&r, open_tasks, now_ms), r)).collect();
    let order = |(ua, a): &(f64, NodeSummary), (ub, b): &(f64, NodeSummary)| {
        (b.kind == NodeKind::Task)
            .cmp(&(a.kind == NodeKind::Task))
            .then_with(|| ub.total_cmp(ua))
            .then_with(|| a.due.unwrap_or(i64::MAX).cmp(&b.due.unwrap_or(i64::MAX)))
            .then_with(|| b.modified.cmp(&a.modified))
            .then_with(|| a.id.cmp(&b.id))
    };
    if let Some(n) = limit.filter(|n| *n < keyed.len()) {
        if n == 0 {
            return Vec::new();
        }
        keyed.select_nth_unstable_by(n - 1, order);
        keyed.truncate(n);
    }
    keyed.sort_by(order);
    keyed
}
