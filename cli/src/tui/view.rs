//! Drawing an [`App`]: a header, the list (or a node, or the help), the
//! input line while typing, and the status line.
//!
//! Only the rows on screen are laid out: a frame costs the same for 100 tasks
//! as for 10,000 (see `benches/benches/tui_render.rs`).
//!
//! Every text a document carries goes through [`on_screen`] first: ratatui
//! hands a cell's text to the terminal as it is, so an escape sequence in a
//! title would be obeyed, not shown.

use std::borrow::Cow;

use chrono::{TimeZone, Utc};
use heph_engine::Clock;
use heph_engine::when::display;
use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Cell, Clear, Paragraph, Row as TableRow, Table, Wrap};
use unicode_width::UnicodeWidthStr as _;

use super::app::{App, Badge, Mode, Named, NodeView};

/// The keys, as the help shows them.
pub const KEYS: &[(&str, &str)] = &[
    ("j / k, ↓ / ↑", "move down / up"),
    ("g / G", "first / last"),
    ("Enter", "open the task"),
    ("Esc / q", "back (q in the list quits)"),
    ("a", "add a task: Buy milk due:tomorrow +errand pri:H"),
    ("x", "mark done"),
    ("/", "search (Enter keeps it, Esc clears it)"),
    ("e", "edit in $VISUAL / $EDITOR"),
    ("?", "this help"),
];

/// `text` as one line of cells: every control character (C0, DEL, C1;
/// line ends too, for text split into lines beforehand) shows as U+FFFD and
/// a tab as four spaces, as `heph`'s printed output does. Text with none of
/// them is borrowed as it is.
#[must_use]
pub fn on_screen(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\t' => out.push_str("    "),
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Draws the whole screen.
pub fn draw(frame: &mut Frame, app: &App) {
    let typing = matches!(app.mode(), Mode::Add | Mode::Search);
    let [head, body, input, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(u16::from(typing)),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    header(frame, head, app);
    match (app.mode(), app.node()) {
        (Mode::Node, Some((view, scroll))) => node(frame, body, view, scroll, app.local()),
        _ => list(frame, body, app),
    }
    if app.mode() == Mode::Help {
        help(frame, body);
    }
    if typing {
        let prompt = if app.mode() == Mode::Add { "add: " } else { "/" };
        let line = Line::from(vec![Span::raw(prompt).bold(), Span::raw(on_screen(app.input())), Span::raw("█")]);
        frame.render_widget(Paragraph::new(line), input);
    }
    status_line(frame, status, app);
}

fn header(frame: &mut Frame, area: Rect, app: &App) {
    let mut spans = vec![Span::raw(" heph ").bold().reversed()];
    let filter = if app.filter().is_empty() { "pending tasks" } else { app.filter() };
    spans.push(Span::raw(format!(" {}", on_screen(filter))));
    if !app.search().is_empty() {
        spans.push(Span::raw(format!("  /{}", on_screen(app.search()))).fg(Color::Yellow));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn day(ms: i64, local: &Clock) -> String {
    Utc.timestamp_millis_opt(ms).single().map(|t| local.local(t).format("%Y-%m-%d").to_string()).unwrap_or_default()
}

fn list(frame: &mut Frame, area: Rect, app: &App) {
    if app.shown_len() == 0 {
        let text = if app.rows().is_empty() { "No tasks." } else { "No task matches the search." };
        frame.render_widget(Paragraph::new(text).alignment(Alignment::Center), area);
        return;
    }
    let height = usize::from(area.height.saturating_sub(1));
    let first = app.scroll(height);
    let last = (first + height).min(app.shown_len());
    let now_ms = app.local().now.timestamp_millis();
    let mut cells: Vec<[String; 7]> = Vec::with_capacity(last - first);
    let mut overdue = Vec::with_capacity(last - first);
    for i in first..last {
        let Some(r) = app.shown_row(i) else { break };
        let s = &r.summary;
        let mut title = on_screen(&s.title).into_owned();
        if s.status == Some(heph_engine::Status::Active) {
            title.insert_str(0, "▶ ");
        }
        if s.annotations > 0 {
            title.push_str(&format!(" [{}]", s.annotations));
        }
        if !s.conflicts.is_empty() {
            title.push_str(" (conflict)");
        }
        overdue.push(s.due.is_some_and(|d| d < now_ms));
        cells.push([
            r.short.clone(),
            s.priority.map(|p| p.to_string()).unwrap_or_default(),
            on_screen(s.project.as_deref().unwrap_or_default()).into_owned(),
            on_screen(&s.tags.iter().map(|t| format!("+{t}")).collect::<Vec<_>>().join(" ")).into_owned(),
            s.due.map(|d| day(d, app.local())).unwrap_or_default(),
            title,
            if s.kind == heph_engine::NodeKind::Task { format!("{:.1}", r.urgency) } else { String::new() },
        ]);
    }
    const NAMES: [&str; 7] = ["ID", "P", "Project", "Tags", "Due", "Title", "Urg"];
    // Widths from the rows on screen only; a column with nothing in it goes.
    let widths: Vec<u16> = (0..7)
        .map(|c| {
            let w = cells.iter().map(|row| row[c].width()).max().unwrap_or(0);
            if w == 0 { 0 } else { u16::try_from(w.max(NAMES[c].len())).unwrap_or(u16::MAX) }
        })
        .collect();
    let keep: Vec<usize> = (0..7).filter(|&c| widths[c] > 0 || NAMES[c] == "Title").collect();
    let constraints: Vec<Constraint> = keep
        .iter()
        .map(|&c| if NAMES[c] == "Title" { Constraint::Fill(1) } else { Constraint::Length(widths[c]) })
        .collect();
    let selected = app.selected();
    let rows = cells.into_iter().zip(overdue).enumerate().map(|(n, (row, late))| {
        let mut style = Style::default();
        if late {
            style = style.fg(Color::Red);
        }
        if first + n == selected {
            style = style.add_modifier(Modifier::REVERSED);
        }
        TableRow::new(keep.iter().map(|&c| Cell::from(row[c].clone()))).style(style)
    });
    let head = TableRow::new(keep.iter().map(|&c| Cell::from(NAMES[c]))).style(Style::default().underlined());
    frame.render_widget(Table::new(rows, constraints).header(head).column_spacing(1), area);
}

fn named(lines: &mut Vec<Line<'static>>, title: &str, refs: &[Named]) {
    if refs.is_empty() {
        return;
    }
    lines.push(Line::raw(""));
    lines.push(Line::from(Span::raw(format!("{title}:")).bold()));
    for r in refs {
        let t = r.title.as_deref().map_or_else(|| "(not in this replica)".into(), |t| on_screen(t).into_owned());
        lines.push(Line::from(vec![Span::raw(format!("  {}  ", r.short)).fg(Color::Cyan), Span::raw(t)]));
    }
}

fn node(frame: &mut Frame, area: Rect, view: &NodeView, scroll: u16, local: &Clock) {
    let n = &view.node;
    let mut fields: Vec<(&str, String)> = vec![("ID", view.short.clone()), ("Kind", n.kind.to_string())];
    if let Some(s) = n.status {
        fields.push(("Status", s.to_string()));
    }
    if let Some(p) = n.priority {
        fields.push(("Priority", p.to_string()));
    }
    if let Some(p) = &n.project {
        fields.push(("Project", on_screen(p).into_owned()));
    }
    if !n.tags.is_empty() {
        fields.push((
            "Tags",
            on_screen(&n.tags.iter().map(|t| format!("+{t}")).collect::<Vec<_>>().join(" ")).into_owned(),
        ));
    }
    for (name, t) in
        [("Due", n.due), ("Wait", n.wait), ("Scheduled", n.scheduled), ("Started", n.start), ("Ended", n.end)]
    {
        if let Some(t) = t {
            fields.push((name, display(t, local)));
        }
    }
    fields.push(("Modified", display(n.modified, local)));
    let mut lines = vec![Line::from(Span::raw(on_screen(&n.title).into_owned()).bold()), Line::raw("")];
    for (k, v) in fields {
        lines.push(Line::from(vec![Span::raw(format!("{k:<10}")).fg(Color::DarkGray), Span::raw(v)]));
    }
    if !n.body.is_empty() {
        lines.push(Line::raw(""));
        lines.extend(n.body.lines().map(|l| Line::raw(on_screen(l).into_owned())));
    }
    if !n.annotations.is_empty() {
        lines.push(Line::raw(""));
        lines.push(Line::from(Span::raw("Annotations:").bold()));
        for a in &n.annotations {
            lines.push(Line::raw(format!("  {}  {}", display(a.entry, local), on_screen(&a.description))));
        }
    }
    named(&mut lines, "Depends on", &view.depends);
    named(&mut lines, "Links", &view.links);
    named(&mut lines, "Backlinks", &view.backlinks);
    let block = Block::bordered().title(" Esc back · e edit · x done ");
    frame.render_widget(
        Paragraph::new(Text::from(lines)).block(block).wrap(Wrap { trim: false }).scroll((scroll, 0)),
        area,
    );
}

fn help(frame: &mut Frame, area: Rect) {
    let width = area.width.min(64);
    let height = area.height.min(u16::try_from(KEYS.len()).unwrap_or(u16::MAX) + 2);
    let popup = Rect { x: area.x + (area.width - width) / 2, y: area.y + (area.height - height) / 2, width, height };
    let lines: Vec<Line> = KEYS
        .iter()
        .map(|(k, what)| Line::from(vec![Span::raw(format!(" {k:<14}")).bold(), Span::raw(*what)]))
        .collect();
    frame.render_widget(Clear, popup);
    frame.render_widget(Paragraph::new(lines).block(Block::bordered().title(" keys (any key closes) ")), popup);
}

/// The text and style of a badge.
#[must_use]
pub fn badge(b: &Badge) -> Span<'static> {
    match b {
        Badge::Synced(age) => Span::raw(format!("⟳ {age}")).fg(Color::Green),
        Badge::NeverSynced => Span::raw("⟳ never").fg(Color::Yellow),
        Badge::Offline => Span::raw("⚠ offline").fg(Color::Yellow),
        Badge::Auth => Span::raw("⚠ auth").fg(Color::Red).bold(),
        Badge::Conflicts(n) => Span::raw(format!("⚠ {n} conflicts")).fg(Color::Yellow),
        Badge::NoDaemon => Span::raw("no daemon: local only").fg(Color::DarkGray),
    }
}

fn status_line(frame: &mut Frame, area: Rect, app: &App) {
    let mut spans = vec![Span::raw(" ")];
    for b in app.badges() {
        spans.push(badge(&b));
        spans.push(Span::raw("  "));
    }
    if let Some((text, error)) = app.message() {
        let text = on_screen(text).into_owned();
        spans.push(if error { Span::raw(text).fg(Color::Red) } else { Span::raw(text) });
    }
    let count = if app.search().is_empty() {
        format!("{} tasks · ? help ", app.rows().len())
    } else {
        format!("{}/{} tasks · ? help ", app.shown_len(), app.rows().len())
    };
    let width = u16::try_from(count.chars().count()).unwrap_or(0);
    let [left, right] = Layout::horizontal([Constraint::Min(0), Constraint::Length(width)]).areas(area);
    frame.render_widget(Paragraph::new(Line::from(spans)), left);
    frame.render_widget(Paragraph::new(count).fg(Color::DarkGray), right);
}
