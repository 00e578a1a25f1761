//! The files that make hephd an OS service: a systemd unit (a user unit for
//! a device, a hardened system unit for a hub) and a launchd agent (macOS).
//!
//! Everything a service passes to hephd is an environment entry, never a
//! command-line flag: hephd reads a `HEPH_*` variable for each of its flags
//! (`--hub-url` is `HEPH_HUB_URL`, …), and an environment list is easy to
//! read back out of a unit written earlier. That is what lets `heph daemon
//! install` and `hephd install-service` regenerate a service while keeping
//! the settings it already carries ([`Settings::merge`]).
//!
//! This module only renders and parses text; writing the files and talking
//! to systemctl or launchctl is the callers' job.

mod launchd;
mod systemd;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use launchd::{LAUNCHD_LABEL, launchd_plist, parse_plist};
pub use systemd::{SystemUnit, parse_unit, system_unit, user_unit};

/// The name of the unit both kinds of systemd service use.
pub const UNIT_NAME: &str = "hephd.service";

/// Why a service file could not be written as asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// A value holds a character a unit file cannot carry (a line break, a NUL).
    #[error("{key}={value:?} cannot go into a service file: it holds a control character; give it without one")]
    ControlCharacter {
        /// The environment entry.
        key: String,
        /// Its value.
        value: String,
    },
    /// An entry name that is not a plain environment variable name.
    #[error("{0:?} is not an environment variable name (letters, digits and _ only)")]
    BadName(String),
}

/// The environment a service gives hephd, by name. Rendered in a fixed
/// order: the flags of [`FLAGS`] first, in that order, then any other
/// entries (kept from a hand-edited unit) by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings(BTreeMap<String, String>);

/// hephd's flags a service commonly carries, with their environment names.
pub const FLAGS: &[(&str, &str)] = &[
    ("--mode", "HEPH_MODE"),
    ("--hub-url", "HEPH_HUB_URL"),
    ("--db", "HEPH_DB"),
    ("--http-addr", "HEPH_HTTP_ADDR"),
    ("--oidc-issuer", "HEPH_OIDC_ISSUER"),
    ("--oidc-audience", "HEPH_OIDC_AUDIENCE"),
    ("--oidc-client-id", "HEPH_OIDC_CLIENT_ID"),
    ("--web-root", "HEPH_WEB_ROOT"),
    // Repeatable: hephd splits the variable at commas (an origin has none).
    ("--cors-origin", "HEPH_CORS_ORIGIN"),
    // Repeatable, comma-separated too.
    ("--trusted-proxy", "HEPH_TRUSTED_PROXY"),
    ("--ca-file", "HEPH_CA_FILE"),
];

impl Settings {
    /// No entries.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The value of `key`, if set.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Sets `key` to `value`; an empty value removes the entry (the way a
    /// setting is cleared on regeneration).
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        let value = value.into();
        if value.is_empty() {
            self.0.remove(key);
        } else {
            self.0.insert(key.to_string(), value);
        }
    }

    /// `other`'s entries over these: what a regenerated service carries
    /// when `self` is what the old one had and `other` what was given now.
    #[must_use]
    pub fn merge(mut self, other: &Settings) -> Self {
        for (k, v) in &other.0 {
            self.0.insert(k.clone(), v.clone());
        }
        self
    }

    /// Applies the changes asked for now: a value sets, an empty value removes.
    pub fn apply(&mut self, changes: &[(String, String)]) {
        for (k, v) in changes {
            self.set(k, v.clone());
        }
    }

    /// The entries in rendering order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        let known = FLAGS.iter().filter_map(|(_, key)| self.0.get_key_value(*key));
        let rest = self.0.iter().filter(|(k, _)| !FLAGS.iter().any(|(_, key)| key == k));
        known.chain(rest).map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Whether there are no entries.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Checks every entry can be written into a service file.
    pub fn check(&self) -> Result<(), ServiceError> {
        for (k, v) in &self.0 {
            if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(ServiceError::BadName(k.clone()));
            }
            if v.chars().any(char::is_control) {
                return Err(ServiceError::ControlCharacter { key: k.clone(), value: v.clone() });
            }
        }
        Ok(())
    }

    /// The entries as hephd flags (`--hub-url URL`, …), for people to read;
    /// an entry that is no flag of [`FLAGS`] shows as `NAME=value`.
    #[must_use]
    pub fn as_flags(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (k, v) in self.iter() {
            match FLAGS.iter().find(|(_, key)| *key == k) {
                Some(("--cors-origin", _)) => {
                    for origin in v.split(',') {
                        out.push("--cors-origin".into());
                        out.push(origin.into());
                    }
                }
                Some((flag, _)) => {
                    out.push((*flag).into());
                    out.push(v.into());
                }
                None => out.push(format!("{k}={v}")),
            }
        }
        out
    }

    /// A shell command line that runs `exec` with these settings, for
    /// starting the daemon by hand.
    #[must_use]
    pub fn command_line(&self, exec: &Path) -> String {
        let mut words: Vec<String> = self.iter().map(|(k, v)| format!("{k}={}", sh_quote(v))).collect();
        words.push(sh_quote(&exec.to_string_lossy()));
        words.join(" ")
    }

    /// The entries as a JSON object.
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        self.iter().map(|(k, v)| (k.to_string(), serde_json::Value::from(v))).collect()
    }
}

/// Quotes a word for a POSIX shell (only where needed).
#[must_use]
pub fn sh_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | ':' | ',' | '@' | '='));
    if plain { word.to_string() } else { format!("'{}'", word.replace('\'', r"'\''")) }
}

/// `path` made absolute against the current directory (a service does not
/// run where it was installed from), without `.` and `..` components. The
/// file need not exist.
pub fn absolute(path: &Path) -> std::io::Result<PathBuf> {
    use std::path::Component;
    let joined = if path.is_absolute() { path.to_path_buf() } else { std::env::current_dir()?.join(path) };
    let mut clean = PathBuf::new();
    for part in joined.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                clean.pop();
            }
            other => clean.push(other),
        }
    }
    Ok(clean)
}

/// The `hephd` binary a service should run: `given`, else the one beside
/// `beside` (the running `heph` or `hephd`), else the first on `PATH`.
/// Always absolute, symlinks resolved.
pub fn find_hephd(given: Option<&Path>, beside: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(p) = given {
        return std::fs::canonicalize(p).map_err(|e| format!("--hephd {}: {e}", p.display()));
    }
    if let Some(dir) = beside.and_then(Path::parent) {
        let candidate = dir.join("hephd");
        if candidate.is_file() {
            return std::fs::canonicalize(&candidate).map_err(|e| format!("{}: {e}", candidate.display()));
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join("hephd");
            if candidate.is_file() {
                let found = absolute(&candidate).map_err(|e| e.to_string())?;
                return std::fs::canonicalize(&found).map_err(|e| format!("{}: {e}", found.display()));
            }
        }
    }
    Err("cannot find the hephd binary beside heph or on PATH; install it (cargo install --path hub) or pass --hephd PATH"
        .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_render_known_flags_first_and_merge() {
        let mut old = Settings::new();
        old.set("HEPH_LOG", "debug");
        old.set("HEPH_HUB_URL", "ws://a:1");
        old.set("HEPH_MODE", "local");
        let mut now = Settings::new();
        now.set("HEPH_HUB_URL", "ws://b:2");
        let merged = old.merge(&now);
        let keys: Vec<_> = merged.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["HEPH_MODE", "HEPH_HUB_URL", "HEPH_LOG"]);
        assert_eq!(merged.get("HEPH_HUB_URL"), Some("ws://b:2"));
        let mut cleared = merged.clone();
        cleared.apply(&[("HEPH_LOG".into(), String::new())]);
        assert_eq!(cleared.get("HEPH_LOG"), None);
    }

    #[test]
    fn flags_and_shell_words() {
        let mut s = Settings::new();
        s.set("HEPH_MODE", "server");
        s.set("HEPH_CORS_ORIGIN", "https://a.example,https://b.example");
        assert_eq!(
            s.as_flags(),
            ["--mode", "server", "--cors-origin", "https://a.example", "--cors-origin", "https://b.example"]
        );
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
        assert_eq!(sh_quote("/usr/bin/hephd"), "/usr/bin/hephd");
        s.set("HEPH_DB", "/a b/c");
        assert!(s.command_line(Path::new("/x/hephd")).contains("HEPH_DB='/a b/c'"));
    }

    #[test]
    fn absolute_paths_are_clean() {
        assert_eq!(absolute(Path::new("/a/./b/../c.db")).unwrap(), Path::new("/a/c.db"));
        let here = std::env::current_dir().unwrap();
        assert_eq!(absolute(Path::new("./s/heph.db")).unwrap(), here.join("s/heph.db"));
    }

    #[test]
    fn control_characters_are_refused() {
        let mut s = Settings::new();
        s.set("HEPH_HUB_URL", "ws://a\nExecStartPre=/bin/evil");
        assert!(matches!(s.check(), Err(ServiceError::ControlCharacter { .. })));
        let mut s = Settings::new();
        s.set("BAD NAME", "x");
        assert!(matches!(s.check(), Err(ServiceError::BadName(_))));
    }
}

/// A path as a service file writes it: absolute, UTF-8 (an empty path stays
/// empty: it removes the setting).
pub fn absolute_text(path: &Path) -> anyhow::Result<String> {
    use anyhow::Context as _;
    if path.as_os_str().is_empty() {
        return Ok(String::new());
    }
    let path = absolute(path).context("cannot find the current directory; give an absolute path")?;
    path.to_str().map(str::to_string).with_context(|| format!("{} is not UTF-8; give another path", path.display()))
}

/// The hub's flags a service carries: `heph daemon install` (server mode)
/// and `hephd install-service` take the same ones.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct HubFlags {
    /// The address the hub listens on, e.g. 127.0.0.1:8787 (behind a TLS proxy, a loopback one).
    #[arg(long, value_name = "ADDR")]
    pub http_addr: Option<String>,
    /// The OpenID provider whose access tokens the hub accepts (with --oidc-audience).
    #[arg(long, value_name = "URL")]
    pub oidc_issuer: Option<String>,
    /// The audience (`aud`) access tokens must carry (with --oidc-issuer).
    #[arg(long, value_name = "AUD")]
    pub oidc_audience: Option<String>,
    /// The OAuth client id browsers and devices sign in with.
    #[arg(long, value_name = "ID")]
    pub oidc_client_id: Option<String>,
    /// Serve the browser app from DIR instead of the copy built into hephd (a system service cannot see /home or /root).
    #[arg(long, value_name = "DIR")]
    pub web_root: Option<String>,
    /// A browser origin allowed to call the hub (repeatable); replaces the installed list.
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    pub cors_origins: Vec<String>,
    /// The reverse proxy in front of the hub (repeatable; an IP address or CIDR block), whose
    /// X-Forwarded-For names the client in the audit log; replaces the installed list.
    #[arg(long = "trusted-proxy", value_name = "ADDR")]
    pub trusted_proxies: Vec<String>,
}

impl HubFlags {
    /// The settings given, as changes to the installed ones (an empty value
    /// removes a setting; paths become absolute).
    pub fn changes(&self) -> anyhow::Result<Vec<(String, String)>> {
        let mut changes = Vec::new();
        let mut put = |key: &str, value: Option<String>| {
            if let Some(v) = value {
                changes.push((key.to_string(), v));
            }
        };
        put("HEPH_HTTP_ADDR", self.http_addr.clone());
        put("HEPH_OIDC_ISSUER", self.oidc_issuer.clone());
        put("HEPH_OIDC_AUDIENCE", self.oidc_audience.clone());
        put("HEPH_OIDC_CLIENT_ID", self.oidc_client_id.clone());
        put("HEPH_WEB_ROOT", self.web_root.as_deref().map(Path::new).map(absolute_text).transpose()?);
        // Repeatable flags: hephd splits these variables at commas.
        for (key, list) in [("HEPH_CORS_ORIGIN", &self.cors_origins), ("HEPH_TRUSTED_PROXY", &self.trusted_proxies)] {
            if !list.is_empty() {
                put(key, Some(list.iter().map(String::as_str).filter(|v| !v.is_empty()).collect::<Vec<_>>().join(",")));
            }
        }
        Ok(changes)
    }
}
