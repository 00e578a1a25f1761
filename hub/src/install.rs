//! `hephd install-service`: the hub as a system service. Writes a hardened
//! systemd unit (see `heph_hub::service::system_unit`), creates the account
//! it runs as, and enables it. Installing again keeps the settings the unit
//! already carries unless given anew.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::Parser;
use heph_hub::service::{self, Settings, SystemUnit, UNIT_NAME};

use crate::config::Config;

/// Where the hub's store goes unless --db says otherwise (systemd's
/// StateDirectory=heph).
const STATE_DIR: &str = "/var/lib/heph";

/// `hephd install-service`'s flags (and the global --db).
#[derive(clap::Args, Debug, Clone)]
pub struct InstallService {
    /// The hub's settings [--http-addr default: 127.0.0.1:8787, or the unit's].
    #[command(flatten)]
    pub hub: service::HubFlags,
    /// The account the hub runs as; created (a system account) if missing.
    #[arg(long, default_value = "heph", value_name = "NAME")]
    pub user: String,
    /// The hephd binary the unit runs [default: this one].
    #[arg(long, value_name = "PATH")]
    pub hephd: Option<PathBuf>,
    /// Print the unit instead of installing it (needs no root).
    #[arg(long)]
    pub print: bool,
    /// Install and enable the unit, but do not start (or restart) it now.
    #[arg(long)]
    pub no_start: bool,
    /// Forget the settings the installed unit carries; start from the ones given now.
    #[arg(long)]
    pub fresh: bool,
    /// The directory of system units.
    #[arg(long, env = "HEPH_SYSTEMD_DIR", default_value = "/etc/systemd/system", value_name = "DIR")]
    pub unit_dir: PathBuf,
}

/// Runs `hephd install-service`.
pub fn run(cfg: &Config, args: &InstallService) -> Result<()> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if !args.print && unsafe { libc::geteuid() } != 0 {
        bail!(
            "installing a system service needs root: run `sudo hephd install-service …`, or pass --print to see the unit"
        );
    }
    let file = args.unit_dir.join(UNIT_NAME);
    let mut settings = match std::fs::read_to_string(&file) {
        Ok(text) if !args.fresh => service::parse_unit(&text),
        Ok(_) => Settings::new(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Settings::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
    };
    settings.apply(&given(cfg, args)?);
    settings.set("HEPH_MODE", "server");
    if settings.get("HEPH_DB").is_none() {
        settings.set("HEPH_DB", format!("{STATE_DIR}/hub.db"));
    }
    check(&settings)?;
    let exec = service::find_hephd(args.hephd.as_deref().or(std::env::current_exe().ok().as_deref()), None)
        .map_err(anyhow::Error::msg)?;
    let db = PathBuf::from(settings.get("HEPH_DB").unwrap_or_default());
    let mut writable = vec![db.parent().map_or_else(|| PathBuf::from(STATE_DIR), Path::to_path_buf)];
    if let Some(audit) = settings.get("HEPH_AUDIT_LOG").map(Path::new).and_then(Path::parent)
        && !writable.iter().any(|w| w == audit)
    {
        writable.push(audit.to_path_buf());
    }
    let hidden: Vec<&Path> = [Some(exec.as_path()), Some(db.as_path()), settings.get("HEPH_WEB_ROOT").map(Path::new)]
        .into_iter()
        .flatten()
        .filter(|p| hidden_by_sandbox(p))
        .collect();
    let text =
        service::system_unit(&SystemUnit { exec: &exec, settings: &settings, user: &args.user, writable: &writable })?;
    if args.print {
        for p in &hidden {
            eprintln!(
                "hephd: warning: {} is under a home directory, which the unit's ProtectHome=yes hides from the service",
                p.display()
            );
        }
        print!("{text}");
        return Ok(());
    }
    if let Some(p) = hidden.first() {
        bail!(
            "{} is under a home directory, which the service cannot see (ProtectHome=yes): \
             copy hephd to /usr/local/bin (install -m 0755 hephd /usr/local/bin/) and keep the store and web root \
             elsewhere, e.g. under {STATE_DIR}",
            p.display()
        );
    }
    ensure_user(&args.user)?;
    for dir in writable.iter().filter(|d| !d.starts_with(STATE_DIR)) {
        // systemd makes /var/lib/heph for the service; any other place is ours to make.
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        run_tool("chown", &[&format!("{0}:{0}", args.user), &dir.to_string_lossy()])?;
    }
    std::fs::create_dir_all(&args.unit_dir).with_context(|| format!("creating {}", args.unit_dir.display()))?;
    let tmp = file.with_extension("service.tmp");
    std::fs::write(&tmp, &text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &file).with_context(|| format!("writing {}", file.display()))?;
    println!("Wrote {} (hephd {}).", file.display(), settings.as_flags().join(" "));
    let steps: &[&[&str]] = if args.no_start {
        &[&["daemon-reload"], &["enable", UNIT_NAME]]
    } else {
        &[&["daemon-reload"], &["enable", UNIT_NAME], &["restart", UNIT_NAME]]
    };
    for step in steps {
        match Command::new("systemctl").args(*step).output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => {
                let why = String::from_utf8_lossy(&out.stderr).trim().to_string();
                if why.contains("not been booted with systemd") || why.contains("Failed to connect to bus") {
                    println!("systemd is not running here ({why}): the unit is written but not enabled.");
                    println!("Where systemd runs: systemctl daemon-reload && systemctl enable --now {UNIT_NAME}");
                    return Ok(());
                }
                bail!("systemctl {} failed: {why}; see `journalctl -u {UNIT_NAME}`", step.join(" "));
            }
            Err(e) => {
                println!("cannot run systemctl ({e}): the unit is written but not enabled.");
                return Ok(());
            }
        }
    }
    if args.no_start {
        println!("Enabled {UNIT_NAME}; start it with `systemctl start {UNIT_NAME}`.");
    } else {
        println!(
            "Enabled and started {UNIT_NAME}; `systemctl status {UNIT_NAME}` and `journalctl -u {UNIT_NAME}` show how it runs."
        );
    }
    Ok(())
}

/// The settings given on the command line (an empty value removes one).
fn given(cfg: &Config, args: &InstallService) -> Result<Vec<(String, String)>> {
    let path = |p: &Path| service::absolute_text(p);
    let mut changes = Vec::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            changes.push((k.to_string(), v));
        }
    };
    put("HEPH_DB", cfg.db.as_deref().map(path).transpose()?);
    put("HEPH_AUDIT_LOG", cfg.audit_log.as_deref().map(path).transpose()?);
    changes.extend(args.hub.changes()?);
    Ok(changes)
}

/// Refuses what hephd would refuse at start, while it can still be fixed here.
fn check(settings: &Settings) -> Result<()> {
    let mut argv = vec!["hephd".to_string()];
    for (flag, key) in service::FLAGS {
        if let Some(v) = settings.get(key) {
            argv.push(format!("{flag}={v}"));
        }
    }
    let mut cfg = Config::try_parse_from(&argv).map_err(|e| anyhow::anyhow!("{}", e.to_string().trim()))?;
    cfg.insecure_no_auth |= settings.get("HEPH_INSECURE_NO_AUTH").is_some_and(|v| v != "false");
    cfg.check_exposure()
}

/// Whether ProtectHome=yes hides `path` from the service.
fn hidden_by_sandbox(path: &Path) -> bool {
    ["/home", "/root", "/run/user"].iter().any(|dir| path.starts_with(dir))
}

/// Creates the system account `user` (and its group) unless it exists.
fn ensure_user(user: &str) -> Result<()> {
    if Command::new("id").arg("-u").arg(user).output().is_ok_and(|o| o.status.success()) {
        return Ok(());
    }
    run_tool(
        "useradd",
        &[
            "--system",
            "--user-group",
            "--home-dir",
            STATE_DIR,
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            user,
        ],
    )
    .with_context(|| {
        format!("creating the account {user:?}; create it yourself (useradd --system {user}) and try again")
    })?;
    println!("Created the system account {user}.");
    Ok(())
}

fn run_tool(program: &str, args: &[&str]) -> Result<()> {
    let out = Command::new(program).args(args).output().with_context(|| format!("cannot run {program}"))?;
    if !out.status.success() {
        bail!("{program} {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}
