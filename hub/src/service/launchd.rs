//! A launchd agent (macOS): `~/Library/LaunchAgents/org.heph.hephd.plist`.
//! The settings are the plist's `EnvironmentVariables`, for the same reason
//! systemd units carry them as `Environment=`: they read back exactly.

use std::fmt::Write as _;
use std::path::Path;

use super::{ServiceError, Settings};

/// The agent's label (and its file's name, with `.plist`).
pub const LAUNCHD_LABEL: &str = "org.heph.hephd";

/// The agent's property list: runs `exec` with `settings` at login, again
/// when it fails, and sends its output to `log`.
pub fn launchd_plist(exec: &Path, settings: &Settings, log: &Path) -> Result<String, ServiceError> {
    settings.check()?;
    let mut text = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n\
         <!-- hephd as an agent of this user, written by `heph daemon install`; run it again to change\n     \
         this file (the EnvironmentVariables below are kept unless given anew). -->\n\
         <plist version=\"1.0\">\n<dict>\n",
    );
    let _ = write!(
        text,
        "  <key>Label</key>\n  <string>{LAUNCHD_LABEL}</string>\n  <key>ProgramArguments</key>\n  <array>\n    \
         <string>{}</string>\n  </array>\n  <key>EnvironmentVariables</key>\n  <dict>\n",
        xml(&exec.to_string_lossy())
    );
    for (k, v) in settings.iter() {
        let _ = writeln!(text, "    <key>{}</key>\n    <string>{}</string>", xml(k), xml(v));
    }
    let log = xml(&log.to_string_lossy());
    let _ = write!(
        text,
        "  </dict>\n  <key>RunAtLoad</key>\n  <true/>\n  <key>KeepAlive</key>\n  <dict>\n    \
         <key>SuccessfulExit</key>\n    <false/>\n  </dict>\n  <key>ThrottleInterval</key>\n  <integer>2</integer>\n  \
         <key>StandardOutPath</key>\n  <string>{log}</string>\n  <key>StandardErrorPath</key>\n  \
         <string>{log}</string>\n</dict>\n</plist>\n"
    );
    Ok(text)
}

/// The `EnvironmentVariables` of a plist written by [`launchd_plist`] (or
/// edited by hand in the same shape: `<key>` then `<string>` pairs).
#[must_use]
pub fn parse_plist(text: &str) -> Settings {
    let mut settings = Settings::new();
    let Some(start) = text.find("<key>EnvironmentVariables</key>") else { return settings };
    let rest = &text[start..];
    let Some(open) = rest.find("<dict>") else { return settings };
    let body = &rest[open + "<dict>".len()..];
    let body = &body[..body.find("</dict>").unwrap_or(body.len())];
    let mut cursor = body;
    while let Some((key, after)) = element(cursor, "key") {
        let Some((value, after)) = element(after, "string") else { break };
        settings.set(&unxml(key), unxml(value));
        cursor = after;
    }
    settings
}

/// The text of the next `<tag>…</tag>` in `text`, and what follows it.
fn element<'a>(text: &'a str, tag: &str) -> Option<(&'a str, &'a str)> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = text.find(&open)? + open.len();
    let end = start + text[start..].find(&close)?;
    Some((&text[start..end], &text[end + close.len()..]))
}

fn xml(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&apos;")
}

fn unxml(text: &str) -> String {
    text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_round_trips() {
        let mut s = Settings::new();
        s.set("HEPH_MODE", "local");
        s.set("HEPH_HUB_URL", "wss://h.example/?a=1&b=<2>");
        let text = launchd_plist(Path::new("/usr/local/bin/hephd"), &s, Path::new("/tmp/hephd.log")).unwrap();
        assert!(text.contains("<string>/usr/local/bin/hephd</string>"));
        assert_eq!(parse_plist(&text), s);
    }
}
