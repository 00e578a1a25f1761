//! The service managers `heph daemon` drives: systemd's user instance
//! (`systemctl --user`) on Linux, launchd (`launchctl`) on macOS. Each
//! answers the same questions: where its file goes, how to write and read
//! it, and how to start, stop and inspect the service.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, anyhow, bail};
use clap::ValueEnum;
use heph_hub::service::{self, LAUNCHD_LABEL, Settings, UNIT_NAME};
use serde::Serialize;

/// A service manager.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Manager {
    /// A systemd user unit (Linux): $XDG_CONFIG_HOME/systemd/user/hephd.service.
    Systemd,
    /// A launchd agent (macOS): ~/Library/LaunchAgents/org.heph.hephd.plist.
    Launchd,
}

/// What running a manager's command came to.
pub enum Outcome {
    /// It worked; its standard output.
    Done(String),
    /// The manager cannot be reached from here (no user bus, no systemctl).
    Unreachable(String),
    /// It answered with a failure; its message.
    Failed(String),
}

/// How the service stands, as the manager sees it.
#[derive(Debug, Default, Serialize, schemars::JsonSchema)]
pub struct UnitState {
    /// active, inactive, failed, activating… (launchd: running, not running, not loaded).
    pub active: String,
    /// systemd's sub-state (running, dead, auto-restart…).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// enabled, disabled… (systemd only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<String>,
    /// The daemon's process id while it runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
}

impl Manager {
    /// The manager of this operating system.
    #[must_use]
    pub fn native() -> Self {
        if cfg!(target_os = "macos") { Self::Launchd } else { Self::Systemd }
    }

    /// What the service is called by this manager.
    #[must_use]
    pub fn unit(self) -> &'static str {
        match self {
            Self::Systemd => UNIT_NAME,
            Self::Launchd => LAUNCHD_LABEL,
        }
    }

    /// Where the service file goes.
    pub fn file(self) -> Result<PathBuf> {
        match self {
            Self::Systemd => {
                let config =
                    dirs::config_dir().context("cannot find your configuration folder; set XDG_CONFIG_HOME or HOME")?;
                Ok(config.join("systemd").join("user").join(UNIT_NAME))
            }
            Self::Launchd => {
                let home = dirs::home_dir().context("cannot find your home folder; set HOME")?;
                Ok(home.join("Library").join("LaunchAgents").join(format!("{LAUNCHD_LABEL}.plist")))
            }
        }
    }

    /// The service file that runs `exec` with `settings`.
    pub fn render(self, exec: &Path, settings: &Settings) -> Result<String> {
        Ok(match self {
            Self::Systemd => service::user_unit(exec, settings)?,
            Self::Launchd => {
                let home = dirs::home_dir().context("cannot find your home folder; set HOME")?;
                service::launchd_plist(exec, settings, &home.join("Library").join("Logs").join("hephd.log"))?
            }
        })
    }

    /// The settings a service file carries.
    #[must_use]
    pub fn parse(self, text: &str) -> Settings {
        match self {
            Self::Systemd => service::parse_unit(text),
            Self::Launchd => service::parse_plist(text),
        }
    }

    /// After the file changed: make the manager read it, enable the
    /// service, and (re)start it when `start`.
    pub fn activate(self, file: &Path, start: bool) -> Outcome {
        match self {
            Self::Systemd => {
                for args in [&["daemon-reload"][..], &["enable", UNIT_NAME]] {
                    let outcome = systemctl(args);
                    if !matches!(outcome, Outcome::Done(_)) {
                        return outcome;
                    }
                }
                if start { systemctl(&["restart", UNIT_NAME]) } else { Outcome::Done(String::new()) }
            }
            Self::Launchd => {
                // Loading an agent starts it (RunAtLoad); a loaded one must be
                // unloaded first for the new file to count.
                let _ = launchctl(&["bootout", &launchd_target()]);
                if start {
                    launchctl(&["bootstrap", &launchd_domain(), &file.to_string_lossy()])
                } else {
                    Outcome::Done(String::new())
                }
            }
        }
    }

    /// Starts the service.
    pub fn start(self, file: &Path) -> Outcome {
        match self {
            Self::Systemd => systemctl(&["start", UNIT_NAME]),
            Self::Launchd => match launchctl(&["bootstrap", &launchd_domain(), &file.to_string_lossy()]) {
                // Already loaded: run it now.
                Outcome::Failed(_) => launchctl(&["kickstart", &launchd_target()]),
                other => other,
            },
        }
    }

    /// Stops the service (it stays enabled for the next login).
    pub fn stop(self) -> Outcome {
        match self {
            Self::Systemd => systemctl(&["stop", UNIT_NAME]),
            Self::Launchd => launchctl(&["bootout", &launchd_target()]),
        }
    }

    /// Stops and starts the service (with its file as it is now).
    pub fn restart(self, file: &Path) -> Outcome {
        match self {
            Self::Systemd => systemctl(&["restart", UNIT_NAME]),
            Self::Launchd => {
                let _ = launchctl(&["bootout", &launchd_target()]);
                launchctl(&["bootstrap", &launchd_domain(), &file.to_string_lossy()])
            }
        }
    }

    /// Stops the service and makes sure it does not start again.
    pub fn disable(self) -> Outcome {
        match self {
            Self::Systemd => systemctl(&["disable", "--now", UNIT_NAME]),
            Self::Launchd => match launchctl(&["bootout", &launchd_target()]) {
                // Not loaded: nothing to stop.
                Outcome::Failed(_) => Outcome::Done(String::new()),
                other => other,
            },
        }
    }

    /// After the file was removed.
    pub fn forget(self) -> Outcome {
        match self {
            Self::Systemd => systemctl(&["daemon-reload"]),
            Self::Launchd => Outcome::Done(String::new()),
        }
    }

    /// How the service stands, or why the manager cannot say.
    pub fn state(self) -> Result<UnitState, String> {
        match self {
            Self::Systemd => {
                let props = "--property=LoadState,ActiveState,SubState,UnitFileState,MainPID";
                match systemctl(&["show", props, UNIT_NAME]) {
                    Outcome::Done(text) => Ok(parse_show(&text)),
                    Outcome::Unreachable(why) | Outcome::Failed(why) => Err(why),
                }
            }
            Self::Launchd => match launchctl(&["print", &launchd_target()]) {
                Outcome::Done(text) => Ok(parse_launchctl_print(&text)),
                Outcome::Failed(_) => Ok(UnitState { active: "not loaded".into(), ..UnitState::default() }),
                Outcome::Unreachable(why) => Err(why),
            },
        }
    }

    /// What to tell someone whose manager cannot be reached.
    #[must_use]
    pub fn unreachable_help(self) -> &'static str {
        match self {
            Self::Systemd => {
                "systemd's user instance runs in a login session: log in to this machine (ssh or a desktop), or \
                 keep one for your user without a login with `loginctl enable-linger $USER` (as root), then check \
                 that `systemctl --user status` answers"
            }
            Self::Launchd => "log in to the macOS desktop session of your user; agents run in its gui/ domain",
        }
    }

    /// The error for a command that needs the manager when it cannot be reached.
    #[must_use]
    pub fn unreachable_error(self, why: &str, settings: &Settings, exec: Option<&Path>) -> anyhow::Error {
        let tool = match self {
            Self::Systemd => "systemctl --user",
            Self::Launchd => "launchctl",
        };
        let by_hand =
            exec.map(|e| format!("; meanwhile you can run the daemon yourself: {}", settings.command_line(e)));
        anyhow!(
            "{tool} cannot reach your service manager ({why}): {}{}",
            self.unreachable_help(),
            by_hand.unwrap_or_default()
        )
    }
}

/// Runs a manager command, telling "cannot reach the manager" apart from
/// "the manager said no".
fn run(program: &str, args: &[&str], unreachable: impl Fn(&str) -> bool) -> Outcome {
    match Command::new(program).args(args).output() {
        Err(e) => Outcome::Unreachable(format!("cannot run {program}: {e}")),
        Ok(out) => {
            let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
            if out.status.success() {
                Outcome::Done(String::from_utf8_lossy(&out.stdout).into_owned())
            } else if unreachable(&stderr) {
                Outcome::Unreachable(stderr)
            } else if stderr.is_empty() {
                Outcome::Failed(format!("{program} {} failed ({})", args.join(" "), out.status))
            } else {
                Outcome::Failed(stderr)
            }
        }
    }
}

fn systemctl(args: &[&str]) -> Outcome {
    let mut all = vec!["--user"];
    all.extend_from_slice(args);
    run("systemctl", &all, |stderr| {
        stderr.contains("Failed to connect to bus")
            || stderr.contains("DBUS_SESSION_BUS_ADDRESS")
            || stderr.contains("not been booted with systemd")
    })
}

fn launchctl(args: &[&str]) -> Outcome {
    run("launchctl", args, |stderr| stderr.contains("Could not find domain"))
}

/// The user's launchd domain: gui/UID.
fn launchd_domain() -> String {
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "501".into());
    format!("gui/{uid}")
}

fn launchd_target() -> String {
    format!("{}/{LAUNCHD_LABEL}", launchd_domain())
}

/// `systemctl show` output: KEY=VALUE lines.
fn parse_show(text: &str) -> UnitState {
    let mut state = UnitState::default();
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else { continue };
        match k {
            "ActiveState" => state.active = v.into(),
            "SubState" => state.sub = Some(v.into()).filter(|s: &String| !s.is_empty()),
            "UnitFileState" => state.enabled = Some(v.into()).filter(|s: &String| !s.is_empty()),
            "MainPID" => state.pid = v.parse().ok().filter(|p| *p != 0),
            _ => {}
        }
    }
    state
}

/// `launchctl print` output: `state = running`, `pid = 123` among much else.
fn parse_launchctl_print(text: &str) -> UnitState {
    let mut state = UnitState::default();
    for line in text.lines() {
        let Some((k, v)) = line.trim().split_once(" = ") else { continue };
        match k {
            "state" if state.active.is_empty() => state.active = v.into(),
            "pid" if state.pid.is_none() => state.pid = v.parse().ok(),
            _ => {}
        }
    }
    state
}

/// Writes `text` to `file` whole or not at all (a temporary file beside it, renamed).
pub fn write_file(file: &Path, text: &str) -> Result<()> {
    let dir = file.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).with_context(|| format!("writing in {}", dir.display()))?;
    std::io::Write::write_all(&mut tmp, text.as_bytes()).with_context(|| format!("writing {}", file.display()))?;
    use std::os::unix::fs::PermissionsExt;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))
        .with_context(|| format!("writing {}", file.display()))?;
    tmp.persist(file).map_err(|e| anyhow!("writing {}: {}", file.display(), e.error))?;
    Ok(())
}

/// Checks `outcome` worked; otherwise the error to show.
pub fn check(outcome: Outcome, manager: Manager, what: &str, settings: &Settings, exec: Option<&Path>) -> Result<()> {
    match outcome {
        Outcome::Done(_) => Ok(()),
        Outcome::Unreachable(why) => Err(manager.unreachable_error(&why, settings, exec)),
        Outcome::Failed(why) => bail!("{what} failed: {why}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemctl_show_is_read() {
        let s =
            parse_show("LoadState=loaded\nActiveState=active\nSubState=running\nUnitFileState=enabled\nMainPID=42\n");
        assert_eq!(
            (s.active.as_str(), s.sub.as_deref(), s.enabled.as_deref(), s.pid),
            ("active", Some("running"), Some("enabled"), Some(42))
        );
        let s = parse_show("ActiveState=inactive\nSubState=dead\nMainPID=0\nUnitFileState=\n");
        assert_eq!((s.pid, s.enabled), (None, None));
    }

    #[test]
    fn launchctl_print_is_read() {
        let s = parse_launchctl_print(
            "gui/501/org.heph.hephd = {\n\tactive count = 1\n\tstate = running\n\tpid = 812\n}\n",
        );
        assert_eq!((s.active.as_str(), s.pid), ("running", Some(812)));
    }
}
