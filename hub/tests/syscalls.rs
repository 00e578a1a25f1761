//! The hub's system unit (`hephd install-service`) allows only the system
//! calls of `SystemCallFilter=@system-service`, and forbids memory both
//! writable and executable (`MemoryDenyWriteExecute=yes`). This runs a hub
//! under strace through a real sync (a device daemon pushes and pulls,
//! `/healthz`, `/metrics` and `/rpc` are read), and checks that every call it
//! made is in the set systemd allows, and that it never asked for
//! writable-and-executable memory. It needs strace and systemd-analyze; without
//! them it says so and checks nothing.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Device, eventually, free_port, hephd, http};

/// The system calls of a systemd filter set, its nested sets expanded
/// (`systemd-analyze syscall-filter` lists each set's members).
fn filter_set(name: &str) -> Option<BTreeSet<String>> {
    let out = Command::new("systemd-analyze").arg("syscall-filter").output().ok()?;
    let mut sets: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current = None;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if line.starts_with('@') {
            let set = line.split_whitespace().next()?.to_string();
            sets.entry(set.clone()).or_default();
            current = Some(set);
        } else if let Some(set) = &current {
            let member = line.trim();
            if !member.is_empty() && !member.starts_with('#') {
                sets.entry(set.clone()).or_default().push(member.to_string());
            }
        }
    }
    fn expand(sets: &BTreeMap<String, Vec<String>>, set: &str, out: &mut BTreeSet<String>) {
        for member in sets.get(set).into_iter().flatten() {
            if member.starts_with('@') {
                expand(sets, member, out);
            } else {
                out.insert(member.clone());
            }
        }
    }
    let mut calls = BTreeSet::new();
    expand(&sets, name, &mut calls);
    (!calls.is_empty()).then_some(calls)
}

#[test]
fn the_hub_stays_within_its_units_sandbox() {
    let Some(allowed) = filter_set("@system-service") else {
        eprintln!("skipped: no systemd-analyze here to list @system-service");
        return;
    };
    if Command::new("strace").arg("-V").output().is_err() {
        eprintln!("skipped: no strace here");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace");
    let port = free_port();
    let mut strace = Command::new("strace")
        .args(["-f", "-qq", "-o"])
        .arg(&trace)
        .arg(hephd())
        .args(["--mode", "server", "--http-addr", &format!("127.0.0.1:{port}"), "--db"])
        .arg(dir.path().join("hub.db"))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while http(port, "GET", "/healthz", "").is_none() {
        if started.elapsed() > Duration::from_secs(20) || strace.try_wait().unwrap().is_some() {
            let _ = strace.kill();
            eprintln!("skipped: the hub did not start under strace here (no ptrace?)");
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let url = format!("ws://127.0.0.1:{port}");
    let mut device = Device::new(dir.path(), "a");
    device.start(&url);
    device.ok(&["add", "through the sandbox"]);
    device.sync_ok(20);
    let mut other = Device::new(dir.path(), "b");
    other.start(&url);
    eventually(20, "the second device to receive the task", || !other.titles(&[]).is_empty());
    assert!(http(port, "GET", "/metrics", "").is_some_and(|(s, _)| s == 200));
    let rpc = r#"{"jsonrpc":"2.0","id":1,"method":"list","params":{}}"#;
    assert!(http(port, "POST", "/rpc", rpc).is_some());
    device.stop();
    other.stop();

    // SIGTERM to hephd itself (strace's child), and a clean exit.
    let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", strace.id())).unwrap();
    let hub = children.split_whitespace().next().expect("hephd under strace").to_string();
    Command::new("kill").args(["-TERM", &hub]).status().unwrap();
    let status = strace.wait().unwrap();
    assert!(status.success(), "the hub under strace ended with {status}");

    let text = std::fs::read_to_string(&trace).unwrap();
    let mut used = BTreeSet::new();
    let mut write_exec = Vec::new();
    for line in text.lines() {
        // "PID name(args) = result", or "PID <... name resumed>": the name
        // is the word before the first '('.
        let call = line.split_once(' ').map_or(line, |(_, rest)| rest.trim_start());
        if let Some((name, _)) = call.split_once('(')
            && !name.is_empty()
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            used.insert(name.to_string());
        }
        if call.contains("PROT_WRITE|PROT_EXEC") && !call.starts_with("execve") {
            write_exec.push(line.to_string());
        }
    }
    assert!(used.contains("accept4") && used.contains("fdatasync"), "the trace saw the hub serve and commit: {used:?}");
    let outside: Vec<&String> = used.iter().filter(|c| !allowed.contains(*c)).collect();
    assert!(outside.is_empty(), "system calls outside @system-service: {outside:?}");
    assert!(write_exec.is_empty(), "writable and executable memory: {write_exec:?}");
}
