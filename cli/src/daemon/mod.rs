//! `heph daemon install|start|stop|restart|status|uninstall`: hephd as a
//! service of this user, so that the device daemon runs from login on and
//! `heph` always finds it.
//!
//! The service file carries hephd's settings as `HEPH_*` environment
//! entries (see `heph_hub::service`): installing again reads them back and
//! keeps every one not given anew. This module decides what the file says
//! and what to tell the user; [`manager`] writes it and drives systemctl or
//! launchctl.

mod manager;
mod status;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use heph_hub::service::{self, Settings};
use serde::Serialize;

use crate::store;
pub use manager::Manager;
use manager::{Outcome, check, write_file};
#[cfg(test)]
pub use status::Status;

/// Managing hephd as a service of this user.
#[derive(Subcommand, Debug)]
pub enum DaemonAction {
    /// Write the service file (systemd user unit, launchd agent), enable it and start it.
    ///
    /// heph daemon install --hub-url wss://heph.example.org
    ///
    /// The service runs `hephd` (found beside heph, else on PATH) with the store heph uses
    /// (--db / HEPH_DB, else the default), as absolute paths. Installing again regenerates the
    /// file and keeps every setting it already carries unless given anew; an empty value
    /// (--web-root "") removes one, --fresh forgets them all. Where the service manager cannot
    /// be reached (no systemd user session) the file is written anyway, and heph says how to
    /// start it.
    Install(Box<InstallArgs>),
    /// Start the service.
    Start,
    /// Stop the service (it starts again at the next login; `uninstall` removes it).
    Stop,
    /// Stop and start the service, e.g. after `heph auth login`.
    Restart,
    /// The service's state, with the daemon's own sync health (as `heph sync --status` shows it).
    Status,
    /// Stop and disable the service, and remove its file (the store is kept).
    ///
    /// Shows what it will do and asks first; --yes skips the question (and is needed when
    /// standard input is not a terminal). The uninstall joins the store's audit log.
    Uninstall,
}

/// The daemon's settings, and how to install.
#[derive(Args, Debug)]
pub struct InstallArgs {
    /// What hephd runs as [default: local, or what the installed service runs].
    #[arg(long, value_enum)]
    pub mode: Option<ServiceMode>,
    /// The hub to sync with (local mode): wss://host, https://host, or ws:// and http:// on loopback.
    #[arg(long, value_name = "URL")]
    pub hub_url: Option<String>,
    /// The hub's settings (server mode).
    #[command(flatten)]
    pub hub: service::HubFlags,
    /// Also trust the certificate authorities in this PEM file when reaching a wss:// hub (local mode), e.g. a private CA's root.
    #[arg(long, value_name = "PATH")]
    pub ca_file: Option<String>,
    /// The hephd binary to run [default: the one beside heph, else the first on PATH].
    #[arg(long, value_name = "PATH")]
    pub hephd: Option<PathBuf>,
    /// Forget the settings the installed service carries; start from the ones given now.
    #[arg(long)]
    pub fresh: bool,
    /// Write and enable the service, but do not start (or restart) it now.
    #[arg(long)]
    pub no_start: bool,
    /// Print the service file instead of installing it.
    #[arg(long)]
    pub print: bool,
    /// The kind of service file [default: this system's: systemd on Linux, launchd on macOS].
    #[arg(long, value_enum, value_name = "KIND")]
    pub manager: Option<Manager>,
}

/// What a service runs hephd as.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceMode {
    /// This device's sync daemon: owns the replica, serves heph on a socket beside it.
    Local,
    /// A hub.
    Server,
}

/// Runs one `heph daemon` command; `db` is heph's --db, `yes` its --yes.
pub fn run(action: DaemonAction, db: Option<&Path>, json: bool, yes: bool) -> Result<()> {
    match action {
        DaemonAction::Install(args) => install(&args, db, json),
        DaemonAction::Start => control(json, "start"),
        DaemonAction::Stop => control(json, "stop"),
        DaemonAction::Restart => control(json, "restart"),
        DaemonAction::Status => status::run(db, json),
        DaemonAction::Uninstall => uninstall(yes, json),
    }
}

/// The installed service file and its settings, if there is one.
fn installed(manager: Manager) -> Result<(PathBuf, Option<Settings>)> {
    let file = manager.file()?;
    match std::fs::read_to_string(&file) {
        Ok(text) => Ok((file, Some(manager.parse(&text)))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((file, None)),
        Err(e) => Err(e).with_context(|| format!("reading {}", file.display())),
    }
}

/// The settings given on the command line, as changes to the installed
/// ones (an empty value removes a setting).
fn given(args: &InstallArgs, db: Option<&Path>) -> Result<Vec<(String, String)>> {
    let mut changes = Vec::new();
    let mut put = |key: &str, value: Option<String>| {
        if let Some(v) = value {
            changes.push((key.to_string(), v));
        }
    };
    put("HEPH_MODE", args.mode.map(|m| if m == ServiceMode::Server { "server" } else { "local" }.into()));
    put("HEPH_HUB_URL", args.hub_url.clone());
    put("HEPH_DB", db.map(service::absolute_text).transpose()?);
    put("HEPH_CA_FILE", args.ca_file.as_deref().map(Path::new).map(service::absolute_text).transpose()?);
    changes.extend(args.hub.changes()?);
    Ok(changes)
}

/// Fills in what a service cannot do without, and refuses settings hephd
/// would refuse at start, where the user can still fix them.
fn complete(settings: &mut Settings) -> Result<()> {
    if settings.get("HEPH_MODE").is_none() {
        settings.set("HEPH_MODE", "local");
    }
    let server = match settings.get("HEPH_MODE") {
        Some("local") => false,
        Some("server") => true,
        Some(other) => bail!("the service's mode is {other:?}; pass --mode local or --mode server"),
        None => false,
    };
    if settings.get("HEPH_DB").is_none() {
        // A service does not run with heph's environment: name the store.
        let db = if server {
            dirs::data_dir().context("cannot find your data folder; pass --db PATH")?.join("heph").join("hub.db")
        } else {
            store::path(None)?
        };
        settings.set("HEPH_DB", service::absolute_text(&db)?);
    }
    match settings.get("HEPH_HUB_URL") {
        None if !server => bail!(
            "a device daemon needs its hub: pass --hub-url URL (e.g. --hub-url wss://heph.example.org), \
             or --mode server for a hub"
        ),
        Some(url) if !["ws://", "wss://", "http://", "https://"].iter().any(|s| url.starts_with(s)) => {
            bail!("--hub-url {url:?} is not a hub URL: give ws://, wss://, http:// or https:// and the host")
        }
        _ => {}
    }
    if let Some(addr) = settings.get("HEPH_HTTP_ADDR")
        && addr.parse::<SocketAddr>().is_err()
    {
        bail!("--http-addr {addr:?} is not an address and port, e.g. 127.0.0.1:8787");
    }
    if settings.get("HEPH_OIDC_ISSUER").is_some() != settings.get("HEPH_OIDC_AUDIENCE").is_some() {
        bail!("--oidc-issuer and --oidc-audience go together: give both (or clear both with \"\")");
    }
    Ok(())
}

#[derive(Serialize)]
struct Installed {
    manager: Manager,
    file: PathBuf,
    exec: PathBuf,
    settings: serde_json::Value,
    enabled: bool,
    started: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    manager_error: Option<String>,
}

fn install(args: &InstallArgs, db: Option<&Path>, json: bool) -> Result<()> {
    let manager = args.manager.unwrap_or_else(Manager::native);
    if manager != Manager::native() && !args.print {
        bail!(
            "{manager:?} services are installed only where they run ({}); --print shows the file here",
            if manager == Manager::Launchd { "macOS" } else { "Linux" }
        );
    }
    let (file, existing) = installed(manager)?;
    let mut settings = if args.fresh { Settings::new() } else { existing.unwrap_or_default() };
    settings.apply(&given(args, db)?);
    complete(&mut settings)?;
    let beside = std::env::current_exe().ok();
    let exec = service::find_hephd(args.hephd.as_deref(), beside.as_deref()).map_err(anyhow::Error::msg)?;
    let text = manager.render(&exec, &settings)?;
    if args.print {
        print!("{text}");
        return Ok(());
    }
    write_file(&file, &text)?;
    let outcome = manager.activate(&file, !args.no_start);
    let (enabled, started, manager_error) = match outcome {
        Outcome::Done(_) => (true, !args.no_start, None),
        Outcome::Unreachable(why) => (false, false, Some(why)),
        Outcome::Failed(why) => (false, false, Some(why)),
    };
    if json {
        let report = Installed { manager, file, exec, settings: settings.to_json(), enabled, started, manager_error };
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let flags = settings.as_flags().iter().map(|w| service::sh_quote(w)).collect::<Vec<_>>().join(" ");
    println!("Wrote {}: {} {flags}", file.display(), exec.display());
    match manager_error {
        None if started => println!("Enabled and started {}; `heph daemon status` shows how it runs.", manager.unit()),
        None => println!("Enabled {}; `heph daemon start` starts it.", manager.unit()),
        Some(why) => {
            println!("The service manager cannot be reached here ({why}), so the service is not enabled or started.");
            println!("To start it: {}; then run `heph daemon start`.", manager.unreachable_help());
            println!("Or run the daemon yourself: {}", settings.command_line(&exec));
        }
    }
    Ok(())
}

/// `start`, `stop`, `restart`.
fn control(json: bool, verb: &str) -> Result<()> {
    let manager = Manager::native();
    let (file, settings) = installed(manager)?;
    let Some(settings) = settings else {
        bail!(
            "no hephd service is installed ({} does not exist); install one: heph daemon install --hub-url URL",
            file.display()
        );
    };
    let outcome = match verb {
        "start" => manager.start(&file),
        "stop" => manager.stop(),
        _ => manager.restart(&file),
    };
    let exec = service::find_hephd(None, std::env::current_exe().ok().as_deref()).ok();
    check(outcome, manager, &format!("{verb} {}", manager.unit()), &settings, exec.as_deref())?;
    let past = match verb {
        "start" => "Started",
        "stop" => "Stopped",
        _ => "Restarted",
    };
    if json {
        println!("{}", serde_json::json!({ "unit": manager.unit(), "done": verb }));
    } else {
        println!("{past} {}.", manager.unit());
    }
    Ok(())
}

fn uninstall(yes: bool, json: bool) -> Result<()> {
    let manager = Manager::native();
    let (file, settings) = installed(manager)?;
    let Some(settings) = settings else {
        if json {
            println!("{}", serde_json::json!({ "removed": false, "file": file }));
        } else {
            println!("No hephd service is installed ({} does not exist); nothing to do.", file.display());
        }
        return Ok(());
    };
    let store = settings.get("HEPH_DB").map_or_else(|| "its default place".to_string(), str::to_string);
    let plan = format!(
        "This stops and disables {}, and removes {}.\nThe store and everything in it stay ({store}).",
        manager.unit(),
        file.display()
    );
    crate::confirm::ask(yes, &plan, "Uninstall?")?;
    // A manager that cannot be reached has nothing running to stop: the
    // file goes either way.
    let stopped = match manager.disable() {
        Outcome::Done(_) => None,
        Outcome::Unreachable(why) => Some(format!("the service manager cannot be reached ({why})")),
        Outcome::Failed(why) => Some(why),
    };
    std::fs::remove_file(&file).with_context(|| format!("removing {}", file.display()))?;
    let _ = manager.forget();
    // The audit log beside the store the service ran on.
    if let Some(db) = settings.get("HEPH_DB").map(PathBuf::from).or_else(|| store::path(None).ok()) {
        let fields = serde_json::json!({
            "who": heph_hub::audit::local_user(),
            "unit": manager.unit(),
            "file": file,
            "store": db,
            "stop_error": stopped,
        });
        if let Err(e) = heph_hub::audit::append(&heph_hub::audit::beside(&db), "service_uninstalled", fields) {
            eprintln!("heph: the service is removed, but the audit log could not be written: {e:#}");
        }
    }
    if json {
        println!("{}", serde_json::json!({ "removed": true, "file": file, "stop_error": stopped }));
    } else {
        if let Some(why) = stopped {
            println!("Could not stop the service first: {why}.");
        }
        println!("Removed {}.", file.display());
    }
    Ok(())
}
