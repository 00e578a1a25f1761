//! Keeping recurring tasks' instances made (see `heph_engine::recur`):
//! before anything lists tasks and after every write, with or without the
//! device daemon.
//!
//! Without a daemon, a listing opens the store read-only; it is opened for
//! writing only when a pass has something to make ([`Api::recurrences_due`]).
//! With a daemon, the daemon makes them (one call).

use anyhow::Result;
use heph_engine::Clock;
use heph_engine::recur::RecurReport;

use crate::api::Api;

/// Runs a recurrence pass through `api`; templates that cannot be read as a
/// series are named on standard error (once per pass), not fatal.
pub fn generate(api: &mut Api, clock: &Clock, limit: u32) -> Result<RecurReport> {
    let report = api.generate_recurrences(clock, limit)?;
    for s in &report.skipped {
        eprintln!("heph: warning: recurring task {} is left alone: {}", &s.id.to_hex()[..8], s.reason);
    }
    Ok(report)
}

/// Makes due instances before a listing: `read` is the listing's
/// (read-only) connection; when a pass has work and no daemon runs, the
/// store is opened for writing with `open_write` and that connection is
/// returned for the listing instead.
pub fn before_listing(read: Api, clock: &Clock, limit: u32, open_write: impl FnOnce() -> Result<Api>) -> Result<Api> {
    let mut api = read;
    if !api.recurrences_due(clock, limit)? {
        return Ok(api);
    }
    if matches!(api, Api::Local(_)) {
        // The read-only store must be closed before it opens for writing.
        drop(api);
        api = open_write()?;
    }
    generate(&mut api, clock, limit)?;
    Ok(api)
}
