//! `heph daemon status`: the service as its manager sees it, beside the
//! daemon's own sync health, read through its socket.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;
use heph_engine::sync::SyncHealth;
use heph_hub::service;
use serde::Serialize;

use super::installed;
use super::manager::{Manager, UnitState};
use crate::api::Api;
use crate::store;

/// `heph daemon status --json`: the service and its daemon.
#[derive(Serialize, schemars::JsonSchema)]
pub struct Status {
    /// The service manager: systemd (a user unit) or launchd (an agent).
    manager: Manager,
    /// The service's name for its manager.
    unit: &'static str,
    /// The service file.
    file: PathBuf,
    /// Whether the service file exists.
    installed: bool,
    /// hephd's environment as the service file carries it (HEPH_* name to value).
    settings: serde_json::Value,
    /// The unit's state, when the manager could say.
    state: Option<UnitState>,
    /// Why the manager could not say (e.g. no systemd user session).
    #[serde(skip_serializing_if = "Option::is_none")]
    manager_error: Option<String>,
    /// The socket the daemon serves heph on (none for a hub).
    #[serde(skip_serializing_if = "Option::is_none")]
    socket: Option<PathBuf>,
    /// The daemon's sync health, when it answers.
    daemon: Option<SyncHealth>,
    /// Why the daemon did not answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    daemon_error: Option<String>,
}

/// `heph daemon status`.
pub fn run(db: Option<&Path>, json: bool) -> Result<()> {
    let manager = Manager::native();
    let (file, settings) = installed(manager)?;
    let installed = settings.is_some();
    let settings = settings.unwrap_or_default();
    let (state, manager_error) = if installed {
        match manager.state() {
            Ok(s) => (Some(s), None),
            Err(why) => (None, Some(why)),
        }
    } else {
        (None, None)
    };
    let server = settings.get("HEPH_MODE") == Some("server");
    // The socket of the installed service's store, else of heph's.
    let socket = if server {
        None
    } else if let Some(s) = settings.get("HEPH_SOCKET") {
        Some(PathBuf::from(s))
    } else if let Some(d) = settings.get("HEPH_DB") {
        Some(store::socket(Some(Path::new(d)))?)
    } else {
        Some(store::socket(db)?)
    };
    let (daemon, daemon_error) = match socket.as_deref().map(|s| (s, Api::daemon(s))) {
        None => (None, None),
        Some((s, None)) => (None, Some(format!("no daemon answers on {}", s.display()))),
        Some((_, Some(mut api))) => match api.sync_status() {
            Ok(h) => (Some(h), None),
            Err(e) => (None, Some(format!("{e:#}"))),
        },
    };
    let report = Status {
        manager,
        unit: manager.unit(),
        file,
        installed,
        settings: settings.to_json(),
        state,
        manager_error,
        socket,
        daemon,
        daemon_error,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    if report.installed {
        writeln!(out, "Service:        {} ({})", report.unit, report.file.display())?;
        let flags = settings.as_flags().iter().map(|w| service::sh_quote(w)).collect::<Vec<_>>().join(" ");
        writeln!(out, "Runs:           hephd {flags}")?;
    } else {
        writeln!(
            out,
            "Service:        not installed ({} does not exist; heph daemon install --hub-url URL writes it)",
            report.file.display()
        )?;
    }
    match (&report.state, &report.manager_error) {
        (Some(s), _) => {
            let mut line = s.active.clone();
            if let Some(sub) = &s.sub {
                line.push_str(&format!(" ({sub})"));
            }
            if let Some(pid) = s.pid {
                line.push_str(&format!(", pid {pid}"));
            }
            if let Some(enabled) = &s.enabled {
                line.push_str(&format!(", {enabled}"));
            }
            writeln!(out, "Unit state:     {line}")?;
        }
        (None, Some(why)) => writeln!(out, "Unit state:     unknown: the service manager cannot be reached ({why})")?,
        (None, None) => {}
    }
    if server {
        let addr = settings.get("HEPH_HTTP_ADDR").unwrap_or("127.0.0.1:8787");
        writeln!(out, "Hub health:     http://{addr}/healthz")?;
    } else if let Some(health) = &report.daemon {
        crate::commands::write_health(&mut out, health, &heph_engine::Clock::system())?;
    } else if let Some(why) = &report.daemon_error {
        writeln!(out, "Daemon:         not answering: {why}")?;
    }
    out.flush()?;
    Ok(())
}
