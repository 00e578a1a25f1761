//! The real Taskwarrior (`task`, Debian package `taskwarrior`) with a
//! private taskrc and data folder, for interop tests.
//!
//! Tests that need it call [`available`] first and skip with a message when
//! `task` is missing, unless `HEPH_REQUIRE_TASKWARRIOR=1` (CI sets it).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Whether `task` runs here; when it does not, says so on standard error,
/// and fails instead when `HEPH_REQUIRE_TASKWARRIOR=1`.
pub fn available() -> bool {
    runs(Command::new("task").arg("--version"), "the `task` binary (Taskwarrior 2.6, Debian package taskwarrior)")
}

/// Whether `faketime` (Debian package `faketime`) runs here, to run `task`
/// at a simulated instant; like [`available`], it fails instead of skipping
/// when `HEPH_REQUIRE_TASKWARRIOR=1`.
pub fn faketime_available() -> bool {
    runs(Command::new("faketime").args(["@0", "true"]), "`faketime` (Debian package faketime)")
}

/// Whether `command` runs and succeeds; when it does not, says that `what`
/// is not installed, or fails when `HEPH_REQUIRE_TASKWARRIOR=1`.
fn runs(command: &mut Command, what: &str) -> bool {
    let found = command.output().is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("HEPH_REQUIRE_TASKWARRIOR").is_none_or(|v| v != "1"),
            "HEPH_REQUIRE_TASKWARRIOR=1 but {what} is missing"
        );
        eprintln!("skipped: {what} is not installed");
    }
    found
}

/// One private Taskwarrior: its taskrc (data beside it), and the zone it runs in.
pub struct Taskwarrior {
    rc: PathBuf,
    zone: String,
}

impl Taskwarrior {
    /// A fresh one named `name` under `dir`, in time zone `zone`.
    pub fn new(dir: &Path, name: &str, zone: &str) -> Self {
        Self::with_config(dir, name, zone, "")
    }

    /// Like [`Self::new`], with more taskrc lines (`key=value\n`…).
    pub fn with_config(dir: &Path, name: &str, zone: &str, config: &str) -> Self {
        let data = dir.join(format!("{name}-data"));
        std::fs::create_dir_all(&data).unwrap();
        let rc = dir.join(format!("{name}.taskrc"));
        let base = format!("data.location={}\nconfirmation=off\nrecurrence.limit=1\n", data.display());
        std::fs::write(&rc, base + config).unwrap();
        Self { rc, zone: zone.to_string() }
    }

    /// `task FILTER export`, parsed.
    pub fn export(&self, filter: &[&str]) -> Vec<serde_json::Value> {
        let mut args: Vec<&str> = filter.to_vec();
        args.push("export");
        serde_json::from_str(&self.run(&args)).expect("task export prints JSON")
    }

    /// Runs `task ARGS` quietly; its standard output. Panics when it fails.
    pub fn run(&self, args: &[&str]) -> String {
        self.output(Command::new("task"), args)
    }

    /// Like [`Self::run`], with Taskwarrior's clock starting at `at` (Unix
    /// seconds) through `faketime` (see [`faketime_available`]).
    pub fn run_at(&self, at: i64, args: &[&str]) -> String {
        let mut faked = Command::new("faketime");
        faked.arg(format!("@{at}")).arg("task");
        self.output(faked, args)
    }

    fn output(&self, mut command: Command, args: &[&str]) -> String {
        let out = command
            .env("TASKRC", &self.rc)
            .env("TZ", &self.zone)
            .args(["rc.verbose=nothing", "rc.confirmation=off", "rc.hooks=off", "rc.json.array=on"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "task {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }
}
