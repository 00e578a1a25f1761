//! The TUI through ratatui's `TestBackend`: sessions on real stores in
//! temporary directories, a stand-in daemon on a unix socket, and states
//! built by hand for the status line.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Duration, FixedOffset, TimeZone};
use heph_engine::rpc::{self, Response};
use heph_engine::sync::SyncHealth;
use heph_engine::{Edit, Node, NodeId, NodeKind, Priority, Replica, Status};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::style::{Color, Modifier};

use super::app::{App, Data, Mode, Row};
use super::{Session, view};

fn now() -> DateTime<FixedOffset> {
    FixedOffset::east_opt(3600).unwrap().with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap()
}

/// A store in a temporary directory, and its path.
fn store() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("heph.db");
    (dir, path)
}

/// Writes tasks to the store at `path` as another process would: open, write, close.
fn write(path: &Path, tasks: &[(&str, Vec<Edit>)]) -> Vec<NodeId> {
    let r = Replica::open(path).unwrap();
    let ids = tasks.iter().map(|(title, edits)| create(&r, title, edits.clone())).collect();
    drop(r);
    ids
}

fn create(r: &Replica, title: &str, edits: Vec<Edit>) -> NodeId {
    let draft = Node::new(NodeId::random(), NodeKind::Task, title.into(), now().to_utc());
    r.create(&draft, &edits, "test").unwrap().id
}

fn screen(app: &App) -> Buffer {
    let mut terminal = Terminal::new(TestBackend::new(100, 30)).unwrap();
    terminal.draw(|f| view::draw(f, app)).unwrap();
    terminal.backend().buffer().clone()
}

fn lines(buffer: &Buffer) -> Vec<String> {
    let width = buffer.area.width as usize;
    buffer.content.chunks(width).map(|row| row.iter().map(|c| c.symbol()).collect::<String>()).collect()
}

fn text(app: &App) -> String {
    lines(&screen(app)).join("\n")
}

/// The screen line that shows `what`.
fn line_of(app: &App, what: &str) -> usize {
    let all = lines(&screen(app));
    all.iter()
        .position(|l| l.contains(what))
        .unwrap_or_else(|| panic!("{what:?} is not on screen:\n{}", all.join("\n")))
}

fn press(session: &mut Session, keys: &str) {
    for c in keys.chars() {
        let code = match c {
            '\n' => KeyCode::Enter,
            '\x1b' => KeyCode::Esc,
            c => KeyCode::Char(c),
        };
        assert!(session.key(KeyEvent::new(code, KeyModifiers::NONE), |_| panic!("no editor in this test")));
    }
}

fn session(path: &Path, filter: &[&str]) -> Session {
    let words: Vec<String> = filter.iter().map(ToString::to_string).collect();
    Session::open(Some(path), &words, &now().into(), 1).unwrap()
}

#[test]
fn tasks_are_listed_most_urgent_first() {
    let (_dir, path) = store();
    let yesterday = now().to_utc() - Duration::days(1);
    write(
        &path,
        &[
            ("Low one", vec![Edit::Priority(Some(Priority::L))]),
            ("Overdue one", vec![Edit::Priority(Some(Priority::H)), Edit::Due(Some(yesterday))]),
            ("Middle one", vec![Edit::Priority(Some(Priority::M))]),
        ],
    );
    let s = session(&path, &[]);
    let (over, mid, low) = (line_of(&s.app, "Overdue one"), line_of(&s.app, "Middle one"), line_of(&s.app, "Low one"));
    assert!(over < mid && mid < low, "{}", text(&s.app));
    // An overdue task is red.
    let buffer = screen(&s.app);
    let x = lines(&buffer)[over].find("Overdue").unwrap();
    assert_eq!(buffer[(u16::try_from(x).unwrap(), u16::try_from(over).unwrap())].fg, Color::Red);
}

#[test]
fn j_and_k_move_the_selection() {
    let (_dir, path) = store();
    write(
        &path,
        &[("First", vec![Edit::Priority(Some(Priority::H))]), ("Second", vec![Edit::Priority(Some(Priority::L))])],
    );
    let mut s = session(&path, &[]);
    let reversed = |app: &App, what: &str| {
        let y = u16::try_from(line_of(app, what)).unwrap();
        screen(app)[(0, y)].modifier.contains(Modifier::REVERSED)
    };
    assert!(reversed(&s.app, "First") && !reversed(&s.app, "Second"));
    press(&mut s, "j");
    assert!(!reversed(&s.app, "First") && reversed(&s.app, "Second"));
    press(&mut s, "j");
    assert!(reversed(&s.app, "Second"), "the selection stops at the last row");
    press(&mut s, "k");
    assert!(reversed(&s.app, "First"));
    press(&mut s, "G");
    assert_eq!(s.app.selected_row().unwrap().summary.title, "Second");
    press(&mut s, "g");
    assert_eq!(s.app.selected_row().unwrap().summary.title, "First");
}

#[test]
fn x_marks_the_selected_task_done_in_the_store() {
    let (_dir, path) = store();
    let ids = write(&path, &[("Keep", vec![]), ("Finish", vec![Edit::Priority(Some(Priority::H))])]);
    let mut s = session(&path, &[]);
    assert_eq!(s.app.selected_row().unwrap().summary.title, "Finish");
    press(&mut s, "x");
    let r = Replica::open_read_only(&path).unwrap();
    assert_eq!(r.get(ids[1]).unwrap().status, Some(Status::Done));
    assert_eq!(r.get(ids[0]).unwrap().status, Some(Status::Pending));
    let shown = text(&s.app);
    assert!(!shown.contains("│Finish") && !shown.contains(" Finish "), "a done task leaves the list:\n{shown}");
    assert!(shown.contains("Done: 'Finish'"), "{shown}");
    assert_eq!(s.app.rows().len(), 1);
}

#[test]
fn a_adds_a_task_with_quick_add_syntax() {
    let (_dir, path) = store();
    let mut s = session(&path, &[]);
    press(&mut s, "a");
    assert_eq!(s.app.mode(), Mode::Add);
    press(&mut s, "Buy milk due:2026-12-24 +errand pri:H project:home");
    assert!(text(&s.app).contains("add: Buy milk due:2026-12-24"));
    press(&mut s, "\n");
    let r = Replica::open_read_only(&path).unwrap();
    let node = r.export().unwrap().into_iter().find(|n| n.title == "Buy milk").expect("the task is stored");
    assert_eq!(node.priority, Some(Priority::H));
    assert!(node.tags.contains("errand"));
    assert_eq!(node.project.as_deref(), Some("home"));
    let due = node.due.expect("a due date").with_timezone(now().offset());
    assert_eq!(due.date_naive().to_string(), "2026-12-24");
    let shown = text(&s.app);
    assert!(shown.contains("Buy milk") && shown.contains("+errand") && shown.contains("2026-12-24"), "{shown}");
    assert_eq!(s.app.selected_row().unwrap().summary.id, node.id, "the new task is selected");
}

#[test]
fn quick_add_sets_a_uda_another_task_carries_as_heph_add_does() {
    let (_dir, path) = store();
    write(&path, &[("Imported", vec![Edit::Uda("estimate".into(), Some("3h".into()))])]);
    let mut s = session(&path, &[]);
    press(&mut s, "aWrite report estimate:2h\n");
    assert!(s.app.message().is_none_or(|(_, error)| !error), "{:?}", s.app.message());
    let r = Replica::open_read_only(&path).unwrap();
    let node = r.export().unwrap().into_iter().find(|n| n.title == "Write report").expect("the task is stored");
    assert_eq!(node.uda.get("estimate").map(String::as_str), Some("2h"));
    drop(r);
    // A name no task carries is still an error, as in heph add.
    press(&mut s, "aOther size:L\n");
    let (message, error) = s.app.message().expect("a message");
    assert!(error && message.contains("size"), "{message}");
}

#[test]
fn a_bad_quick_add_is_an_error_in_the_status_line() {
    let (_dir, path) = store();
    let mut s = session(&path, &[]);
    press(&mut s, "a+onlytag\n");
    let (message, error) = s.app.message().expect("a message");
    assert!(error && message.contains("title"), "{message}");
    assert!(text(&s.app).contains("a task needs a title"));
}

#[test]
fn slash_filters_the_list_as_you_type() {
    let (_dir, path) = store();
    write(&path, &[("Buy milk", vec![]), ("Call mom", vec![]), ("Milk the cow", vec![])]);
    let mut s = session(&path, &[]);
    press(&mut s, "/mil");
    let shown = text(&s.app);
    assert!(shown.contains("Buy milk") && shown.contains("Milk the cow") && !shown.contains("Call mom"), "{shown}");
    assert!(shown.contains("2/3 tasks"), "{shown}");
    press(&mut s, " buy\n");
    assert_eq!(s.app.mode(), Mode::List);
    assert_eq!(s.app.shown_len(), 1, "Enter keeps the search");
    assert!(text(&s.app).contains("Buy milk"));
    press(&mut s, "\x1b");
    assert_eq!(s.app.shown_len(), 3, "Esc clears it");
}

#[test]
fn the_node_view_shows_body_links_and_backlinks() {
    let (_dir, path) = store();
    let r = Replica::open(&path).unwrap();
    let bags = create(&r, "Pack bags", vec![]);
    let trip = create(
        &r,
        "Plan trip",
        vec![Edit::Priority(Some(Priority::H)), Edit::Body("Book the train\nfor Friday".into()), Edit::Link(bags)],
    );
    create(&r, "Write list", vec![Edit::Link(trip)]);
    r.edit(
        trip,
        &[Edit::Annotate(heph_engine::Annotation { entry: now().to_utc(), description: "asked Ann".into() })],
        "a",
        now().to_utc(),
    )
    .unwrap();
    drop(r);
    let mut s = session(&path, &[]);
    assert_eq!(s.app.selected_row().unwrap().summary.title, "Plan trip");
    press(&mut s, "\n");
    assert_eq!(s.app.mode(), Mode::Node);
    let shown = text(&s.app);
    for expected in [
        "Plan trip",
        "Book the train",
        "for Friday",
        "Links:",
        "Pack bags",
        "Backlinks:",
        "Write list",
        "asked Ann",
        "Priority  H",
    ] {
        assert!(shown.contains(expected), "{expected:?} missing:\n{shown}");
    }
    assert!(line_of(&s.app, "Links:") < line_of(&s.app, "Pack bags"));
    assert!(line_of(&s.app, "Backlinks:") < line_of(&s.app, "Write list"));
    press(&mut s, "\x1b");
    assert_eq!(s.app.mode(), Mode::List);
    assert!(!text(&s.app).contains("Book the train"));
}

/// Cells whose text holds a control character: the terminal would obey it.
fn control_cells(buffer: &Buffer) -> Vec<String> {
    buffer.content.iter().map(|c| c.symbol()).filter(|s| s.chars().any(char::is_control)).map(str::to_owned).collect()
}

#[test]
fn escape_sequences_in_a_document_are_shown_not_obeyed() {
    let (_dir, path) = store();
    let r = Replica::open(&path).unwrap();
    let other = create(&r, "Linked \x1b[2J", vec![]);
    create(
        &r,
        "E \x1b]0;pwned\x07 \r",
        vec![
            Edit::Body("\x1b[31mred\tcell\r\nnext\u{9b}2J".into()),
            Edit::AddTag("t\x1bag".into()),
            Edit::Link(other),
            Edit::Annotate(heph_engine::Annotation { entry: now().to_utc(), description: "note\x07".into() }),
        ],
    );
    drop(r);
    let mut s = session(&path, &[]);
    let list = screen(&s.app);
    assert_eq!(control_cells(&list), Vec::<String>::new(), "{}", lines(&list).join("\n"));
    assert!(text(&s.app).contains("E \u{FFFD}]0;pwned\u{FFFD} \u{FFFD}"), "{}", text(&s.app));
    while !s.app.selected_row().unwrap().summary.title.starts_with('E') {
        press(&mut s, "j");
    }
    press(&mut s, "\n");
    assert_eq!(s.app.mode(), Mode::Node);
    let page = screen(&s.app);
    assert_eq!(control_cells(&page), Vec::<String>::new(), "{}", lines(&page).join("\n"));
    let shown = text(&s.app);
    for expected in ["\u{FFFD}[31mred    cell", "next\u{FFFD}2J", "note\u{FFFD}", "Linked \u{FFFD}[2J", "+t\u{FFFD}ag"]
    {
        assert!(shown.contains(expected), "{expected:?} missing:\n{shown}");
    }
}

#[test]
fn a_change_made_elsewhere_shows_on_the_next_poll() {
    let (_dir, path) = store();
    write(&path, &[("Already here", vec![])]);
    let mut s = session(&path, &[]);
    assert!(!s.poll(), "nothing changed");
    // Another heph writes while the TUI runs: the TUI does not hold the store.
    write(&path, &[("Made elsewhere", vec![])]);
    assert!(s.poll());
    assert!(text(&s.app).contains("Made elsewhere"));
    assert!(!s.poll());
}

#[test]
fn a_filter_selects_the_list() {
    let (_dir, path) = store();
    write(&path, &[("Work thing", vec![Edit::AddTag("work".into())]), ("Home thing", vec![])]);
    let s = session(&path, &["+work"]);
    let shown = text(&s.app);
    assert!(shown.contains("Work thing") && !shown.contains("Home thing") && shown.contains("+work"), "{shown}");
}

#[test]
fn help_lists_the_keys_and_any_key_closes_it() {
    let (_dir, path) = store();
    let mut s = session(&path, &[]);
    press(&mut s, "?");
    let shown = text(&s.app);
    assert!(shown.contains("mark done") && shown.contains("$EDITOR"), "{shown}");
    press(&mut s, " ");
    assert_eq!(s.app.mode(), Mode::List);
}

fn app_with(health: SyncHealth) -> App {
    let mut app = App::new("", &now().into());
    let summary =
        heph_engine::NodeSummary::of(&Node::new(NodeId::random(), NodeKind::Task, "T".into(), now().to_utc()), vec![]);
    app.apply(Data::Rows(vec![Row { short: summary.id.to_hex()[..6].to_string(), summary, urgency: 1.0 }]));
    app.apply(Data::Health(health));
    app
}

fn status(app: &App) -> String {
    lines(&screen(app)).pop().unwrap()
}

fn daemon_health() -> SyncHealth {
    SyncHealth {
        daemon: true,
        connected: true,
        last_success: Some(now().to_utc() - Duration::seconds(12)),
        ..SyncHealth::default()
    }
}

#[test]
fn the_status_line_shows_each_sync_state() {
    let synced = status(&app_with(daemon_health()));
    assert!(synced.contains("⟳ 12s") && !synced.contains('⚠'), "{synced}");

    let mut app = app_with(daemon_health());
    app.set_clock(&(now() + Duration::minutes(5)).into());
    assert!(status(&app).contains("⟳ 5m"), "the age moves on with the clock: {}", status(&app));

    let offline = status(&app_with(SyncHealth { connected: false, offline: true, ..daemon_health() }));
    assert!(offline.contains("⟳ 12s") && offline.contains("⚠ offline"), "{offline}");

    let app = app_with(SyncHealth { connected: false, offline: true, auth_failure: true, ..daemon_health() });
    let auth = status(&app);
    assert!(auth.contains("⚠ auth") && !auth.contains("offline"), "{auth}");
    let buffer = screen(&app);
    let y = buffer.area.height - 1;
    let x = lines(&buffer).pop().unwrap().chars().position(|c| c == '⚠').unwrap();
    assert_eq!(buffer[(u16::try_from(x).unwrap(), y)].fg, Color::Red, "⚠ auth is red");

    let conflicts = status(&app_with(SyncHealth { conflicts: 3, ..daemon_health() }));
    assert!(conflicts.contains("⟳ 12s") && conflicts.contains("⚠ 3 conflicts"), "{conflicts}");

    let never = status(&app_with(SyncHealth { last_success: None, ..daemon_health() }));
    assert!(never.contains("⟳ never"), "{never}");

    let local = status(&app_with(SyncHealth { conflicts: 1, ..SyncHealth::default() }));
    assert!(local.contains("no daemon: local only") && local.contains("⚠ 1 conflicts"), "{local}");
}

#[test]
fn without_a_daemon_the_status_line_says_so() {
    let (_dir, path) = store();
    let s = session(&path, &[]);
    assert!(status(&s.app).contains("no daemon: local only"), "{}", status(&s.app));
}

/// A stand-in for `hephd --mode local` on the store's socket: the engine's
/// JSON-RPC dispatch against `replica`, and `sync_status` answering
/// `health` filled in from the replica, as the daemon does.
fn daemon(socket: &Path, replica: Arc<Replica>, health: SyncHealth) {
    let listener = UnixListener::bind(socket).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let (replica, health) = (replica.clone(), health.clone());
            std::thread::spawn(move || {
                let mut out = stream.try_clone().unwrap();
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { return };
                    let probe: serde_json::Value = serde_json::from_str(&line).unwrap();
                    let response = if probe["method"] == "sync_status" {
                        let h = health.clone().with_store(&replica).unwrap();
                        Response::of(probe["id"].clone(), Ok(serde_json::to_value(h).unwrap()))
                    } else {
                        match rpc::parse(line.as_bytes()) {
                            Err(r) => r,
                            Ok(env) => Response::of(env.id, rpc::dispatch(&replica, env.request)),
                        }
                    };
                    let mut text = serde_json::to_string(&response).unwrap();
                    text.push('\n');
                    if out.write_all(text.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
}

#[test]
fn through_a_daemon_changes_show_live_and_the_status_line_follows_its_health() {
    let (_dir, path) = store();
    let replica = Arc::new(Replica::in_memory().unwrap());
    create(&replica, "Via the daemon", vec![]);
    let mut socket = path.clone().into_os_string();
    socket.push(".sock");
    daemon(Path::new(&socket), replica.clone(), SyncHealth { connected: false, offline: true, ..daemon_health() });
    let mut s = session(&path, &[]);
    let shown = text(&s.app);
    assert!(shown.contains("Via the daemon") && shown.contains("⚠ offline") && shown.contains("⟳ 12s"), "{shown}");
    assert!(!path.exists(), "the TUI went through the daemon, not the store file");
    assert!(!s.poll());
    // A change arriving at the daemon (from the hub, or another heph).
    let other = create(&replica, "Arrived from the hub", vec![]);
    replica.edit(other, &[Edit::Status(Status::Done)], "done", now().to_utc()).unwrap();
    create(&replica, "Also arrived", vec![]);
    assert!(s.poll(), "the version moved");
    let shown = text(&s.app);
    assert!(shown.contains("Also arrived") && !shown.contains("Arrived from the hub"), "{shown}");
    // Writes go through the daemon too.
    press(&mut s, "aFrom the TUI +tui\n");
    assert!(replica.export().unwrap().iter().any(|n| n.title == "From the TUI" && n.tags.contains("tui")));
    // The tick reads the health again.
    s.tick(&now().into());
    assert!(status(&s.app).contains("⚠ offline"));
}

#[test]
fn e_edits_the_selected_task_through_the_editor_page() {
    let (_dir, path) = store();
    let ids = write(&path, &[("Old title", vec![Edit::AddTag("keep".into())])]);
    let mut s = session(&path, &[]);
    let mut seen = String::new();
    let key = KeyEvent::new(KeyCode::Char('e'), KeyModifiers::NONE);
    assert!(s.key(key, |page| {
        // What a user's editor would do to the page.
        seen = std::fs::read_to_string(page)?;
        std::fs::write(
            page,
            seen.replace("title: Old title", "title: New title").replace("tags: keep", "tags: keep new"),
        )?;
        Ok(())
    }));
    assert!(seen.starts_with("---\ntitle: Old title\n"), "{seen}");
    let node = Replica::open_read_only(&path).unwrap().get(ids[0]).unwrap();
    assert_eq!(node.title, "New title");
    assert!(node.tags.contains("new") && node.tags.contains("keep"));
    let shown = text(&s.app);
    assert!(shown.contains("New title") && shown.contains("Edited 'New title'"), "{shown}");
    // A page that no longer parses changes nothing and says why.
    let key = KeyEvent::new(KeyCode::Char('e'), KeyModifiers::NONE);
    assert!(s.key(key, |page| Ok(std::fs::write(page, "no front matter")?)));
    let (message, error) = s.app.message().unwrap();
    assert!(error && message.contains("front matter") && message.contains("kept in"), "{message}");
    assert_eq!(Replica::open_read_only(&path).unwrap().get(ids[0]).unwrap().title, "New title");
}

#[test]
fn a_long_list_scrolls_to_keep_the_selection_on_screen() {
    let mut app = App::new("", &now().into());
    let rows = (0..500)
        .map(|i| {
            let node = Node::new(NodeId::random(), NodeKind::Task, format!("Task number {i}"), now().to_utc());
            let summary = heph_engine::NodeSummary::of(&node, vec![]);
            Row { short: summary.id.to_hex()[..6].to_string(), summary, urgency: 1.0 }
        })
        .collect();
    app.apply(Data::Rows(rows));
    let shown = text(&app);
    assert!(shown.contains("Task number 0\u{20}") && !shown.contains("Task number 499"));
    app.handle_key(KeyEvent::new(KeyCode::Char('G'), KeyModifiers::NONE));
    let shown = text(&app);
    assert!(shown.contains("Task number 499") && !shown.contains("Task number 0\u{20}"), "{shown}");
    let y = u16::try_from(line_of(&app, "Task number 499")).unwrap();
    assert!(screen(&app)[(0, y)].modifier.contains(Modifier::REVERSED));
    // Going back up one row does not scroll.
    app.handle_key(KeyEvent::new(KeyCode::Char('k'), KeyModifiers::NONE));
    assert!(text(&app).contains("Task number 499"));
}
