//! Finding and opening the replica's store.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use heph_engine::{OpenError, Replica};

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
/// that is not possible (a new store, or one that needs recovery). One
/// attempt: [`OpenError::Locked`] while another process holds the store.
pub fn try_open_read(path: &Path) -> Result<Replica, OpenError> {
    match Replica::open_read_only(path) {
        Ok(r) => Ok(r),
        Err(e @ OpenError::Locked { .. }) => Err(e),
        Err(_) => try_open(path),
    }
}

/// Opens the replica for a command that writes. One attempt:
/// [`OpenError::Locked`] while another process holds the store.
pub fn try_open(path: &Path) -> Result<Replica, OpenError> {
    Replica::open_for_command(path)
}
