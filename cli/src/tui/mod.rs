//! `heph tui`: a full-screen task list and node view that follow the replica
//! live.
//!
//! - [`app`]: the state and what keys do to it (no terminal, no I/O);
//! - [`view`]: drawing an [`App`] with ratatui;
//! - [`source`]: the daemon or the store, and the cheap change check;
//! - this file: [`Session`], which carries out what keys ask against a
//!   [`Source`], and [`run`], the terminal and its event loop.
//!
//! Every failure of the store or the daemon ends up in the status line; the
//! terminal is restored on every exit, a panic included.

pub mod app;
pub mod source;
pub mod view;

#[cfg(test)]
mod tests;

use std::io::Stdout;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use heph_engine::{Clock, Filter};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{self, Event, KeyEvent, KeyEventKind};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode};

pub use app::{Action, App, Data};
pub use source::Source;

/// How often the replica is checked for changes: a change made elsewhere
/// shows within this.
const POLL: Duration = Duration::from_millis(250);
/// The tick: sync health is read again and ages move on while idle.
const TICK: Duration = Duration::from_secs(2);

/// The state joined to the replica: keys in, loads and writes out.
pub struct Session {
    /// What is shown.
    pub app: App,
    source: Source,
    filter: Filter,
}

impl Session {
    /// A session on the store at `db` (through its daemon if one runs),
    /// listing what `words` select (as `heph ls`), and its first load;
    /// recurring tasks keep `limit` future instances made.
    pub fn open(db: Option<&Path>, words: &[String], local: &Clock, limit: u32) -> Result<Self> {
        let filter = Filter::parse(words, local)?;
        let source = Source::open(db, limit)?;
        let mut session = Self { app: App::new(&words.join(" "), local), source, filter };
        session.reload();
        Ok(session)
    }

    /// Reads the list (and the open node) again.
    pub fn reload(&mut self) {
        match self.source.load(&self.filter, self.app.local().now) {
            Ok((rows, health)) => {
                self.app.apply(Data::Rows(rows));
                self.app.apply(Data::Health(health));
            }
            Err(e) => self.app.apply(Data::Error(format!("{e:#}"))),
        }
        if let Some(id) = self.app.open_node() {
            match self.source.node(id) {
                Ok(view) => self.app.apply(Data::Node(Box::new(view))),
                Err(e) => self.app.apply(Data::Error(format!("{e:#}"))),
            }
        }
    }

    /// Reads again if the replica changed. Returns whether it did.
    pub fn poll(&mut self) -> bool {
        match self.source.changed() {
            Ok(false) => false,
            Ok(true) => {
                self.reload();
                true
            }
            Err(e) => {
                self.app.apply(Data::Error(format!("{e:#}")));
                true
            }
        }
    }

    /// The tick: moves the clock, looks for a daemon that started since,
    /// and reads sync health again.
    pub fn tick(&mut self, local: &Clock) {
        self.app.set_clock(local);
        if self.source.reconnect() {
            self.reload();
            return;
        }
        match self.source.health() {
            Ok(h) => self.app.apply(Data::Health(h)),
            Err(e) => self.app.apply(Data::Error(format!("{e:#}"))),
        }
    }

    /// Handles one key; `run_editor` gets the terminal to the editor and
    /// back (see [`Source::edit`]). Returns `false` when the TUI should end.
    pub fn key(&mut self, key: KeyEvent, run_editor: impl FnOnce(&Path) -> Result<()>) -> bool {
        let local = self.app.local().clone();
        let local = &local;
        let outcome = match self.app.handle_key(key) {
            Action::None => return true,
            Action::Quit => return false,
            Action::Open(id) => self.source.node(id).map(|v| self.app.apply(Data::Node(Box::new(v)))),
            Action::Add(text) => self.source.add(&text, local).map(|node| {
                self.app.select_after_load(node.id);
                self.reload();
                self.app.apply(Data::Info(format!("Added '{}'", node.title)));
            }),
            Action::Done(id) => self.source.done(id, local.now).map(|node| {
                self.reload();
                self.app.apply(Data::Info(format!("Done: '{}'", node.title)));
            }),
            Action::Edit(id) => self.source.edit(id, local, run_editor).map(|node| {
                self.reload();
                let said = node.map_or_else(|| "No changes.".to_string(), |n| format!("Edited '{}'", n.title));
                self.app.apply(Data::Info(said));
            }),
        };
        if let Err(e) = outcome {
            self.app.apply(Data::Error(format!("{e:#}")));
        }
        true
    }
}

type Term = Terminal<CrosstermBackend<Stdout>>;

/// Gives the terminal back: cooked mode, the main screen, the cursor.
fn restore() {
    // Each step is tried whatever the others did: this runs on the way out,
    // a panic included, and the shell must get a usable terminal.
    let _ = disable_raw_mode();
    let _ = execute!(std::io::stdout(), LeaveAlternateScreen, ratatui::crossterm::cursor::Show);
}

fn enter() -> Result<Term> {
    enable_raw_mode()?;
    execute!(std::io::stdout(), EnterAlternateScreen)?;
    Ok(Terminal::new(CrosstermBackend::new(std::io::stdout()))?)
}

/// Restores the terminal when dropped, however `run` ends.
struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        restore();
    }
}

/// Runs `heph tui` until the user quits; recurring tasks keep `limit` future instances made.
pub fn run(db: Option<&Path>, words: &[String], limit: u32) -> Result<()> {
    use std::io::IsTerminal as _;
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        anyhow::bail!("heph tui needs a terminal for its input and output; for scripts, heph ls --json");
    }
    let mut session = Session::open(db, words, &Clock::system(), limit)?;
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // A panic caught inside a write fails that write; the TUI goes on.
        if !heph_engine::panics::is_caught() {
            restore();
        }
        previous(info);
    }));
    // Armed before the terminal is touched: a failure half-way through `enter` is undone too.
    let _restore = Restore;
    let mut terminal = enter()?;
    let mut last_poll = Instant::now();
    let mut last_tick = Instant::now();
    let mut dirty = true;
    loop {
        if dirty {
            terminal.draw(|f| view::draw(f, &session.app))?;
            dirty = false;
        }
        let wait = POLL.saturating_sub(last_poll.elapsed());
        if event::poll(wait)? {
            match event::read()? {
                Event::Key(key) if key.kind != KeyEventKind::Release => {
                    let keep = session.key(key, |path| {
                        restore();
                        let ran = crate::editor::run_editor(path);
                        // Back to the TUI whatever the editor did; a full redraw follows.
                        enable_raw_mode()?;
                        execute!(std::io::stdout(), EnterAlternateScreen)?;
                        terminal.clear()?;
                        ran
                    });
                    if !keep {
                        break;
                    }
                    dirty = true;
                }
                Event::Resize(..) => dirty = true,
                _ => {}
            }
        }
        if last_poll.elapsed() >= POLL {
            last_poll = Instant::now();
            dirty |= session.poll();
        }
        if last_tick.elapsed() >= TICK {
            last_tick = Instant::now();
            session.tick(&Clock::system());
            dirty = true;
        }
    }
    drop(terminal);
    Ok(())
}
