//! `hephd seed --from DEVICE_DB --db HUB_DB`: a new hub store built from
//! a device's, in one step, without writing the device's file.
//!
//! redb locks a store file for the one process that writes it (its
//! default `ExclusiveWriter` mode): while a device's daemon runs, no other
//! process can open the file, not even read-only. So the snapshot is taken
//! where the file is open: through the daemon's socket (`backup`, one read
//! transaction), into a scratch folder beside the new hub store. Without a
//! daemon the file is opened read-only, which keeps writers out while it
//! is read; a file that needs redb's recovery (a process died holding it)
//! is copied first and the copy recovered.
//!
//! The hub store is built in a scratch file and moved into place only when
//! complete, never over an existing file. What it holds, and why devices
//! reconcile with it rather than diverge, is in `heph_engine::backup`.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use heph_engine::{OpenError, Replica};
use serde_json::{Value, json};

use crate::config::{Config, beside};

/// How long the device's daemon may take to write its snapshot.
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// A scratch folder beside the new hub store, removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `hephd seed`.
pub fn run(cfg: &Config, from: &Path, device_socket: Option<&Path>, json: bool) -> Result<()> {
    let Some(hub_db) = cfg.db.clone() else {
        bail!("pass --db HUB_DB: the new hub's store (seed never guesses where to write a hub)");
    };
    if hub_db.exists() {
        bail!(
            "{} exists; seed builds a new hub store and never replaces one: pick another --db, or move that file away",
            hub_db.display()
        );
    }
    if !from.exists() {
        bail!("no device store at {} (pass --from, the device's heph.db)", from.display());
    }
    let dir = hub_db.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = std::path::absolute(dir).with_context(|| format!("resolving {}", dir.display()))?;
    let scratch = Scratch(dir.join(format!(".heph-seed-{:016x}", rand::random::<u64>())));
    std::fs::create_dir(&scratch.0).with_context(|| format!("cannot write in {}", dir.display()))?;

    let (source, via) = snapshot(from, device_socket, &scratch.0)?;
    let partial = scratch.0.join("hub.db");
    let hub = Replica::open(&partial).with_context(|| format!("creating {}", partial.display()))?;
    let bar = progress(json);
    let report = hub
        .seed_from(&source, |done, total| {
            bar.set_length(total);
            bar.set_position(done);
        })
        .context("copying the device's documents")?;
    bar.finish_and_clear();
    drop(hub);
    drop(source);
    // A hard link never replaces a file that appeared meanwhile.
    std::fs::hard_link(&partial, &hub_db).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            anyhow::anyhow!("{} appeared while seeding; nothing was replaced", hub_db.display())
        } else {
            anyhow::anyhow!("cannot write {}: {e}", hub_db.display())
        }
    })?;
    let audit = cfg.audit_path()?;
    heph_hub::audit::append(
        &audit,
        "seed",
        json!({
            "who": heph_hub::audit::local_user(),
            "from": from.display().to_string(),
            "via": via,
            "hub": report.hub,
            "documents": report.documents,
            "nodes": report.nodes,
            "changes": report.changes,
        }),
    )?;
    if json {
        let mut out = serde_json::to_value(&report)?;
        if let Value::Object(map) = &mut out {
            map.insert("db".into(), hub_db.display().to_string().into());
            map.insert("via".into(), via.into());
        }
        println!("{out}");
    } else {
        println!(
            "Seeded {} from {}: {} nodes ({} documents), {} changes; hub id {}.",
            hub_db.display(),
            from.display(),
            report.nodes,
            report.documents,
            report.changes,
            report.hub
        );
        if report.waiting > 0 {
            println!("{} changes wait for changes they depend on, as they did on the device.", report.waiting);
        }
        println!(
            "Start it with `hephd --mode server --db {}`; devices see a new hub and reconcile with it.",
            hub_db.display()
        );
    }
    Ok(())
}

fn progress(quiet: bool) -> indicatif::ProgressBar {
    if quiet || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("seeding {bar:40} {pos}/{len} documents ({eta})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

/// A consistent view of the device's store, and how it was taken.
fn snapshot(from: &Path, device_socket: Option<&Path>, scratch: &Path) -> Result<(Replica, &'static str)> {
    match Replica::open_read_only(from) {
        Ok(r) => Ok((r, "file")),
        Err(OpenError::Locked { .. }) => {
            let socket = device_socket.map_or_else(|| beside(from, ".sock"), Path::to_path_buf);
            let copy = scratch.join("snapshot.db");
            ask_daemon(&socket, &copy).with_context(|| {
                format!(
                    "{} is held by another process and its daemon's socket {} did not give a snapshot; \
                     stop that process, or pass --device-socket",
                    from.display(),
                    socket.display()
                )
            })?;
            Ok((heph_engine::backup::open_backup(&copy)?, "daemon"))
        }
        Err(OpenError::NeedsUpgrade { .. } | OpenError::Unreadable { .. }) => {
            // Recovery or an upgrade writes: do it on a copy, never the device's file.
            let copy = scratch.join("device-copy.db");
            std::fs::copy(from, &copy).with_context(|| format!("copying {}", from.display()))?;
            let r = Replica::open(&copy).with_context(|| format!("reading a copy of {}", from.display()))?;
            Ok((r, "file"))
        }
        Err(e) => Err(e.into()),
    }
}

/// Asks the device's daemon to write a snapshot of its replica to `to`.
fn ask_daemon(socket: &Path, to: &Path) -> Result<()> {
    let stream = UnixStream::connect(socket).with_context(|| format!("connecting to {}", socket.display()))?;
    stream.set_read_timeout(Some(SNAPSHOT_TIMEOUT))?;
    let mut line = serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": 1, "method": "backup", "params": {"path": to}}))?;
    line.push(b'\n');
    (&stream).write_all(&line)?;
    let mut answer = String::new();
    BufReader::new(&stream).read_line(&mut answer).context("no answer from the daemon")?;
    let answer: Value = serde_json::from_str(&answer).context("the daemon's answer is not JSON")?;
    if let Some(e) = answer.get("error") {
        let message = e.get("message").and_then(Value::as_str).unwrap_or("an error");
        bail!("the daemon refused: {message}");
    }
    Ok(())
}
