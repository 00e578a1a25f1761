//! `heph tui` redraws: a frame of the task list into a 200x50 test backend,
//! for lists of 100 and 10,000 tasks (the bound: under 50 ms per frame).
//! Only the rows on screen are laid out, so the two should cost the same.
//!
//! cargo bench -p heph-benches --bench tui_render

use chrono::{Duration, FixedOffset, TimeZone};
use criterion::{Criterion, criterion_group, criterion_main};
use heph_cli::tui::app::{App, Data, Row};
use heph_cli::tui::view;
use heph_engine::{Node, NodeId, NodeKind, NodeSummary, Priority};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

fn app(tasks: usize) -> App {
    let now = FixedOffset::east_opt(3600).unwrap().with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap();
    let rows = (0..tasks)
        .map(|i| {
            let mut node = Node::new(
                NodeId::random(),
                NodeKind::Task,
                format!("Task {i}: call the plumber about the sink"),
                now.to_utc(),
            );
            node.priority = [Some(Priority::H), Some(Priority::M), None][i % 3];
            node.project = (i % 4 == 0).then(|| "home.kitchen".to_string());
            node.tags = ["errand", "phone"].iter().take(i % 3).map(ToString::to_string).collect();
            node.due = (i % 2 == 0).then(|| now.to_utc() + Duration::hours(i64::try_from(i).unwrap() - 50));
            let summary = NodeSummary::of(&node, vec![]);
            #[allow(clippy::cast_precision_loss)]
            let urgency = 20.0 - i as f64 / 1000.0;
            Row { short: summary.id.to_hex()[..6].to_string(), summary, urgency }
        })
        .collect();
    let mut app = App::new("", &now.into());
    app.apply(Data::Rows(rows));
    app
}

fn frames(c: &mut Criterion) {
    let mut group = c.benchmark_group("tui_frame_200x50");
    for tasks in [100, 10_000] {
        let mut terminal = Terminal::new(TestBackend::new(200, 50)).unwrap();
        let mut app = app(tasks);
        group.bench_function(format!("{tasks}_tasks_top"), |b| {
            b.iter(|| {
                terminal.draw(|f| view::draw(f, &app)).unwrap();
            });
        });
        // The selection moves every frame: each draw scrolls and changes rows.
        let mut down = true;
        group.bench_function(format!("{tasks}_tasks_scrolling"), |b| {
            b.iter(|| {
                let code = if down { KeyCode::PageDown } else { KeyCode::PageUp };
                app.handle_key(KeyEvent::new(code, KeyModifiers::NONE));
                if app.selected() + 1 >= app.shown_len() || app.selected() == 0 {
                    down = !down;
                }
                terminal.draw(|f| view::draw(f, &app)).unwrap();
            });
        });
    }
    group.finish();
}

criterion_group!(benches, frames);
criterion_main!(benches);
