//! hephd as an OS service: the files `heph daemon install` and `hephd
//! install-service` write, by content, and through `systemd-analyze verify`
//! and a start under `systemd-run --user` where this machine has them.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Proc, free_port, heph, hephd, succeeded as ok};
use serde_json::Value;

/// `heph` with its service files under `dir` (XDG_CONFIG_HOME) and `dir` as
/// the working directory.
fn heph_in(dir: &Path) -> Command {
    let mut c = Command::new(heph());
    c.current_dir(dir)
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("XDG_DATA_HOME", dir.join("data"))
        .env_remove("HEPH_DB")
        .env_remove("HEPH_SOCKET")
        .stdin(Stdio::null());
    c
}

fn user_unit(dir: &Path) -> PathBuf {
    dir.join("config").join("systemd").join("user").join("hephd.service")
}

/// The `Environment="K=V"` entries of a unit, as written.
fn environment(unit: &str) -> Vec<(String, String)> {
    unit.lines()
        .filter_map(|l| l.strip_prefix("Environment=\"")?.strip_suffix('"'))
        .map(|kv| {
            let (k, v) = kv.split_once('=').expect("K=V");
            (k.to_string(), v.to_string())
        })
        .collect()
}

fn env_of<'a>(env: &'a [(String, String)], key: &str) -> Option<&'a str> {
    env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Whether `systemctl --user` reaches a user manager here.
fn user_manager() -> Result<(), String> {
    match Command::new("systemctl").args(["--user", "show-environment"]).output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(String::from_utf8_lossy(&o.stderr).trim().to_string()),
        Err(e) => Err(format!("no systemctl: {e}")),
    }
}

#[test]
fn user_unit_carries_every_flag_and_keeps_them_when_regenerated() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("web")).unwrap();
    let out = heph_in(dir.path())
        .args(["--db", "store/heph.db", "daemon", "install", "--mode", "local", "--hub-url", "wss://hub.example"])
        .args(["--oidc-issuer", "https://id.example", "--oidc-audience", "heph", "--oidc-client-id", "cli"])
        .args(["--http-addr", "127.0.0.1:9999", "--web-root", "./web", "--ca-file", "ca.pem"])
        .args(["--cors-origin", "https://a.example", "--cors-origin", "https://b.example:8443"])
        .output()
        .unwrap();
    let said = ok(out, "heph daemon install");
    let unit = std::fs::read_to_string(user_unit(dir.path())).expect("the unit is written");

    // hephd by absolute path (the one beside heph), every setting, absolute paths.
    let exec = unit.lines().find_map(|l| l.strip_prefix("ExecStart=")).expect("ExecStart");
    assert_eq!(Path::new(exec), std::fs::canonicalize(hephd()).unwrap(), "{unit}");
    let env = environment(&unit);
    let root = dir.path().to_str().unwrap();
    let expected = [
        ("HEPH_MODE", "local".to_string()),
        ("HEPH_HUB_URL", "wss://hub.example".into()),
        ("HEPH_DB", format!("{root}/store/heph.db")),
        ("HEPH_HTTP_ADDR", "127.0.0.1:9999".into()),
        ("HEPH_OIDC_ISSUER", "https://id.example".into()),
        ("HEPH_OIDC_AUDIENCE", "heph".into()),
        ("HEPH_OIDC_CLIENT_ID", "cli".into()),
        ("HEPH_WEB_ROOT", format!("{root}/web")),
        ("HEPH_CORS_ORIGIN", "https://a.example,https://b.example:8443".into()),
        ("HEPH_CA_FILE", format!("{root}/ca.pem")),
    ];
    for (k, v) in &expected {
        assert_eq!(env_of(&env, k), Some(v.as_str()), "{k} in\n{unit}");
    }
    for section in ["[Unit]", "[Service]", "[Install]", "WantedBy=default.target", "Restart=on-failure"] {
        assert!(unit.contains(section), "{section} missing from\n{unit}");
    }
    if let Err(why) = user_manager() {
        // Written anyway, and heph says how to start it.
        assert!(said.contains("cannot be reached") && said.contains("heph daemon start"), "{said}");
        assert!(said.contains("HEPH_HUB_URL=wss://hub.example"), "{said}");
        eprintln!("no systemd user manager here ({why}): checked the file only");
    }

    // Again, with one flag: the others stay; an empty value clears one.
    let out = heph_in(dir.path())
        .args(["daemon", "install", "--no-start", "--hub-url", "wss://other.example", "--web-root", ""])
        .output()
        .unwrap();
    ok(out, "heph daemon install (again)");
    let again = environment(&std::fs::read_to_string(user_unit(dir.path())).unwrap());
    assert_eq!(env_of(&again, "HEPH_HUB_URL"), Some("wss://other.example"));
    assert_eq!(env_of(&again, "HEPH_WEB_ROOT"), None);
    for (k, v) in expected.iter().filter(|(k, _)| !matches!(*k, "HEPH_HUB_URL" | "HEPH_WEB_ROOT")) {
        assert_eq!(env_of(&again, k), Some(v.as_str()), "{k} was not kept");
    }

    // A line added by hand is kept too, and status reads the same settings.
    let path = user_unit(dir.path());
    let text = std::fs::read_to_string(&path).unwrap().replace("Restart=", "Environment=HEPH_LOG=debug\nRestart=");
    std::fs::write(&path, text).unwrap();
    ok(heph_in(dir.path()).args(["daemon", "install", "--no-start"]).output().unwrap(), "install (third)");
    let status: Value =
        serde_json::from_str(&ok(heph_in(dir.path()).args(["--json", "daemon", "status"]).output().unwrap(), "status"))
            .unwrap();
    assert_eq!(status["installed"], true);
    assert_eq!(status["settings"]["HEPH_LOG"], "debug");
    assert_eq!(status["settings"]["HEPH_HUB_URL"], "wss://other.example");
    assert_eq!(status["socket"], format!("{root}/store/heph.db.sock"));
    assert!(status["daemon"].is_null(), "no daemon runs: {status}");

    // --fresh forgets them; a device daemon without a hub is refused.
    let out = heph_in(dir.path()).args(["daemon", "install", "--fresh"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--hub-url"), "{out:?}");
}

#[test]
fn status_shows_the_daemons_sync_health() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("heph.db");
    let hub_port = free_port();
    let install = heph_in(dir.path())
        .args(["--db", db.to_str().unwrap(), "daemon", "install", "--no-start"])
        .args(["--hub-url", &format!("ws://127.0.0.1:{hub_port}")])
        .output()
        .unwrap();
    ok(install, "install");
    // Start the daemon the way the unit would: its environment, its binary.
    let unit = std::fs::read_to_string(user_unit(dir.path())).unwrap();
    let mut daemon = Command::new(hephd());
    daemon.env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default()).env("HOME", dir.path());
    for (k, v) in environment(&unit) {
        daemon.env(k, v);
    }
    let _daemon = Proc { child: Some(daemon.stderr(Stdio::null()).spawn().unwrap()), name: "daemon".into() };
    let socket = PathBuf::from(format!("{}.sock", db.display()));
    common::eventually(10, "the daemon's socket", || std::os::unix::net::UnixStream::connect(&socket).is_ok());
    let text = ok(heph_in(dir.path()).args(["daemon", "status"]).output().unwrap(), "status");
    assert!(text.contains("hephd.service") && text.contains("--hub-url"), "{text}");
    assert!(text.contains(&format!("Hub:            ws://127.0.0.1:{hub_port}")), "{text}");
    assert!(text.contains("State:          offline"), "{text}");
    let json: Value = serde_json::from_str(&ok(
        heph_in(dir.path()).args(["--json", "daemon", "status"]).output().unwrap(),
        "status --json",
    ))
    .unwrap();
    assert_eq!(json["daemon"]["daemon"], true, "{json}");
    assert_eq!(json["daemon"]["offline"], true, "{json}");
    assert!(json["state"].is_object() || json["manager_error"].is_string(), "{json}");
}

#[test]
fn launchd_plist_is_a_valid_property_list() {
    let dir = tempfile::tempdir().unwrap();
    let out = heph_in(dir.path())
        .args(["--db", "a&b/heph.db", "daemon", "install", "--print", "--manager", "launchd"])
        .args(["--hub-url", "wss://hub.example/?x=<1>", "--cors-origin", "https://a.example"])
        .output()
        .unwrap();
    let plist = ok(out, "install --print --manager launchd");
    assert!(plist.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE plist"), "{plist}");
    assert!(plist.contains("<key>Label</key>\n  <string>org.heph.hephd</string>"), "{plist}");
    let hephd = std::fs::canonicalize(hephd()).unwrap();
    assert!(
        plist.contains(&format!("<key>ProgramArguments</key>\n  <array>\n    <string>{}</string>", hephd.display())),
        "{plist}"
    );
    assert!(plist.contains("<key>HEPH_HUB_URL</key>\n    <string>wss://hub.example/?x=&lt;1&gt;</string>"), "{plist}");
    // Parsed by a real plist reader where there is one.
    let python = Command::new("python3")
        .args(["-c", "import plistlib,sys,json; print(json.dumps(plistlib.loads(sys.stdin.buffer.read())))"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(mut python) = python else {
        eprintln!("no python3 here: the plist was checked by content only");
        return;
    };
    use std::io::Write;
    python.stdin.take().unwrap().write_all(plist.as_bytes()).unwrap();
    let parsed: Value = serde_json::from_str(&ok(python.wait_with_output().unwrap(), "plistlib")).unwrap();
    assert_eq!(parsed["Label"], "org.heph.hephd");
    assert_eq!(parsed["ProgramArguments"], serde_json::json!([hephd.to_str().unwrap()]));
    assert_eq!(parsed["EnvironmentVariables"]["HEPH_HUB_URL"], "wss://hub.example/?x=<1>");
    assert_eq!(parsed["EnvironmentVariables"]["HEPH_MODE"], "local");
    assert_eq!(parsed["EnvironmentVariables"]["HEPH_CORS_ORIGIN"], "https://a.example");
    let db = parsed["EnvironmentVariables"]["HEPH_DB"].as_str().unwrap();
    assert_eq!(Path::new(db), dir.path().join("a&b/heph.db"));
    assert_eq!(parsed["RunAtLoad"], true);
    // A launchd agent is installed only on macOS.
    if !cfg!(target_os = "macos") {
        let out = heph_in(dir.path())
            .args(["daemon", "install", "--manager", "launchd", "--hub-url", "wss://hub.example"])
            .output()
            .unwrap();
        assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--print"), "{out:?}");
    }
}

const HARDENING: &[&str] = &[
    "User=heph",
    "Group=heph",
    "StateDirectory=heph",
    "ProtectSystem=strict",
    "ProtectHome=yes",
    "PrivateTmp=yes",
    "PrivateDevices=yes",
    "NoNewPrivileges=yes",
    "ProtectKernelTunables=yes",
    "ProtectKernelModules=yes",
    "ProtectKernelLogs=yes",
    "ProtectControlGroups=yes",
    "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
    "RestrictNamespaces=yes",
    "LockPersonality=yes",
    "MemoryDenyWriteExecute=yes",
    "SystemCallFilter=@system-service",
    "\nCapabilityBoundingSet=\n",
    "ReadWritePaths=/var/lib/heph\n",
    "WantedBy=multi-user.target",
];

fn hub_unit(extra: &[&str]) -> String {
    let out = Command::new(hephd())
        .args(["install-service", "--print"])
        .args(extra)
        .env_remove("HEPH_DB")
        .env_remove("HEPH_SYSTEMD_DIR")
        .output()
        .unwrap();
    ok(out, "hephd install-service --print")
}

#[test]
fn hub_system_unit_is_hardened_and_carries_the_server_flags() {
    let unit = hub_unit(&[
        "--http-addr",
        "0.0.0.0:8787",
        "--oidc-issuer",
        "https://id.example",
        "--oidc-audience",
        "heph",
        "--oidc-client-id",
        "web",
        "--cors-origin",
        "https://app.example",
        "--web-root",
        "/srv/heph-web",
        "--trusted-proxy",
        "127.0.0.1",
        "--trusted-proxy",
        "10.0.0.0/8",
    ]);
    for directive in HARDENING {
        assert!(unit.contains(directive), "{directive:?} missing from\n{unit}");
    }
    let env = environment(&unit);
    for (k, v) in [
        ("HEPH_MODE", "server"),
        ("HEPH_DB", "/var/lib/heph/hub.db"),
        ("HEPH_HTTP_ADDR", "0.0.0.0:8787"),
        ("HEPH_OIDC_ISSUER", "https://id.example"),
        ("HEPH_OIDC_AUDIENCE", "heph"),
        ("HEPH_OIDC_CLIENT_ID", "web"),
        ("HEPH_CORS_ORIGIN", "https://app.example"),
        ("HEPH_WEB_ROOT", "/srv/heph-web"),
        ("HEPH_TRUSTED_PROXY", "127.0.0.1,10.0.0.0/8"),
    ] {
        assert_eq!(env_of(&env, k), Some(v), "{k} in\n{unit}");
    }
    let exec = unit.lines().find_map(|l| l.strip_prefix("ExecStart=")).unwrap();
    assert_eq!(Path::new(exec), std::fs::canonicalize(hephd()).unwrap());

    // hephd's own checks apply before anything is written.
    let out =
        Command::new(hephd()).args(["install-service", "--print", "--http-addr", "0.0.0.0:8787"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("without authentication"), "{out:?}");
    // A store elsewhere is made writable instead.
    let unit = hub_unit(&["--db", "/srv/heph/hub.db"]);
    assert!(unit.contains("ReadWritePaths=/srv/heph\n"), "{unit}");
}

#[test]
fn hub_install_writes_the_unit_and_keeps_its_flags() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(hephd())
            .args(["install-service", "--unit-dir", dir.path().to_str().unwrap()])
            .args(args)
            .env_remove("HEPH_DB")
            .output()
            .unwrap()
    };
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        let out = run(&["--no-start"]);
        assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("needs root"), "{out:?}");
        return;
    }
    // Root is needed; as an ordinary user (setpriv drops to nobody) it says so and writes nothing.
    if let Ok(out) = Command::new("setpriv")
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .arg(hephd())
        .args(["install-service", "--unit-dir", dir.path().to_str().unwrap(), "--no-start"])
        .env_remove("HEPH_DB")
        .output()
    {
        assert!(!out.status.success(), "installed as nobody: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("needs root") && stderr.contains("--print"), "{stderr}");
        assert!(!dir.path().join("hephd.service").exists());
    }
    if Path::new("/run/systemd/system").exists() {
        // A live systemd would enable a unit outside its search path, for real.
        eprintln!("systemd runs here: not installing a test unit system-wide (the --print test covers the content)");
        return;
    }
    // An account that exists, so no account is created on this machine.
    let first =
        run(&["--user", "nobody", "--no-start", "--oidc-issuer", "https://id.example", "--oidc-audience", "heph"]);
    let said = ok(first, "install-service");
    assert!(said.contains("not enabled") || said.contains("Enabled"), "{said}");
    let file = dir.path().join("hephd.service");
    let env = environment(&std::fs::read_to_string(&file).unwrap());
    assert_eq!(env_of(&env, "HEPH_OIDC_ISSUER"), Some("https://id.example"));
    ok(run(&["--user", "nobody", "--no-start", "--http-addr", "127.0.0.1:9000"]), "install-service again");
    let unit = std::fs::read_to_string(&file).unwrap();
    let env = environment(&unit);
    assert_eq!(env_of(&env, "HEPH_OIDC_ISSUER"), Some("https://id.example"), "kept:\n{unit}");
    assert_eq!(env_of(&env, "HEPH_OIDC_AUDIENCE"), Some("heph"));
    assert_eq!(env_of(&env, "HEPH_HTTP_ADDR"), Some("127.0.0.1:9000"));
    assert!(unit.contains("User=nobody"));
}

#[test]
fn systemd_analyze_verifies_the_units() {
    if Command::new("systemd-analyze").arg("--version").output().is_err() {
        eprintln!("no systemd-analyze here: skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    ok(
        heph_in(dir.path())
            .args(["--db", "heph.db", "daemon", "install", "--no-start", "--hub-url", "wss://hub.example"])
            .output()
            .unwrap(),
        "install",
    );
    let hub = dir.path().join("hub").join("hephd.service");
    std::fs::create_dir_all(hub.parent().unwrap()).unwrap();
    std::fs::write(&hub, hub_unit(&["--oidc-issuer", "https://id.example", "--oidc-audience", "heph"])).unwrap();
    for unit in [user_unit(dir.path()), hub] {
        // Offline verification of the file itself (the user manager's own
        // check needs a running user session).
        let out = Command::new("systemd-analyze").arg("verify").arg(&unit).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let about: Vec<&str> = stderr.lines().filter(|l| l.contains("hephd.service")).collect();
        assert!(out.status.success() && about.is_empty(), "systemd-analyze verify {}: {stderr}", unit.display());
    }
}

#[test]
fn the_unit_starts_under_systemd_run_user() {
    if let Err(why) = user_manager() {
        eprintln!("skipped: no systemd user manager here ({why})");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("heph.db");
    let port = free_port();
    let unit = ok(
        heph_in(dir.path())
            .args(["--db", db.to_str().unwrap(), "daemon", "install", "--print"])
            .args(["--hub-url", &format!("ws://127.0.0.1:{port}")])
            .output()
            .unwrap(),
        "install --print",
    );
    let name = format!("heph-test-{}", std::process::id());
    let mut run = Command::new("systemd-run");
    run.args(["--user", "--collect", "--unit", &name]);
    for (k, v) in environment(&unit) {
        run.arg(format!("--setenv={k}={v}"));
    }
    run.arg(unit.lines().find_map(|l| l.strip_prefix("ExecStart=")).unwrap());
    ok(run.output().unwrap(), "systemd-run --user");
    let socket = PathBuf::from(format!("{}.sock", db.display()));
    let started = Instant::now();
    while std::os::unix::net::UnixStream::connect(&socket).is_err() && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = Command::new(heph()).env("HEPH_DB", &db).args(["--json", "sync", "--status"]).output().unwrap();
    let _ = Command::new("systemctl").args(["--user", "stop", &name]).status();
    let health: Value = serde_json::from_str(&ok(status, "heph sync --status")).unwrap();
    assert_eq!(health["daemon"], true, "{health}");
}

#[test]
fn uninstall_asks_first() {
    let dir = tempfile::tempdir().unwrap();
    ok(
        heph_in(dir.path())
            .args(["daemon", "install", "--no-start", "--hub-url", "wss://hub.example"])
            .output()
            .unwrap(),
        "install",
    );
    let unit = user_unit(dir.path());
    // Standard input is not a terminal and there is no --yes: refused, nothing changed.
    let out = heph_in(dir.path()).args(["daemon", "uninstall"]).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--yes") && stderr.contains("not a terminal"), "{stderr}");
    assert!(stderr.contains(unit.to_str().unwrap()), "says what it would remove: {stderr}");
    assert!(unit.exists());
    // The store the service ran on (its folder exists once the daemon has run).
    std::fs::create_dir_all(dir.path().join("data/heph")).unwrap();
    let said = ok(heph_in(dir.path()).args(["daemon", "uninstall", "--yes"]).output().unwrap(), "uninstall --yes");
    assert!(said.contains("Removed"), "{said}");
    assert!(!unit.exists());
    // The uninstall joins the audit log beside the store.
    let audit = std::fs::read_to_string(dir.path().join("data/heph/heph.db.audit.jsonl")).expect("an audit log");
    let line: Value = serde_json::from_str(audit.lines().last().unwrap()).unwrap();
    assert_eq!(line["event"], "service_uninstalled", "{line}");
    assert!(line["who"].as_str().is_some_and(|w| !w.is_empty()), "{line}");
    assert_eq!(line["file"], unit.to_str().unwrap(), "{line}");
    // Nothing left: says so, succeeds.
    ok(heph_in(dir.path()).args(["daemon", "uninstall", "--yes"]).output().unwrap(), "uninstall again");
}
