//! systemd units: hephd as a user service (a device's daemon) and as a
//! hardened system service (a hub), and reading the settings back out of a
//! unit written earlier. Quoting follows systemd.syntax(7) and
//! systemd.service(5): `%` starts a specifier (written `%%`), `$` a variable
//! in a command line (written `$$`), and a double-quoted word takes C escapes.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::{ServiceError, Settings};

/// A hub's system unit, as `hephd install-service` writes it.
#[derive(Debug, Clone)]
pub struct SystemUnit<'a> {
    /// The hephd binary (absolute).
    pub exec: &'a Path,
    /// hephd's environment (`HEPH_MODE=server`, `HEPH_DB`, …).
    pub settings: &'a Settings,
    /// The dedicated account hephd runs as.
    pub user: &'a str,
    /// The directories hephd may write: the store's (and so the audit log's).
    pub writable: &'a [PathBuf],
}

/// A device's user unit: runs `exec` with `settings` in the user's session.
pub fn user_unit(exec: &Path, settings: &Settings) -> Result<String, ServiceError> {
    settings.check()?;
    let mode = settings.get("HEPH_MODE").unwrap_or("server");
    let what = if mode == "server" { "hub" } else { "device daemon" };
    let mut unit = String::new();
    unit.push_str(
        "# hephd as a service of this user, written by `heph daemon install`.\n\
         # Run `heph daemon install` again to change it: the settings below are\n\
         # kept unless given anew. hephd reads each HEPH_* variable as its flag.\n",
    );
    let _ = write!(
        unit,
        "[Unit]\nDescription=heph {what} (hephd --mode {mode})\n\n[Service]\nType=exec\nExecStart={}\n",
        exec_word(exec)
    );
    environment(&mut unit, settings);
    unit.push_str(
        "Restart=on-failure\nRestartSec=2s\n\
         # Every acknowledged write is on disk already; this is for closing connections.\n\
         TimeoutStopSec=20s\n\n[Install]\nWantedBy=default.target\n",
    );
    Ok(unit)
}

/// A hub's system unit: a dedicated user, its state under /var/lib, and a
/// sandbox that leaves hephd the network, its store, and nothing else.
///
/// hephd needs no capability (it listens on an unprivileged port, behind a
/// TLS proxy), executes no generated code (no JIT, no wasm), so
/// `MemoryDenyWriteExecute` holds, and uses only `@system-service` calls
/// (`hub/tests/syscalls.rs` checks both on a hub under strace).
pub fn system_unit(unit: &SystemUnit<'_>) -> Result<String, ServiceError> {
    unit.settings.check()?;
    let mut text = String::new();
    text.push_str(
        "# The heph hub, written by `hephd install-service`.\n\
         # Run `hephd install-service` again to change it: the settings below are\n\
         # kept unless given anew. hephd reads each HEPH_* variable as its flag.\n",
    );
    let _ = write!(
        text,
        "[Unit]\nDescription=heph hub (hephd --mode server)\nWants=network-online.target\n\
         After=network-online.target\n\n[Service]\nType=exec\nExecStart={}\nUser={}\nGroup={}\n",
        exec_word(unit.exec),
        unit.user,
        unit.user
    );
    environment(&mut text, unit.settings);
    text.push_str(
        "Restart=on-failure\nRestartSec=2s\nTimeoutStopSec=20s\n\
         # Every connection is a file descriptor.\nLimitNOFILE=65536\n\
         # /var/lib/heph, owned by the service's user.\n\
         StateDirectory=heph\nStateDirectoryMode=0700\nUMask=0077\n\n\
         # The sandbox: a read-only system, no home directories, no devices,\n\
         # no privileges to gain, and only the system calls of an ordinary service.\n\
         ProtectSystem=strict\nProtectHome=yes\nPrivateTmp=yes\nPrivateDevices=yes\n\
         NoNewPrivileges=yes\nProtectKernelTunables=yes\nProtectKernelModules=yes\n\
         ProtectKernelLogs=yes\nProtectControlGroups=yes\nProtectClock=yes\nProtectHostname=yes\n\
         ProtectProc=invisible\nRestrictAddressFamilies=AF_UNIX AF_INET AF_INET6\n\
         RestrictNamespaces=yes\nRestrictRealtime=yes\nRestrictSUIDSGID=yes\nLockPersonality=yes\n\
         MemoryDenyWriteExecute=yes\nRemoveIPC=yes\nSystemCallArchitectures=native\n\
         SystemCallFilter=@system-service\nSystemCallErrorNumber=EPERM\n\
         CapabilityBoundingSet=\nAmbientCapabilities=\n",
    );
    for dir in unit.writable {
        let _ = writeln!(text, "ReadWritePaths={}", path_word(dir));
    }
    text.push_str("\n[Install]\nWantedBy=multi-user.target\n");
    Ok(text)
}

/// The `Environment=` entries of a unit, in order (a bare `Environment=`
/// empties the list, as systemd reads it). Lines that are not
/// `Environment=` are ignored; so are words without `=`.
#[must_use]
pub fn parse_unit(text: &str) -> Settings {
    let mut settings = Settings::new();
    for line in text.lines() {
        let Some(value) = line.trim_start().strip_prefix("Environment=") else { continue };
        let words = split_words(value);
        if words.is_empty() {
            settings = Settings::new();
        }
        for word in words {
            if let Some((k, v)) = word.split_once('=') {
                settings.set(k, v);
            }
        }
    }
    settings
}

fn environment(unit: &mut String, settings: &Settings) {
    for (k, v) in settings.iter() {
        let _ = writeln!(unit, "Environment=\"{k}={}\"", escape(v));
    }
}

/// A value inside double quotes: backslash and quote escaped, `%` doubled.
fn escape(value: &str) -> String {
    value.replace('\\', r"\\").replace('"', "\\\"").replace('%', "%%")
}

/// A path as the first word of a command line.
fn exec_word(path: &Path) -> String {
    let text = path.to_string_lossy();
    let escaped = escape(&text).replace('$', "$$");
    if text.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+".contains(c)) {
        escaped
    } else {
        format!("\"{escaped}\"")
    }
}

/// A path in a space-separated list setting.
fn path_word(path: &Path) -> String {
    let text = path.to_string_lossy();
    let escaped = escape(&text);
    if text.contains(char::is_whitespace) { format!("\"{escaped}\"") } else { escaped }
}

/// Splits a setting's value into words: whitespace separates, single or
/// double quotes group, a backslash escapes the next character (with the C
/// escapes \n and \t), and `%%` is a literal `%`.
fn split_words(value: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut chars = value.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return words;
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        while let Some(c) = chars.next() {
            match (c, quote) {
                ('\\', _) => match chars.next() {
                    Some('n') => word.push('\n'),
                    Some('t') => word.push('\t'),
                    Some(other) => word.push(other),
                    None => {}
                },
                ('"' | '\'', None) => quote = Some(c),
                (c, Some(q)) if c == q => quote = None,
                (c, None) if c.is_whitespace() => break,
                ('%', _) if chars.peek() == Some(&'%') => {
                    chars.next();
                    word.push('%');
                }
                (c, _) => word.push(c),
            }
        }
        words.push(word);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_round_trips_through_quoting() {
        let mut s = Settings::new();
        s.set("HEPH_MODE", "local");
        s.set("HEPH_DB", r#"/home/a b/50% "x"\y.db"#);
        s.set("HEPH_HUB_URL", "wss://heph.example.org");
        let unit = user_unit(Path::new("/opt/he ph/hephd"), &s).unwrap();
        assert!(unit.contains("ExecStart=\"/opt/he ph/hephd\"\n"), "{unit}");
        assert_eq!(parse_unit(&unit), s);
    }

    #[test]
    fn hand_written_lines_are_read() {
        let text =
            "[Service]\nEnvironment=A=1 \"B=two words\" 'C=x'\nEnvironment=\nEnvironment=D=%%4\nEnvironment=E=5\n";
        let s = parse_unit(text);
        assert_eq!(s.iter().collect::<Vec<_>>(), [("D", "%4"), ("E", "5")]);
        let s = parse_unit("Environment=A=1 \"B=two words\"\n");
        assert_eq!(s.get("B"), Some("two words"));
    }
}
