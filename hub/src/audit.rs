//! The append-only audit log: one JSON object per line, with when (`ts`),
//! what (`event`) and, from the caller, who and the details. Never a
//! secret: callers pass names and counts, not tokens.
//!
//! The hub writes every auth decision and token change to its log
//! (`--audit-log`, default the store path + `.audit.jsonl`); `hephd seed`
//! writes to the new hub's; `heph` writes its destructive operations
//! (restore, bulk delete, bulk conflict resolution) to the device store's.
//! Each line is written with one `write` on a file opened for appending, so
//! concurrent writers never interleave inside a line.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use anyhow::{Context, Result};
use serde_json::{Value, json};

/// An open audit log.
pub struct Audit {
    file: Mutex<File>,
}

impl Audit {
    /// Opens (appends to) the log at `path`, created 0600.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let mut options = OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(path).with_context(|| format!("opening the audit log {}", path.display()))?;
        Ok(Self { file: Mutex::new(file) })
    }

    /// Appends one event (`event` names it; `fields` add to it). A failed
    /// write is logged: the operation it records has already happened.
    pub fn record(&self, event: &str, fields: Value) {
        if let Err(e) = self.try_record(event, fields) {
            tracing::error!(error = %e, "cannot write the audit log");
        }
    }

    /// [`Self::record`], returning a failed write.
    pub fn try_record(&self, event: &str, fields: Value) -> std::io::Result<()> {
        let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        file.write_all(line(event, fields).as_bytes())?;
        file.sync_data()
    }
}

/// The line for one event, newline included.
fn line(event: &str, fields: Value) -> String {
    let mut line =
        json!({ "ts": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true), "event": event });
    if let (Some(line), Value::Object(fields)) = (line.as_object_mut(), fields) {
        line.extend(fields);
    }
    let mut text = line.to_string();
    text.push('\n');
    text
}

/// Appends one event to the log at `path` (opened for this line only): the
/// one writer for a process that records a single operation.
pub fn append(path: &Path, event: &str, fields: Value) -> Result<()> {
    Audit::open(path)?.try_record(event, fields).with_context(|| format!("writing the audit log {}", path.display()))
}

/// The audit log beside a store: its path + `.audit.jsonl`.
#[must_use]
pub fn beside(store: &Path) -> PathBuf {
    let mut p = store.as_os_str().to_owned();
    p.push(".audit.jsonl");
    p.into()
}

/// Who runs this process, for the `who` of a local operation:
/// `user:NAME` (from `$USER`, else the numeric uid).
#[must_use]
pub fn local_user() -> String {
    match std::env::var("USER").ok().filter(|u| !u.is_empty()) {
        Some(name) => format!("user:{name}"),
        // SAFETY: getuid has no preconditions and cannot fail.
        None => format!("uid:{}", unsafe { libc::getuid() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_json_with_time_event_and_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.audit.jsonl");
        append(&path, "restore", json!({"who": "user:me", "nodes": 3})).unwrap();
        append(&path, "seed", json!({"who": "user:me"})).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["event"], "restore");
        assert_eq!(lines[0]["nodes"], 3);
        assert!(lines[0]["ts"].as_str().unwrap().ends_with('Z'));
    }
}
