//! Modification words read against the store: a UDA that some task
//! carries is an attribute everywhere, as a UDA configured in Taskwarrior
//! is one on every task.

use anyhow::Result;
use heph_engine::{Clock, Filter, ModError, Mods, parse_mods_with};

use crate::api::Api;

/// Reads modification words (`heph add`, `heph modify`, the TUI's
/// quick-add) for a node whose own UDAs are `udas`; a UDA another task
/// carries (kept from a Taskwarrior import) is an attribute too.
pub fn read<S: AsRef<str>>(local: &Clock, r: &mut Api, words: &[S], mut udas: Vec<String>) -> Result<Mods> {
    loop {
        match parse_mods_with(words, local, &udas) {
            Err(ModError::UnknownAttribute { key, .. }) if !udas.contains(&key) && uda_in_use(local, r, &key) => {
                udas.push(key);
            }
            read => return Ok(read?),
        }
    }
}

/// Whether a live task carries the UDA `name`.
fn uda_in_use(local: &Clock, r: &mut Api, name: &str) -> bool {
    let words = [format!("{name}.any:"), "status:all".to_string()];
    let Ok(filter) = Filter::parse(&words, local) else {
        return false;
    };
    filter.udas() == [name] && r.list(&filter, local.now, Some(1)).is_ok_and(|rows| !rows.is_empty())
}
