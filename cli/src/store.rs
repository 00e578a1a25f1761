//! Finding and opening the replica's store.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use heph_engine::{OpenError, Replica};

/// How long to wait for another heph process to finish with the store.
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// The store path: `--db`/`HEPH_DB`, else `$XDG_DATA_HOME/heph/heph.db`.
pub fn path(given: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = given {
        return Ok(p.to_path_buf());
    }
    let data = dirs::data_dir().context("cannot find your data folder ($XDG_DATA_HOME or $HOME); pass --db PATH")?;
    Ok(data.join("heph").join("heph.db"))
}

/// The device daemon's socket for this store: `HEPH_SOCKET`, else the store path + `.sock`.
pub fn socket(given: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("HEPH_SOCKET").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let mut p = path(given)?.into_os_string();
    p.push(".sock");
    Ok(p.into())
}

/// Opens the replica for reading only (no disk flushes), or read-write where
/// that is not possible (a new store, or one that needs recovery).
pub fn open_read(given: Option<&Path>) -> Result<Replica> {
    let path = path(given)?;
    match Replica::open_read_only(&path) {
        Ok(r) => Ok(r),
        Err(_) => open(Some(&path)),
    }
}

/// Opens the replica, waiting briefly if another heph process holds it.
pub fn open(given: Option<&Path>) -> Result<Replica> {
    let path = path(given)?;
    let started = Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        match Replica::open_for_command(&path) {
            Ok(r) => return Ok(r),
            Err(OpenError::Locked { .. }) if started.elapsed() < LOCK_WAIT => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(200));
            }
            Err(e) => return Err(e.into()),
        }
    }
}
