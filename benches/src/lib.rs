//! Benchmarks of heph: what the harnesses in `src/bin` share.

use std::process::Child;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use heph_engine::{Node, NodeId, NodeKind, Priority};

const TAGS: [&str; 6] = ["next", "someday", "phone", "computer", "reading", "review"];
const PROJECTS: [&str; 5] = ["home", "work", "heph", "garden", "errands"];

/// The `i`th sample task, like the reference's `taskDoc`: title, pending,
/// two tags, priority, project, due.
#[must_use]
pub fn sample_task(id: NodeId, i: usize, now: DateTime<Utc>) -> Node {
    let mut node = Node::new(id, NodeKind::Task, format!("task {i}"), now);
    node.tags = [TAGS[i % TAGS.len()], TAGS[(i * 7 + 3) % TAGS.len()]].into_iter().map(String::from).collect();
    node.priority = Some([Priority::H, Priority::M, Priority::L][i % 3]);
    node.project = Some(PROJECTS[i % PROJECTS.len()].to_string());
    node.due = Some(now + chrono::Duration::days((i % 30) as i64 + 1));
    node
}

/// Stops a process: SIGTERM, then SIGKILL after 10 s; waits for its exit.
/// Returns `false` when it had to be killed.
pub fn stop_process(child: &mut Child) -> bool {
    // A pid of a child we spawned and have not reaped fits in an i32.
    let pid = i32::try_from(child.id()).unwrap_or(i32::MAX);
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}
