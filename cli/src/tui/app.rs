//! The TUI's state and what each key does to it, with no terminal and no I/O.
//!
//! A key becomes an [`Action`] that the session carries out against the
//! replica; what comes back (rows, a node, sync health, an error) enters
//! through [`App::apply`]. Drawing (`view`) only reads an `App`, so every
//! behaviour here is testable without a terminal.

use std::cell::Cell;

use chrono::{DateTime, Utc};
use heph_engine::Clock;
use heph_engine::sync::SyncHealth;
use heph_engine::{Node, NodeId, NodeKind, NodeSummary};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// One row of the list.
#[derive(Clone, Debug)]
pub struct Row {
    /// The index row.
    pub summary: NodeSummary,
    /// The shortest unique id prefix.
    pub short: String,
    /// Taskwarrior-style urgency.
    pub urgency: f64,
}

/// A node named in the node view: its prefix and title (none when the node
/// is not in this replica).
#[derive(Clone, Debug)]
pub struct Named {
    /// The shortest unique id prefix.
    pub short: String,
    /// Its title.
    pub title: Option<String>,
}

/// What the node view shows.
#[derive(Clone, Debug)]
pub struct NodeView {
    /// The node in full.
    pub node: Node,
    /// Its shortest unique id prefix.
    pub short: String,
    /// The tasks it depends on.
    pub depends: Vec<Named>,
    /// The nodes it links to.
    pub links: Vec<Named>,
    /// The nodes that link to it.
    pub backlinks: Vec<Named>,
}

/// Where keys go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The task list.
    List,
    /// One node in full.
    Node,
    /// Typing a task to add.
    Add,
    /// Typing search words.
    Search,
    /// The key list, over the mode it was opened from.
    Help,
}

/// What a key asks the session to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing beyond the state change.
    None,
    /// Leave the TUI.
    Quit,
    /// Add a task from quick-add words (`Buy milk due:tomorrow +errand`).
    Add(String),
    /// Mark a task done.
    Done(NodeId),
    /// Load a node for the node view.
    Open(NodeId),
    /// Edit a node in the user's editor.
    Edit(NodeId),
}

/// Results the session hands back to the state.
#[derive(Debug)]
pub enum Data {
    /// The list, most urgent first.
    Rows(Vec<Row>),
    /// A node for the node view.
    Node(Box<NodeView>),
    /// How sync stands.
    Health(SyncHealth),
    /// Something failed; shown in the status line until the next key.
    Error(String),
    /// Something worth a word (what a write did).
    Info(String),
}

/// One part of the status line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Badge {
    /// `⟳ <age>` since the last good sync.
    Synced(String),
    /// The daemon has never been in sync with the hub.
    NeverSynced,
    /// The hub is unreachable.
    Offline,
    /// The hub refused our credentials: a new login is needed.
    Auth,
    /// Nodes with unresolved conflicts.
    Conflicts(usize),
    /// No daemon runs for this store.
    NoDaemon,
}

/// The TUI's whole state.
pub struct App {
    filter: String,
    rows: Vec<Row>,
    /// Indexes into `rows` of the rows matching the search, in order.
    shown: Vec<usize>,
    /// Index into `shown`.
    selected: usize,
    /// The first shown row on screen; the drawing moves it to keep the
    /// selection visible.
    offset: Cell<usize>,
    mode: Mode,
    help_over: Mode,
    input: String,
    search: String,
    node: Option<NodeView>,
    node_scroll: u16,
    health: Option<SyncHealth>,
    message: Option<(String, bool)>,
    select_next: Option<NodeId>,
    now: DateTime<Utc>,
    local: Clock,
}

impl App {
    /// An empty TUI for the list selected by `filter` (the words as given),
    /// with the clock at `local`.
    #[must_use]
    pub fn new(filter: &str, local: &Clock) -> Self {
        Self {
            filter: filter.to_string(),
            rows: Vec::new(),
            shown: Vec::new(),
            selected: 0,
            offset: Cell::new(0),
            mode: Mode::List,
            help_over: Mode::List,
            input: String::new(),
            search: String::new(),
            node: None,
            node_scroll: 0,
            health: None,
            message: None,
            select_next: None,
            now: local.now,
            local: local.clone(),
        }
    }

    /// Moves the clock (the 2 s tick): ages in the status line follow it.
    pub fn set_clock(&mut self, local: &Clock) {
        self.local = local.clone();
        self.now = local.now;
    }

    /// Takes in what the session loaded or did.
    pub fn apply(&mut self, data: Data) {
        match data {
            Data::Rows(rows) => {
                let keep = self.select_next.take().or_else(|| self.selected_row().map(|r| r.summary.id));
                self.rows = rows;
                self.refilter();
                if let Some(i) = keep.and_then(|id| self.shown.iter().position(|&r| self.rows[r].summary.id == id)) {
                    self.selected = i;
                }
            }
            Data::Node(view) => {
                if self.node.as_ref().is_none_or(|n| n.node.id != view.node.id) {
                    self.node_scroll = 0;
                }
                self.node = Some(*view);
                if self.mode == Mode::List {
                    self.mode = Mode::Node;
                }
            }
            Data::Health(h) => self.health = Some(h),
            Data::Error(e) => self.message = Some((e, true)),
            Data::Info(m) => self.message = Some((m, false)),
        }
    }

    /// After the next [`Data::Rows`], select this node if it is listed (a task just added).
    pub fn select_after_load(&mut self, id: NodeId) {
        self.select_next = Some(id);
    }

    /// What a key does: changes the state, and says what the session must do.
    pub fn handle_key(&mut self, key: KeyEvent) -> Action {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return Action::Quit;
        }
        self.message = None;
        match self.mode {
            Mode::List => self.list_key(key),
            Mode::Node => self.node_key(key),
            Mode::Add | Mode::Search => self.input_key(key),
            Mode::Help => {
                self.mode = self.help_over;
                Action::None
            }
        }
    }

    fn list_key(&mut self, key: KeyEvent) -> Action {
        match key.code {
            KeyCode::Char('q') => return Action::Quit,
            KeyCode::Char('j') | KeyCode::Down => self.select(self.selected.saturating_add(1)),
            KeyCode::Char('k') | KeyCode::Up => self.select(self.selected.saturating_sub(1)),
            KeyCode::PageDown => self.select(self.selected.saturating_add(10)),
            KeyCode::PageUp => self.select(self.selected.saturating_sub(10)),
            KeyCode::Char('g') | KeyCode::Home => self.select(0),
            KeyCode::Char('G') | KeyCode::End => self.select(usize::MAX),
            KeyCode::Char('a') => {
                self.input.clear();
                self.mode = Mode::Add;
            }
            KeyCode::Char('/') => {
                self.input = self.search.clone();
                self.mode = Mode::Search;
            }
            KeyCode::Esc if !self.search.is_empty() => {
                self.search.clear();
                self.refilter();
            }
            KeyCode::Char('?') => self.help(),
            KeyCode::Enter | KeyCode::Char('l') | KeyCode::Right => {
                if let Some(id) = self.selected_row().map(|r| r.summary.id) {
                    return Action::Open(id);
                }
            }
            KeyCode::Char('x') => return self.done(self.selected_row().map(|r| (r.summary.id, r.summary.kind))),
            KeyCode::Char('e') => {
                if let Some(id) = self.selected_row().map(|r| r.summary.id) {
                    return Action::Edit(id);
                }
            }
            _ => {}
        }
        Action::None
    }

    fn node_key(&mut self, key: KeyEvent) -> Action {
        match key.code {
            KeyCode::Esc | KeyCode::Char('q' | 'h') | KeyCode::Left | KeyCode::Backspace => {
                self.mode = Mode::List;
                self.node = None;
            }
            KeyCode::Char('j') | KeyCode::Down => self.node_scroll = self.node_scroll.saturating_add(1),
            KeyCode::Char('k') | KeyCode::Up => self.node_scroll = self.node_scroll.saturating_sub(1),
            KeyCode::Char('g') | KeyCode::Home => self.node_scroll = 0,
            KeyCode::Char('?') => self.help(),
            KeyCode::Char('x') => return self.done(self.node.as_ref().map(|n| (n.node.id, n.node.kind))),
            KeyCode::Char('e') => {
                if let Some(n) = &self.node {
                    return Action::Edit(n.node.id);
                }
            }
            _ => {}
        }
        Action::None
    }

    fn input_key(&mut self, key: KeyEvent) -> Action {
        let searching = self.mode == Mode::Search;
        match key.code {
            KeyCode::Esc => {
                self.mode = Mode::List;
                if searching {
                    self.search.clear();
                    self.refilter();
                }
                return Action::None;
            }
            KeyCode::Enter => {
                self.mode = Mode::List;
                let text = std::mem::take(&mut self.input);
                if !searching && !text.trim().is_empty() {
                    return Action::Add(text);
                }
                return Action::None;
            }
            KeyCode::Backspace => {
                self.input.pop();
            }
            KeyCode::Char('u') if key.modifiers.contains(KeyModifiers::CONTROL) => self.input.clear(),
            KeyCode::Char(c) => self.input.push(c),
            _ => return Action::None,
        }
        if searching {
            // The list follows the words as they are typed.
            self.search = self.input.clone();
            self.refilter();
        }
        Action::None
    }

    fn done(&mut self, target: Option<(NodeId, NodeKind)>) -> Action {
        match target {
            Some((id, NodeKind::Task)) => Action::Done(id),
            Some((_, kind)) => {
                self.message = Some((format!("this is a {kind}; only tasks have a status"), true));
                Action::None
            }
            None => Action::None,
        }
    }

    fn help(&mut self) {
        self.help_over = self.mode;
        self.mode = Mode::Help;
    }

    fn select(&mut self, i: usize) {
        self.selected = i.min(self.shown.len().saturating_sub(1));
    }

    /// Recomputes the rows matching the search: every word must appear in
    /// the title, project, tags or id prefix (case-insensitive).
    fn refilter(&mut self) {
        let words: Vec<String> = self.search.split_whitespace().map(str::to_lowercase).collect();
        self.shown = self
            .rows
            .iter()
            .enumerate()
            .filter(|(_, r)| words.is_empty() || matches(r, &words))
            .map(|(i, _)| i)
            .collect();
        self.select(self.selected);
    }

    /// Where keys go now.
    #[must_use]
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The filter words the list was started with.
    #[must_use]
    pub fn filter(&self) -> &str {
        &self.filter
    }

    /// Every loaded row, most urgent first.
    #[must_use]
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// How many rows match the search.
    #[must_use]
    pub fn shown_len(&self) -> usize {
        self.shown.len()
    }

    /// The `i`th row matching the search.
    #[must_use]
    pub fn shown_row(&self, i: usize) -> Option<&Row> {
        self.shown.get(i).map(|&r| &self.rows[r])
    }

    /// The index (among the matching rows) of the selection.
    #[must_use]
    pub fn selected(&self) -> usize {
        self.selected
    }

    /// The selected row.
    #[must_use]
    pub fn selected_row(&self) -> Option<&Row> {
        self.shown_row(self.selected)
    }

    /// The first matching row on a screen of `height` rows that shows the
    /// selection; remembered, so the list scrolls only when it must.
    #[must_use]
    pub fn scroll(&self, height: usize) -> usize {
        let mut offset = self.offset.get().min(self.shown.len().saturating_sub(1));
        if self.selected < offset {
            offset = self.selected;
        } else if height > 0 && self.selected >= offset + height {
            offset = self.selected + 1 - height;
        }
        self.offset.set(offset);
        offset
    }

    /// The text being typed (add or search).
    #[must_use]
    pub fn input(&self) -> &str {
        &self.input
    }

    /// The search words in force.
    #[must_use]
    pub fn search(&self) -> &str {
        &self.search
    }

    /// The node view's node, and how far it is scrolled.
    #[must_use]
    pub fn node(&self) -> Option<(&NodeView, u16)> {
        self.node.as_ref().map(|n| (n, self.node_scroll))
    }

    /// The node the view shows, if it is open (to reload it when the replica changes).
    #[must_use]
    pub fn open_node(&self) -> Option<NodeId> {
        self.node.as_ref().map(|n| n.node.id)
    }

    /// The message of the last action, and whether it is an error.
    #[must_use]
    pub fn message(&self) -> Option<(&str, bool)> {
        self.message.as_ref().map(|(m, e)| (m.as_str(), *e))
    }

    /// The clock, local time.
    #[must_use]
    pub fn local(&self) -> &Clock {
        &self.local
    }

    /// The status line's badges, from the last sync health.
    #[must_use]
    pub fn badges(&self) -> Vec<Badge> {
        let Some(h) = &self.health else { return Vec::new() };
        let mut out = Vec::new();
        if h.daemon {
            out.push(match h.last_success {
                Some(t) => Badge::Synced(age(self.now, t)),
                None => Badge::NeverSynced,
            });
            if h.auth_failure {
                out.push(Badge::Auth);
            } else if h.offline && !h.connected {
                out.push(Badge::Offline);
            }
        } else {
            out.push(Badge::NoDaemon);
        }
        if h.conflicts > 0 {
            out.push(Badge::Conflicts(h.conflicts));
        }
        out
    }
}

fn matches(row: &Row, words: &[String]) -> bool {
    let s = &row.summary;
    let hay =
        format!("{} {} {} {}", s.title, s.project.as_deref().unwrap_or(""), s.tags.join(" "), row.short).to_lowercase();
    words.iter().all(|w| hay.contains(w.as_str()))
}

/// How long ago `then` was, in its largest unit: `12s`, `5m`, `3h`, `2d`.
#[must_use]
pub fn age(now: DateTime<Utc>, then: DateTime<Utc>) -> String {
    let s = (now - then).num_seconds().max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}
