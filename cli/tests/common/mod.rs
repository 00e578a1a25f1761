//! Running the real `heph` binary on a temporary store.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub mod taskwarrior;

/// A temporary store and the `heph` binary that uses it.
pub struct Heph {
    pub dir: tempfile::TempDir,
    pub db: PathBuf,
}

impl Heph {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("store").join("heph.db");
        Self { dir, db }
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_heph"));
        c.env("HEPH_DB", &self.db).env("TZ", "UTC").env_remove("VISUAL").env_remove("EDITOR");
        c
    }

    /// Runs heph; returns the output whatever the exit code.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("run heph")
    }

    /// Runs heph and expects success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "heph {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    /// Runs heph with --json and parses the output.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let text = self.ok(&all);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("heph {args:?} printed bad JSON ({e}): {text}"))
    }

    /// Runs heph and expects failure; returns stderr (one line).
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "heph {args:?} should have failed: {}", String::from_utf8_lossy(&out.stdout));
        let err = String::from_utf8(out.stderr).expect("utf-8 stderr");
        assert_eq!(err.trim_end().lines().count(), 1, "expected a one-line error, got: {err}");
        assert!(err.starts_with("heph: "), "error should start with heph: {err}");
        err
    }

    /// Adds a task and returns its short id.
    pub fn add(&self, words: &[&str]) -> String {
        let mut args = vec!["add"];
        args.extend_from_slice(words);
        self.json(&args)["short"].as_str().expect("short id").to_string()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// The ids of the rows of `heph ls --json`-shaped output.
pub fn ids(rows: &Value) -> Vec<String> {
    rows.as_array().expect("a list").iter().map(|r| r["id"].as_str().expect("id").to_string()).collect()
}

pub fn titles(rows: &Value) -> Vec<String> {
    rows.as_array().expect("a list").iter().map(|r| r["title"].as_str().expect("title").to_string()).collect()
}

pub fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write file");
}

/// Lets the owner run `path` (an editor script).
pub fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}
