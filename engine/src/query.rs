//! Filters and ordering for listings: Taskwarrior's filter language.
//!
//! A filter is a sequence of words, joined by an implicit `and`:
//! - `+tag` / `-tag`: has (hasn't) the tag; `+OVERDUE`, `+BLOCKED`, … are
//!   Taskwarrior's virtual tags ([`Virtual`]);
//! - `attr:value` and `attr.modifier:value` on every attribute ([`Attr`]):
//!   `due.before:eow`, `project.not:home`, `description.has:milk`,
//!   `tags.none:`, `until.any:`, and on UDAs kept from a Taskwarrior import;
//! - `and`, `or`, `xor`, `not` (or `!`) and parentheses, with Taskwarrior's
//!   precedence (`not` binds tightest, then `and`, `or`, `xor`);
//! - any other word must appear in the title (case-insensitive).
//!
//! Without a `status` or `kind` in the filter, the default report applies:
//! tasks that are pending or started (not waiting, not recurring templates).
//! Deleted nodes (tombstones) are seen only by a filter that asks for them
//! (`status:deleted`, `+DELETED`). An attribute or modifier heph does not
//! know is an error that names it, never a silent empty list.
//!
//! Everything that depends on the user's clock and zone (`due:today`,
//! `+WEEK`) is resolved by [`Filter::parse`], so a parsed filter means the
//! same wherever it is evaluated (the device daemon, a test). Evaluation
//! works on index rows ([`NodeSummary`]): listing never loads a document.

use std::collections::HashSet;

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, Utc};

use crate::id::NodeId;
use crate::node::{NodeKind, NodeSummary, Priority, Status};
use crate::when::{Clock, WhenError, parse_when};

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
    /// A modifier heph does not know, or one that does not apply to the attribute.
    #[error("{0}")]
    BadModifier(String),
    /// Parentheses or operators that do not make an expression.
    #[error("{0}")]
    Syntax(String),
}

/// The attributes a filter can name (aliases aside).
const ATTRIBUTES: &[&str] = &[
    "description",
    "project",
    "priority",
    "status",
    "kind",
    "tags",
    "due",
    "wait",
    "scheduled",
    "until",
    "entry",
    "end",
    "start",
    "modified",
    "depends",
    "recur",
    "parent",
    "mask",
    "imask",
    "urgency",
    "uuid",
];

/// A task or node attribute that a filter compares.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Attr {
    /// The title.
    Description,
    /// The project.
    Project,
    /// H, M or L.
    Priority,
    /// `due`.
    Due,
    /// `wait`.
    Wait,
    /// `scheduled`.
    Scheduled,
    /// `until` (recurrence end; a UDA in the document).
    Until,
    /// `entry`: when it was created.
    Entry,
    /// `end`: when it was done or cancelled.
    End,
    /// `start`: when it was started.
    Start,
    /// `modified`.
    Modified,
    /// Its tags.
    Tags,
    /// The tasks it depends on.
    Depends,
    /// Its uuid.
    Uuid,
    /// Its urgency.
    Urgency,
    /// A Taskwarrior attribute kept in the document's UDA map (`recur`,
    /// `parent`, `mask`, `imask`, or a user-defined one).
    Uda(String),
}

/// How a value is compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// `attr:v`: strings start with `v`, dates fall on the same day.
    Partial,
    /// `.is`/`.equals`: exactly `v`.
    Is,
    /// `.not`: the negation of `attr:v`.
    Not,
    /// `.isnt`: not exactly `v`.
    Isnt,
    /// `.before`/`.under`/`.below`.
    Before,
    /// `.after`/`.over`/`.above`.
    After,
    /// `.by`: at or before.
    By,
    /// `.has`/`.contains`.
    Has,
    /// `.hasnt`.
    Hasnt,
    /// `.startswith`/`.left`.
    StartsWith,
    /// `.endswith`/`.right`.
    EndsWith,
    /// `.word`: contains `v` as a whole word.
    Word,
    /// `.noword`.
    NoWord,
    /// `.none`: no value.
    None,
    /// `.any`: some value.
    Any,
}

/// A value to compare with, typed by its attribute.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Value {
    /// Text (compared case-insensitively; stored lower-cased).
    Text(String),
    /// An instant (ms) and the bounds of its local day (ms, end exclusive).
    Date {
        /// The instant.
        at: i64,
        /// Local midnight starting its day.
        day_start: i64,
        /// Local midnight ending its day.
        day_end: i64,
    },
    /// A number.
    Number(f64),
    /// Nothing (for `.none`, `.any`, or an empty value).
    Empty,
}

/// Taskwarrior's virtual tags: properties a task has rather than tags it carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Virtual {
    /// Started.
    Active,
    /// Depends on an open task.
    Blocked,
    /// Does not depend on an open task.
    Unblocked,
    /// An open task depends on it.
    Blocking,
    /// Pending, not blocked, and not scheduled in the future.
    Ready,
    /// Due within the next 7 days (from the start of today).
    Due,
    /// Due today.
    Today,
    /// Due yesterday.
    Yesterday,
    /// Due tomorrow.
    Tomorrow,
    /// Due before now.
    Overdue,
    /// Due this week (Monday to Sunday).
    Week,
    /// Due this month.
    Month,
    /// Due this quarter.
    Quarter,
    /// Due this year.
    Year,
    /// Hidden until its wait date.
    Waiting,
    /// Pending (or started), not waiting.
    Pending,
    /// Done.
    Completed,
    /// Deleted.
    Deleted,
    /// Part of a recurring series (template or instance).
    Recurring,
    /// A recurring template.
    Template,
    /// An instance of a recurring template.
    Instance,
    /// Has tags.
    Tagged,
    /// Has annotations.
    Annotated,
    /// Has a project.
    Project,
    /// Has a priority.
    Priority,
    /// Has a scheduled date.
    Scheduled,
    /// Has an until date.
    Until,
    /// Has a user-defined attribute (or a priority, which is one in Taskwarrior).
    Uda,
    /// The open task (pending, started, waiting, or a recurring template)
    /// created last.
    Latest,
}

impl Virtual {
    fn parse(tag: &str) -> Option<Self> {
        Some(match tag {
            "ACTIVE" => Self::Active,
            "BLOCKED" => Self::Blocked,
            "UNBLOCKED" => Self::Unblocked,
            "BLOCKING" => Self::Blocking,
            "READY" => Self::Ready,
            "DUE" => Self::Due,
            "TODAY" | "DUETODAY" => Self::Today,
            "YESTERDAY" => Self::Yesterday,
            "TOMORROW" => Self::Tomorrow,
            "OVERDUE" => Self::Overdue,
            "WEEK" => Self::Week,
            "MONTH" => Self::Month,
            "QUARTER" => Self::Quarter,
            "YEAR" => Self::Year,
            "WAITING" => Self::Waiting,
            "PENDING" => Self::Pending,
            "COMPLETED" => Self::Completed,
            "DELETED" => Self::Deleted,
            "RECURRING" => Self::Recurring,
            "TEMPLATE" | "PARENT" => Self::Template,
            "INSTANCE" | "CHILD" => Self::Instance,
            "TAGGED" => Self::Tagged,
            "ANNOTATED" => Self::Annotated,
            "PROJECT" => Self::Project,
            "PRIORITY" => Self::Priority,
            "SCHEDULED" => Self::Scheduled,
            "UNTIL" => Self::Until,
            "UDA" => Self::Uda,
            "LATEST" => Self::Latest,
            _ => return None,
        })
    }

    /// Whether this tag speaks of a task's status, which turns the default report's status rule off.
    fn is_status(self) -> bool {
        matches!(self, Self::Waiting | Self::Pending | Self::Completed | Self::Deleted | Self::Template)
    }

    /// Whether it needs the whole set of tasks (dependencies) to be decided.
    fn needs_graph(self) -> bool {
        matches!(self, Self::Blocked | Self::Unblocked | Self::Blocking | Self::Ready | Self::Latest)
    }
}

/// A status a filter asks for: heph's statuses plus the states Taskwarrior names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StatusIs {
    /// One of heph's statuses (as the listing shows it: waiting once hidden).
    Is(Status),
    /// A recurring template.
    Recurring,
    /// Deleted (a tombstone).
    Deleted,
}

/// A filter expression.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Expr {
    /// Matches everything.
    True,
    /// All of these.
    And(Vec<Expr>),
    /// Any of these.
    Or(Vec<Expr>),
    /// Exactly one of the two.
    Xor(Box<Expr>, Box<Expr>),
    /// Not this.
    Not(Box<Expr>),
    /// Carries this tag, matched ignoring case (held lower case).
    Tag(String),
    /// Has this virtual tag.
    Virtual(Virtual),
    /// The status (as the listing shows it) is one of these.
    Status(Vec<StatusIs>),
    /// The kind is one of these.
    Kind(Vec<NodeKind>),
    /// A comparison.
    Compare {
        /// The attribute.
        attr: Attr,
        /// How.
        op: Op,
        /// With what.
        value: Value,
    },
    /// The title contains this word (lower-cased).
    Word(String),
}

/// The instants a filter's relative words stand for, fixed when it is parsed
/// (ms, local day bounds in the user's zone).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Bounds {
    /// When the filter was read.
    pub now: i64,
    /// Local midnights: yesterday, today, tomorrow, the day after.
    pub days: [i64; 4],
    /// Today's start plus 7 × 24 h (Taskwarrior's `due` horizon for `+DUE`).
    pub imminent: i64,
    /// This week (Monday 00:00, next Monday 00:00).
    pub week: (i64, i64),
    /// This month.
    pub month: (i64, i64),
    /// This quarter.
    pub quarter: (i64, i64),
    /// This year.
    pub year: (i64, i64),
}

impl Bounds {
    /// The bounds on `clock`.
    #[must_use]
    pub fn at(clock: &Clock) -> Self {
        let today = clock.day_of(clock.now);
        let start = |day: Option<NaiveDate>| -> i64 {
            day.and_then(|d| clock.start_of(d)).map_or(i64::MAX, |t: DateTime<Utc>| t.timestamp_millis())
        };
        let first_of_month = today.with_day(1);
        let quarter_month = (today.month0() / 3) * 3 + 1;
        let first_of_quarter = NaiveDate::from_ymd_opt(today.year(), quarter_month, 1);
        let first_of_year = NaiveDate::from_ymd_opt(today.year(), 1, 1);
        let monday = today.checked_sub_days(Days::new(u64::from(today.weekday().num_days_from_monday())));
        let today_start = start(Some(today));
        Self {
            now: clock.now.timestamp_millis(),
            days: [
                start(today.pred_opt()),
                today_start,
                start(today.succ_opt()),
                start(today.checked_add_days(Days::new(2))),
            ],
            imminent: today_start.saturating_add(7 * 86_400_000),
            week: (start(monday), start(monday.and_then(|m| m.checked_add_days(Days::new(7))))),
            month: (start(first_of_month), start(first_of_month.and_then(|d| d.checked_add_months(Months::new(1))))),
            quarter: (
                start(first_of_quarter),
                start(first_of_quarter.and_then(|d| d.checked_add_months(Months::new(3)))),
            ),
            year: (start(first_of_year), start(first_of_year.and_then(|d| d.checked_add_months(Months::new(12))))),
        }
    }
}

/// A parsed filter.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Filter {
    /// Node kinds kept; empty = every kind.
    pub kinds: Vec<NodeKind>,
    /// The default report's status rule: tasks must be pending or started
    /// (other kinds pass). Off once the filter speaks of status.
    pub open_only: bool,
    /// Deleted nodes (tombstones) are considered: the filter asks for them.
    pub deleted: bool,
    /// The expression every kept node matches.
    pub expr: Expr,
    /// What relative words meant when the filter was read.
    pub bounds: Bounds,
}

impl Default for Filter {
    /// The default report: open tasks.
    fn default() -> Self {
        Self {
            kinds: vec![NodeKind::Task],
            open_only: true,
            deleted: false,
            expr: Expr::True,
            bounds: Bounds::default(),
        }
    }
}

/// Splits the words of a filter into tokens: words given with spaces in them
/// (`'( +a or +b )'`) are split at whitespace, and parentheses and a leading
/// `!` are tokens of their own. A word that is one `name:value` pair stays whole, as in
/// Taskwarrior, so its value may hold spaces (`'project:My Proj'`,
/// `'description.is:Call mom'`).
fn tokens<S: AsRef<str>>(words: &[S]) -> Vec<String> {
    let mut out = Vec::new();
    for word in words {
        let whole = word.as_ref().trim();
        // A word that is one `name:value` pair stays whole, negated or not
        // (`'!project:My Proj'`).
        let bare = whole.strip_prefix('!').unwrap_or(whole);
        if whole.contains(char::is_whitespace) && is_pair(bare) {
            if bare.len() < whole.len() {
                out.push("!".to_string());
            }
            out.push(bare.to_string());
            continue;
        }
        for part in whole.split_whitespace() {
            let mut rest = part;
            // `(` opens a group and `!` negates, written apart or not (`!+work`, `!(+a or +b)`).
            while let Some(r) = rest.strip_prefix('(').or_else(|| rest.strip_prefix('!').filter(|r| !r.is_empty())) {
                out.push(rest[..1].to_string());
                rest = r;
            }
            let mut closing = 0;
            while let Some(r) = rest.strip_suffix(')') {
                // A `)` closes a group unless the word opened one itself (`f(x)`).
                if r.contains('(') {
                    break;
                }
                closing += 1;
                rest = r;
            }
            if !rest.is_empty() {
                out.push(rest.to_string());
            }
            out.extend(std::iter::repeat_n(")".to_string(), closing));
        }
    }
    out
}

/// Whether `word` is one attribute pair (`name:value`).
fn is_pair(word: &str) -> bool {
    word.split_once(':').is_some_and(|(key, value)| attribute_shaped(key, value))
}

/// What the whole filter mentions, for the defaults.
#[derive(Default)]
struct Mentions {
    status: bool,
    kind: bool,
    deleted: bool,
}

/// How deep parentheses and `not`s may nest: far past any filter a person
/// writes, and well within the stack.
const MAX_DEPTH: usize = 64;

struct Parser<'a> {
    tokens: Vec<String>,
    at: usize,
    depth: usize,
    clock: &'a Clock,
    mentions: Mentions,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&str> {
        self.tokens.get(self.at).map(String::as_str)
    }

    /// A whole expression. As in Taskwarrior 2.6, `and` binds tightest,
    /// then `or`, then `xor`: `+a or +b xor +c` is `( +a or +b ) xor +c`.
    fn xor(&mut self) -> Result<Expr, FilterError> {
        let mut left = self.or()?;
        while self.peek().is_some_and(|t| t.eq_ignore_ascii_case("xor")) {
            self.at += 1;
            let right = self.or()?;
            left = Expr::Xor(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn or(&mut self) -> Result<Expr, FilterError> {
        let mut terms = vec![self.and()?];
        while self.peek().is_some_and(|t| t.eq_ignore_ascii_case("or")) {
            self.at += 1;
            terms.push(self.and()?);
        }
        Ok(if terms.len() == 1 { terms.remove(0) } else { Expr::Or(terms) })
    }

    fn and(&mut self) -> Result<Expr, FilterError> {
        let mut terms = vec![self.unary()?];
        loop {
            match self.peek() {
                None | Some(")") => break,
                Some(t) if t.eq_ignore_ascii_case("or") || t.eq_ignore_ascii_case("xor") => break,
                Some(t) if t.eq_ignore_ascii_case("and") => {
                    self.at += 1;
                    terms.push(self.unary()?);
                }
                Some(_) => terms.push(self.unary()?),
            }
        }
        Ok(if terms.len() == 1 { terms.remove(0) } else { Expr::And(terms) })
    }

    fn unary(&mut self) -> Result<Expr, FilterError> {
        let Some(token) = self.peek().map(str::to_string) else {
            return Err(FilterError::Syntax("the filter ends where a term was expected".into()));
        };
        self.at += 1;
        if matches!(token.as_str(), "(" | "!") || token.eq_ignore_ascii_case("not") {
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                return Err(FilterError::Syntax(format!(
                    "the filter nests parentheses and nots more than {MAX_DEPTH} deep"
                )));
            }
            let inner = self.nested(&token);
            self.depth -= 1;
            return inner;
        }
        if token == ")" {
            return Err(FilterError::Syntax("a ')' in the filter closes nothing".into()));
        }
        if ["and", "or", "xor"].iter().any(|op| token.eq_ignore_ascii_case(op)) {
            return Err(FilterError::Syntax(format!("{token:?} in the filter needs a term on each side")));
        }
        self.term(&token)
    }

    /// The rest of a `(`, `!` or `not`.
    fn nested(&mut self, token: &str) -> Result<Expr, FilterError> {
        if token != "(" {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        let inner = self.xor()?;
        if self.peek() != Some(")") {
            return Err(FilterError::Syntax("a '(' in the filter is never closed".into()));
        }
        self.at += 1;
        Ok(inner)
    }

    fn term(&mut self, word: &str) -> Result<Expr, FilterError> {
        if let Some(tag) = word.strip_prefix('+').filter(|t| !t.is_empty()) {
            return Ok(self.tag(tag));
        }
        if let Some(tag) =
            word.strip_prefix('-').filter(|t| !t.is_empty() && !t.starts_with(|c: char| c.is_ascii_digit()))
        {
            return Ok(Expr::Not(Box::new(self.tag(tag))));
        }
        match word.split_once(':') {
            Some((key, value)) if attribute_shaped(key, value) => self.attribute(key, value),
            _ => Ok(Expr::Word(word.to_lowercase())),
        }
    }

    fn tag(&mut self, tag: &str) -> Expr {
        match Virtual::parse(tag) {
            Some(v) => {
                self.mentions.status |= v.is_status();
                self.mentions.deleted |= v == Virtual::Deleted;
                Expr::Virtual(v)
            }
            // Case is ignored, as everywhere in a filter (kept lower case).
            None => Expr::Tag(tag.to_lowercase()),
        }
    }

    fn attribute(&mut self, key: &str, value: &str) -> Result<Expr, FilterError> {
        let (name, modifier) = match key.split_once('.') {
            Some((name, modifier)) => (name, Some(modifier)),
            None => (key, None),
        };
        let op = match modifier {
            None => Op::Partial,
            Some(m) => modifier_op(m).ok_or_else(|| {
                FilterError::BadModifier(format!(
                    "unknown modifier {m:?} in {key:?} (known: before, after, by, is, not, isnt, has, hasnt, startswith, endswith, word, noword, none, any)"
                ))
            })?,
        };
        let lower = name.to_ascii_lowercase();
        match canonical(&lower) {
            Some("status") => self.status(key, op, value),
            Some("kind") => self.kind(key, op, value),
            Some(canon) => {
                let attr = match canon {
                    "description" => Attr::Description,
                    "project" => Attr::Project,
                    "priority" => Attr::Priority,
                    "due" => Attr::Due,
                    "wait" => Attr::Wait,
                    "scheduled" => Attr::Scheduled,
                    "until" => Attr::Until,
                    "entry" => Attr::Entry,
                    "end" => Attr::End,
                    "start" => Attr::Start,
                    "modified" => Attr::Modified,
                    "tags" => Attr::Tags,
                    "depends" => Attr::Depends,
                    "uuid" => Attr::Uuid,
                    "urgency" => Attr::Urgency,
                    other => Attr::Uda(other.to_string()),
                };
                compare(attr, op, value, key, self.clock)
            }
            None => {
                let starts: Vec<&str> =
                    ATTRIBUTES.iter().copied().filter(|a| lower.len() >= 3 && a.starts_with(lower.as_str())).collect();
                if starts.len() > 1 {
                    return Err(FilterError::BadValue(format!(
                        "{name:?} is short for more than one attribute ({}); type more of it",
                        starts.join(", ")
                    )));
                }
                // A name heph does not know may be a UDA from a Taskwarrior import;
                // the listing refuses it if no node has it.
                compare(Attr::Uda(name.to_string()), op, value, key, self.clock)
            }
        }
    }

    fn status(&mut self, key: &str, op: Op, value: &str) -> Result<Expr, FilterError> {
        self.mentions.status = true;
        let negate = match op {
            Op::Partial | Op::Is => false,
            Op::Not | Op::Isnt => true,
            _ => return Err(FilterError::BadModifier(format!("{key:?}: status takes status:X or status.not:X"))),
        };
        let mut list = Vec::new();
        let mut all = false;
        for part in value.split(',') {
            let part = part.to_ascii_lowercase();
            let named: &[StatusIs] = match part.as_str() {
                "all" | "any" => {
                    all = true;
                    &[]
                }
                "open" => &[StatusIs::Is(Status::Pending), StatusIs::Is(Status::Active)],
                "deleted" => &[StatusIs::Deleted],
                "recurring" => &[StatusIs::Recurring],
                // Taskwarrior's pending includes started tasks.
                p if !p.is_empty() && "pending".starts_with(p) => {
                    &[StatusIs::Is(Status::Pending), StatusIs::Is(Status::Active)]
                }
                p => match p.parse::<Status>() {
                    Ok(Status::Active) => &[StatusIs::Is(Status::Active)],
                    Ok(Status::Done) => &[StatusIs::Is(Status::Done)],
                    Ok(Status::Cancelled) => &[StatusIs::Is(Status::Cancelled)],
                    Ok(Status::Waiting) => &[StatusIs::Is(Status::Waiting)],
                    Ok(Status::Pending) => &[StatusIs::Is(Status::Pending), StatusIs::Is(Status::Active)],
                    Err(_) => {
                        return Err(FilterError::BadValue(format!(
                            "{part:?} is not one of: pending, active, done, cancelled, waiting, recurring, deleted, open, all"
                        )));
                    }
                },
            };
            list.extend_from_slice(named);
        }
        self.mentions.deleted |= list.contains(&StatusIs::Deleted);
        let expr = if all { Expr::True } else { Expr::Status(list) };
        Ok(if negate { Expr::Not(Box::new(expr)) } else { expr })
    }

    fn kind(&mut self, key: &str, op: Op, value: &str) -> Result<Expr, FilterError> {
        self.mentions.kind = true;
        let negate = match op {
            Op::Partial | Op::Is => false,
            Op::Not | Op::Isnt => true,
            _ => return Err(FilterError::BadModifier(format!("{key:?}: kind takes kind:X or kind.not:X"))),
        };
        let expr = match value.to_ascii_lowercase().as_str() {
            "all" | "any" => Expr::True,
            list => {
                Expr::Kind(list.split(',').map(str::parse).collect::<Result<_, _>>().map_err(FilterError::BadValue)?)
            }
        };
        Ok(if negate { Expr::Not(Box::new(expr)) } else { expr })
    }
}

/// `key:value` is an attribute (not a title word like `https://x.org` or `10:30`).
fn attribute_shaped(key: &str, value: &str) -> bool {
    let mut chars = key.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        && !value.starts_with("//")
}

fn modifier_op(m: &str) -> Option<Op> {
    Some(match m.to_ascii_lowercase().as_str() {
        "before" | "under" | "below" => Op::Before,
        "after" | "over" | "above" => Op::After,
        "by" => Op::By,
        "is" | "equals" => Op::Is,
        "not" => Op::Not,
        "isnt" => Op::Isnt,
        "has" | "contains" => Op::Has,
        "hasnt" => Op::Hasnt,
        "startswith" | "left" => Op::StartsWith,
        "endswith" | "right" => Op::EndsWith,
        "word" => Op::Word,
        "noword" => Op::NoWord,
        "none" => Op::None,
        "any" => Op::Any,
        _ => return None,
    })
}

/// The canonical name of an attribute: itself, an alias, or an unambiguous
/// abbreviation of at least 3 letters (Taskwarrior's rule, but 3 letters).
fn canonical(name: &str) -> Option<&'static str> {
    const ALIASES: &[(&str, &str)] = &[
        ("title", "description"),
        ("desc", "description"),
        ("pro", "project"),
        ("proj", "project"),
        ("pri", "priority"),
        ("st", "status"),
        ("k", "kind"),
        ("tag", "tags"),
        ("created", "entry"),
        ("sched", "scheduled"),
        ("dep", "depends"),
        ("id", "uuid"),
    ];
    if let Some(&(_, canon)) = ALIASES.iter().find(|(alias, _)| *alias == name) {
        return Some(canon);
    }
    crate::parse::abbreviated(name, ATTRIBUTES)
}

enum Kind {
    Date,
    Text,
    Number,
    Set,
}

fn kind_of(attr: &Attr) -> Kind {
    match attr {
        Attr::Due
        | Attr::Wait
        | Attr::Scheduled
        | Attr::Until
        | Attr::Entry
        | Attr::End
        | Attr::Start
        | Attr::Modified => Kind::Date,
        Attr::Tags | Attr::Depends => Kind::Set,
        Attr::Urgency => Kind::Number,
        Attr::Uda(name) if name == "imask" => Kind::Number,
        _ => Kind::Text,
    }
}

fn compare(attr: Attr, op: Op, value: &str, key: &str, clock: &Clock) -> Result<Expr, FilterError> {
    let value = if matches!(op, Op::None | Op::Any) || value.is_empty() {
        // `priority.above:` is every task with a priority, as in Taskwarrior.
        let ordering = matches!(op, Op::Before | Op::After | Op::By);
        let takes_empty = matches!(op, Op::None | Op::Any | Op::Partial | Op::Is | Op::Not | Op::Isnt);
        if !(takes_empty || attr == Attr::Priority && ordering) {
            return Err(FilterError::BadValue(format!("{key:?} needs a value")));
        }
        Value::Empty
    } else {
        match kind_of(&attr) {
            Kind::Date => {
                if matches!(op, Op::Has | Op::Hasnt | Op::StartsWith | Op::EndsWith | Op::Word | Op::NoWord) {
                    return Err(FilterError::BadModifier(format!(
                        "{key:?}: a date takes before, after, by, is, not, none or any"
                    )));
                }
                let at = parse_when(value, clock)?;
                let day = clock.day_of(at);
                let bound =
                    |d: Option<NaiveDate>| d.and_then(|d| clock.start_of(d)).map_or(i64::MAX, |t| t.timestamp_millis());
                Value::Date { at: at.timestamp_millis(), day_start: bound(Some(day)), day_end: bound(day.succ_opt()) }
            }
            Kind::Number => {
                if matches!(op, Op::Has | Op::Hasnt | Op::StartsWith | Op::EndsWith | Op::Word | Op::NoWord) {
                    return Err(FilterError::BadModifier(format!(
                        "{key:?}: a number takes before/below, after/above, by, is, not, none or any"
                    )));
                }
                Value::Number(
                    value.parse().map_err(|_| FilterError::BadValue(format!("{key}: {value:?} is not a number")))?,
                )
            }
            Kind::Set => {
                if matches!(op, Op::Before | Op::After | Op::By) {
                    return Err(FilterError::BadModifier(format!(
                        "{key:?}: a set takes has, hasnt, is, not, none or any"
                    )));
                }
                Value::Text(value.to_lowercase())
            }
            Kind::Text => {
                if attr == Attr::Priority {
                    // `pri:low` means L; what cannot be a priority is refused, as setting one would be.
                    let p = value.parse::<Priority>().map_err(FilterError::BadValue)?;
                    Value::Text(p.as_str().to_lowercase())
                } else {
                    Value::Text(value.to_lowercase())
                }
            }
        }
    };
    Ok(Expr::Compare { attr, op, value })
}

impl Filter {
    /// A filter that keeps every live node of every kind.
    #[must_use]
    pub fn everything() -> Self {
        Self { kinds: Vec::new(), open_only: false, ..Self::default() }
    }

    /// Parses filter words on `clock` (which anchors relative dates and virtual tags like `+TODAY`).
    pub fn parse<S: AsRef<str>>(words: &[S], clock: &Clock) -> Result<Self, FilterError> {
        let mut parser = Parser { tokens: tokens(words), at: 0, depth: 0, clock, mentions: Mentions::default() };
        let expr = if parser.tokens.is_empty() { Expr::True } else { parser.xor()? };
        if parser.at < parser.tokens.len() {
            return Err(FilterError::Syntax("a ')' in the filter closes nothing".into()));
        }
        let Mentions { status, kind, deleted } = parser.mentions;
        Ok(Self {
            // Asking for a status means tasks unless a kind is given too.
            kinds: if kind { Vec::new() } else { vec![NodeKind::Task] },
            open_only: !status && !kind,
            deleted,
            expr,
            bounds: Bounds::at(clock),
        })
    }

    /// UDA names the filter compares (the listing checks that some node has each).
    #[must_use]
    pub fn udas(&self) -> Vec<String> {
        fn walk(e: &Expr, out: &mut Vec<String>) {
            match e {
                Expr::And(list) | Expr::Or(list) => list.iter().for_each(|e| walk(e, out)),
                Expr::Xor(a, b) => {
                    walk(a, out);
                    walk(b, out);
                }
                Expr::Not(e) => walk(e, out),
                Expr::Compare { attr: Attr::Uda(name), .. } if !RECURRENCE.contains(&name.as_str()) => {
                    out.push(name.clone());
                }
                _ => {}
            }
        }
        let mut out = Vec::new();
        walk(&self.expr, &mut out);
        out
    }

    /// Whether deciding a row needs the dependency graph ([`Graph`]) and urgency.
    #[must_use]
    pub fn needs_graph(&self) -> bool {
        fn walk(e: &Expr) -> bool {
            match e {
                Expr::And(list) | Expr::Or(list) => list.iter().any(walk),
                Expr::Xor(a, b) => walk(a) || walk(b),
                Expr::Not(e) => walk(e),
                Expr::Virtual(v) => v.needs_graph(),
                Expr::Compare { attr: Attr::Urgency, .. } => true,
                _ => false,
            }
        }
        walk(&self.expr)
    }

    /// Whether `row` passes at `now_ms` (which decides whether a task still
    /// waits). `graph` is needed when [`Self::needs_graph`].
    #[must_use]
    pub fn matches(&self, row: &NodeSummary, now_ms: i64, graph: Option<&Graph>) -> bool {
        if row.deleted && !self.deleted {
            return false;
        }
        if !self.kinds.is_empty() && !self.kinds.contains(&row.kind) {
            return false;
        }
        let status = listed_status(row, now_ms);
        if self.open_only
            && row.kind == NodeKind::Task
            && !matches!(status, Some(Listed::Is(Status::Pending | Status::Active)))
        {
            return false;
        }
        Eval { row, status, now_ms, bounds: &self.bounds, graph }.expr(&self.expr)
    }
}

/// The recurrence attributes, kept in the UDA map under Taskwarrior's names.
const RECURRENCE: &[&str] = &["recur", "until", "mask", "imask", "parent"];

/// The dependency graph of a listing, as Taskwarrior sees it: a dependency
/// counts while both tasks are live (neither done, cancelled nor deleted;
/// waiting tasks and recurring templates are live).
#[derive(Debug, Default)]
pub struct Graph {
    /// Live tasks.
    pub live: HashSet<NodeId>,
    /// Tasks some live task depends on.
    pub depended_on: HashSet<NodeId>,
    /// The live task created last (then the greatest id): `+LATEST`.
    pub latest: Option<(i64, NodeId)>,
}

impl Graph {
    /// Adds a row (call for every row of the replica).
    pub fn add(&mut self, row: &NodeSummary) {
        if is_live(row) {
            self.live.insert(row.id);
            self.depended_on.extend(row.depends.iter().copied());
            let at = (row.created, row.id);
            if self.latest.is_none_or(|latest| at > latest) {
                self.latest = Some(at);
            }
        }
    }

    /// A live task that depends on a live task.
    #[must_use]
    pub fn blocked(&self, row: &NodeSummary) -> bool {
        !row.depends.is_empty() && self.live.contains(&row.id) && row.depends.iter().any(|d| self.live.contains(d))
    }

    /// A live task some live task depends on.
    #[must_use]
    pub fn blocking(&self, row: &NodeSummary) -> bool {
        !self.depended_on.is_empty() && self.depended_on.contains(&row.id) && self.live.contains(&row.id)
    }
}

fn is_live(row: &NodeSummary) -> bool {
    !row.deleted
        && row.kind == NodeKind::Task
        && matches!(row.status, Some(Status::Pending | Status::Active | Status::Waiting))
}

/// A recurring template: a task with `recur` and no `parent`.
#[must_use]
pub fn is_template(row: &NodeSummary) -> bool {
    row.uda(crate::recur::RECUR).is_some() && row.uda(crate::recur::PARENT).is_none()
}

/// A row's status as a filter sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Listed {
    Is(Status),
    Recurring,
    Deleted,
}

fn listed_status(row: &NodeSummary, now_ms: i64) -> Option<Listed> {
    if row.deleted {
        return Some(Listed::Deleted);
    }
    let status = row.effective_status(now_ms)?;
    if is_template(row) && !matches!(status, Status::Done | Status::Cancelled) {
        return Some(Listed::Recurring);
    }
    Some(Listed::Is(status))
}

struct Eval<'a> {
    row: &'a NodeSummary,
    status: Option<Listed>,
    now_ms: i64,
    bounds: &'a Bounds,
    graph: Option<&'a Graph>,
}

/// Case-insensitive containment without allocating for ASCII text.
fn contains_ci(haystack: &str, needle_lower: &str) -> bool {
    if haystack.is_ascii() && needle_lower.is_ascii() {
        let (h, n) = (haystack.as_bytes(), needle_lower.as_bytes());
        return n.is_empty() || h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n));
    }
    haystack.to_lowercase().contains(needle_lower)
}

fn lower(s: &str) -> std::borrow::Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase() || !b.is_ascii()) {
        std::borrow::Cow::Owned(s.to_lowercase())
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

fn whole_word(haystack: &str, word: &str) -> bool {
    // As Taskwarrior's `\bword\b`: `work.reports` is a word of `work.reports.q1`.
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    if word.is_empty() {
        return false;
    }
    // Every occurrence, overlapping ones too (`a.a` in `a.a.a`).
    let mut from = 0;
    while let Some(found) = haystack.get(from..).and_then(|rest| rest.find(word)) {
        let at = from + found;
        let bounded = !haystack[..at].chars().next_back().is_some_and(is_word)
            && !haystack[at + word.len()..].chars().next().is_some_and(is_word);
        if bounded {
            return true;
        }
        from = at + haystack[at..].chars().next().map_or(1, char::len_utf8);
    }
    false
}

impl Eval<'_> {
    fn expr(&self, e: &Expr) -> bool {
        match e {
            Expr::True => true,
            Expr::And(list) => list.iter().all(|e| self.expr(e)),
            Expr::Or(list) => list.iter().any(|e| self.expr(e)),
            Expr::Xor(a, b) => self.expr(a) != self.expr(b),
            Expr::Not(e) => !self.expr(e),
            // Held lower case by the parser; a filter from elsewhere (an
            // older client over RPC) may not be.
            Expr::Tag(t) => {
                let t = lower(t);
                self.row.tags.iter().any(|x| lower(x) == t)
            }
            Expr::Virtual(v) => self.virtual_tag(*v),
            Expr::Status(list) => self.status.is_some_and(|s| {
                list.iter().any(|want| match (want, s) {
                    (StatusIs::Is(a), Listed::Is(b)) => *a == b,
                    (StatusIs::Recurring, Listed::Recurring) | (StatusIs::Deleted, Listed::Deleted) => true,
                    _ => false,
                })
            }),
            Expr::Kind(list) => list.contains(&self.row.kind),
            Expr::Word(w) => contains_ci(&self.row.title, w),
            Expr::Compare { attr, op, value } => self.compare(attr, *op, value),
        }
    }

    fn due_open(&self) -> Option<i64> {
        let open = !matches!(self.status, Some(Listed::Is(Status::Done | Status::Cancelled) | Listed::Deleted));
        self.row.due.filter(|_| open)
    }

    fn virtual_tag(&self, v: Virtual) -> bool {
        let r = self.row;
        let b = self.bounds;
        let within = |(from, to): (i64, i64)| self.due_open().is_some_and(|d| d >= from && d < to);
        match v {
            Virtual::Active => r.start.is_some() || r.status == Some(Status::Active),
            Virtual::Blocked => self.graph.is_some_and(|g| g.blocked(r)),
            Virtual::Unblocked => !self.graph.is_some_and(|g| g.blocked(r)),
            Virtual::Blocking => self.graph.is_some_and(|g| g.blocking(r)),
            Virtual::Latest => self.graph.and_then(|g| g.latest).is_some_and(|(_, id)| id == r.id),
            Virtual::Ready => {
                matches!(self.status, Some(Listed::Is(Status::Pending | Status::Active)))
                    && !self.graph.is_some_and(|g| g.blocked(r))
                    && r.scheduled.is_none_or(|s| s < self.now_ms)
            }
            Virtual::Due => within((b.days[1], b.imminent)),
            Virtual::Today => within((b.days[1], b.days[2])),
            Virtual::Yesterday => within((b.days[0], b.days[1])),
            Virtual::Tomorrow => within((b.days[2], b.days[3])),
            Virtual::Overdue => {
                self.due_open().is_some_and(|d| d < self.now_ms) && self.status != Some(Listed::Recurring)
            }
            Virtual::Week => within(b.week),
            Virtual::Month => within(b.month),
            Virtual::Quarter => within(b.quarter),
            Virtual::Year => within(b.year),
            Virtual::Waiting => self.status == Some(Listed::Is(Status::Waiting)),
            Virtual::Pending => matches!(self.status, Some(Listed::Is(Status::Pending | Status::Active))),
            Virtual::Completed => self.status == Some(Listed::Is(Status::Done)),
            Virtual::Deleted => self.status == Some(Listed::Deleted),
            Virtual::Recurring => r.uda("recur").is_some(),
            Virtual::Template => is_template(r),
            Virtual::Instance => r.uda("parent").is_some(),
            Virtual::Tagged => !r.tags.is_empty(),
            Virtual::Annotated => r.annotations > 0,
            Virtual::Project => r.project.as_deref().is_some_and(|p| !p.is_empty()),
            Virtual::Priority => r.priority.is_some(),
            Virtual::Scheduled => r.scheduled.is_some(),
            Virtual::Until => r.uda("until").is_some(),
            // Taskwarrior's priority is a UDA too.
            Virtual::Uda => r.priority.is_some() || r.uda.iter().any(|(k, _)| !RECURRENCE.contains(&k.as_str())),
        }
    }

    fn date_of(&self, attr: &Attr) -> Option<i64> {
        let r = self.row;
        match attr {
            Attr::Due => r.due,
            Attr::Wait => r.wait,
            Attr::Scheduled => r.scheduled,
            Attr::Entry => Some(r.created),
            Attr::End => r.end,
            Attr::Start => r.start,
            Attr::Modified => Some(r.modified),
            Attr::Until => r.uda("until").and_then(|u| crate::recur::parse_until(u).ok()).map(|t| t.timestamp_millis()),
            _ => None,
        }
    }

    fn text_of(&self, attr: &Attr) -> Option<std::borrow::Cow<'_, str>> {
        use std::borrow::Cow;
        let r = self.row;
        match attr {
            Attr::Description => Some(Cow::Borrowed(r.title.as_str())),
            Attr::Project => r.project.as_deref().map(Cow::Borrowed),
            Attr::Priority => r.priority.map(|p| Cow::Borrowed(p.as_str())),
            Attr::Uuid => Some(Cow::Owned(r.id.to_uuid())),
            Attr::Uda(name) => r.uda(name).map(Cow::Borrowed),
            _ => None,
        }
    }

    fn compare(&self, attr: &Attr, op: Op, value: &Value) -> bool {
        match kind_of(attr) {
            Kind::Date => {
                let t = self.date_of(attr);
                match (op, value) {
                    (Op::None, _) | (Op::Partial | Op::Is, Value::Empty) => t.is_none(),
                    (Op::Any, _) | (Op::Not | Op::Isnt, Value::Empty) => t.is_some(),
                    (_, Value::Date { at, day_start, day_end }) => {
                        let same_day = |t: i64| t >= *day_start && t < *day_end;
                        let secs = |ms: i64| ms.div_euclid(1000);
                        match op {
                            Op::Partial => t.is_some_and(same_day),
                            Op::Not => !t.is_some_and(same_day),
                            Op::Is => t.is_some_and(|t| secs(t) == secs(*at)),
                            Op::Isnt => t.is_none_or(|t| secs(t) != secs(*at)),
                            Op::Before => t.is_some_and(|t| t < *at),
                            Op::After => t.is_some_and(|t| t > *at),
                            Op::By => t.is_some_and(|t| t <= *at),
                            _ => false,
                        }
                    }
                    _ => false,
                }
            }
            Kind::Number => {
                let n = match attr {
                    Attr::Urgency => self.graph.map(|g| urgency(self.row, g, self.now_ms)),
                    Attr::Uda(name) => self.row.uda(name).and_then(|v| v.parse::<f64>().ok()),
                    _ => None,
                };
                match (op, value) {
                    (Op::None, _) | (Op::Partial | Op::Is, Value::Empty) => n.is_none(),
                    (Op::Any, _) | (Op::Not | Op::Isnt, Value::Empty) => n.is_some(),
                    (_, Value::Number(v)) => match op {
                        Op::Partial | Op::Is => n.is_some_and(|n| (n - v).abs() < 1e-9),
                        Op::Not | Op::Isnt => !n.is_some_and(|n| (n - v).abs() < 1e-9),
                        Op::Before => n.is_some_and(|n| n < *v),
                        Op::After => n.is_some_and(|n| n > *v),
                        Op::By => n.is_some_and(|n| n <= *v),
                        _ => false,
                    },
                    _ => false,
                }
            }
            Kind::Set => {
                let items: Vec<String> = match attr {
                    Attr::Tags => self.row.tags.iter().map(|t| t.to_lowercase()).collect(),
                    _ => self.row.depends.iter().flat_map(|d| [d.to_hex(), d.to_uuid()]).collect(),
                };
                let want = match value {
                    Value::Text(v) => v.as_str(),
                    _ => "",
                };
                let has = |pred: &dyn Fn(&str) -> bool| items.iter().any(|i| pred(i));
                let member = |i: &str| match attr {
                    Attr::Tags => i == want,
                    _ => i.starts_with(want),
                };
                match (op, value) {
                    (Op::None, _) | (Op::Partial | Op::Is, Value::Empty) => items.is_empty(),
                    (Op::Any, _) | (Op::Not | Op::Isnt, Value::Empty) => !items.is_empty(),
                    (Op::Partial | Op::Is | Op::Has | Op::Word, _) => has(&member),
                    (Op::Not | Op::Isnt | Op::Hasnt | Op::NoWord, _) => !has(&member),
                    (Op::StartsWith, _) => has(&|i| i.starts_with(want)),
                    (Op::EndsWith, _) => has(&|i| i.ends_with(want)),
                    _ => false,
                }
            }
            Kind::Text => {
                let text = self.text_of(attr).filter(|t| !t.is_empty());
                let want = match value {
                    Value::Text(v) => v.as_str(),
                    _ => "",
                };
                if matches!(op, Op::Before | Op::After | Op::By) {
                    if *attr == Attr::Priority {
                        // Taskwarrior's order: H above M above L above none.
                        let rank = |p: &str| match p {
                            "h" | "H" => 3,
                            "m" | "M" => 2,
                            "l" | "L" => 1,
                            _ => 0,
                        };
                        return ordered(op, rank(text.as_deref().unwrap_or("")).cmp(&rank(want)));
                    }
                    // A UDA holding a number is compared as one (`estimate.above:10`).
                    let number = |t: &str| t.trim().parse::<f64>().ok();
                    if let (Attr::Uda(_), Some(have), Some(want)) =
                        (attr, text.as_deref().and_then(number), number(want))
                    {
                        return have.partial_cmp(&want).is_some_and(|o| ordered(op, o));
                    }
                }
                let Some(text) = text else {
                    // A missing value is the empty text.
                    return match op {
                        Op::None => true,
                        Op::Partial | Op::Is => want.is_empty(),
                        Op::Not | Op::Isnt | Op::Hasnt | Op::NoWord => !want.is_empty(),
                        _ => false,
                    };
                };
                let text = lower(&text);
                let text = text.as_ref();
                match op {
                    Op::None => false,
                    Op::Any => true,
                    Op::Partial => !want.is_empty() && text.starts_with(want),
                    Op::Not => want.is_empty() || !text.starts_with(want),
                    Op::Is => text == want,
                    Op::Isnt => text != want,
                    Op::Has => text.contains(want),
                    Op::Hasnt => !text.contains(want),
                    Op::StartsWith => text.starts_with(want),
                    Op::EndsWith => text.ends_with(want),
                    Op::Word => whole_word(text, want),
                    Op::NoWord => !whole_word(text, want),
                    Op::Before => text < want,
                    Op::After => text > want,
                    Op::By => text <= want,
                }
            }
        }
    }
}

/// Whether `ordering` (of a value against the one asked for) passes
/// `.before`, `.after` or `.by`.
fn ordered(op: Op, ordering: std::cmp::Ordering) -> bool {
    match op {
        Op::Before => ordering.is_lt(),
        Op::After => ordering.is_gt(),
        Op::By => ordering.is_le(),
        _ => false,
    }
}

/// Taskwarrior's urgency with all of its default coefficients: `next` tag
/// 15, due 12 (scaled over 21 days), blocking 8, priority H 6 / M 3.9 / L
/// 1.8, scheduled 5, active 4, age 2 (whole days, over a year), annotations,
/// tags and project 1 each, waiting −3 and blocked −5.
#[must_use]
#[allow(clippy::cast_precision_loss)]
pub fn urgency(row: &NodeSummary, graph: &Graph, now_ms: i64) -> f64 {
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
    if row.start.is_some() || row.status == Some(Status::Active) {
        u += 4.0;
    }
    if row.scheduled.is_some_and(|s| s < now_ms) {
        u += 5.0;
    }
    // Whole days, as Taskwarrior counts them.
    let age_days = (now_ms - row.created).div_euclid(86_400_000);
    u += 2.0 * if age_days > 365 { 1.0 } else { age_days.max(0) as f64 / 365.0 };
    u += match row.tags.len() {
        0 => 0.0,
        1 => 0.8,
        2 => 0.9,
        _ => 1.0,
    };
    if row.project.as_deref().is_some_and(|p| !p.is_empty()) {
        u += 1.0;
    }
    u += match row.annotations {
        0 => 0.0,
        1 => 0.8,
        2 => 0.9,
        _ => 1.0,
    };
    if graph.blocking(row) {
        u += 8.0;
    }
    if graph.blocked(row) {
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
    graph: &Graph,
    now_ms: i64,
    limit: Option<usize>,
) -> Vec<(f64, NodeSummary)> {
    /// What the order looks at, small enough to sort 10,000 rows without moving them.
    struct Key {
        task: bool,
        urgency: f64,
        due: i64,
        modified: i64,
        id: NodeId,
        at: usize,
    }
    let mut keys: Vec<Key> = rows
        .iter()
        .enumerate()
        .map(|(at, r)| Key {
            task: r.kind == NodeKind::Task,
            urgency: urgency(r, graph, now_ms),
            due: r.due.unwrap_or(i64::MAX),
            modified: r.modified,
            id: r.id,
            at,
        })
        .collect();
    let order = |a: &Key, b: &Key| {
        b.task
            .cmp(&a.task)
            .then_with(|| b.urgency.total_cmp(&a.urgency))
            .then_with(|| a.due.cmp(&b.due))
            .then_with(|| b.modified.cmp(&a.modified))
            .then_with(|| a.id.cmp(&b.id))
    };
    if let Some(n) = limit.filter(|n| *n < keys.len()) {
        if n == 0 {
            return Vec::new();
        }
        keys.select_nth_unstable_by(n - 1, order);
        keys.truncate(n);
    }
    keys.sort_unstable_by(order);
    let mut slots: Vec<Option<NodeSummary>> = rows.into_iter().map(Some).collect();
    keys.iter().filter_map(|k| Some((k.urgency, slots.get_mut(k.at)?.take()?))).collect()
}

#[cfg(test)]
mod tests;
