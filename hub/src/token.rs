//! `hephd token create|list|revoke`: automation tokens for scripts, CI and
//! home automation.
//!
//! While the hub runs, these go to its admin socket (the store path +
//! `.admin.sock`, mode 0600: whoever may read the store may manage its
//! tokens), so a new token works at once and a revoked one ends its live
//! connections within a second. Otherwise they change the store directly.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use heph_engine::Replica;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use crate::auth::{self, Scope, TokenRecord};
use crate::config::Config;
use crate::server::Hub;

/// What to do with automation tokens.
#[derive(Subcommand, Debug, Clone)]
pub enum TokenCommand {
    /// Makes a token and prints it, once: the hub keeps only its hash.
    Create {
        /// A unique name, shown in `list` and in the audit log.
        #[arg(long)]
        name: String,
        /// What it may do: read (sync down, read methods) or write.
        #[arg(long, value_enum)]
        scope: Scope,
        /// How long it works, e.g. 30d, 12h, 90m [default: until revoked].
        #[arg(long, value_name = "DURATION")]
        expires: Option<String>,
        /// Print JSON (the token, and its record).
        #[arg(long)]
        json: bool,
    },
    /// Lists the tokens (names, scopes, expiry; never the tokens).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revokes a token: it stops working at once, on live connections too.
    Revoke {
        /// Its name.
        name: String,
    },
}

/// One request on the admin socket.
#[derive(Serialize, Deserialize, Debug)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum AdminRequest {
    /// Store a token made by the caller (the secret never crosses).
    #[serde(rename = "token_add")]
    AddToken {
        /// The record.
        record: TokenRecord,
    },
    /// List tokens.
    #[serde(rename = "token_list")]
    ListTokens,
    /// Revoke a token.
    #[serde(rename = "token_revoke")]
    RevokeToken {
        /// Its name.
        name: String,
    },
}

/// The admin socket's path for a store.
#[must_use]
pub fn admin_socket(db: &Path) -> std::path::PathBuf {
    crate::config::beside(db, ".admin.sock")
}

/// Parses `30d`, `12h`, `90m`, `45s` into seconds.
pub fn parse_duration(text: &str) -> Result<i64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (n, unit) = text.split_at(split);
    let n: i64 = n.parse().with_context(|| format!("{text:?} is not a duration such as 30d, 12h or 90m"))?;
    let unit = match unit {
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        "s" | "" => 1,
        "w" => 7 * 86_400,
        _ => bail!("{text:?}: the unit must be d, h, m, s or w (e.g. 30d)"),
    };
    if n <= 0 {
        bail!("{text:?}: a token must live for some time");
    }
    const CENTURY: i64 = 100 * 365 * 86_400;
    match n.checked_mul(unit) {
        Some(seconds) if seconds <= CENTURY => Ok(seconds),
        _ => bail!("{text:?}: a token lives at most 100 years; leave --expires out for one that does not expire"),
    }
}

/// Runs a token command for the hub store of `cfg`.
pub async fn run(cfg: &Config, command: TokenCommand) -> Result<()> {
    let db = cfg.db_path()?;
    let audit = cfg.audit_path()?;
    let admin = |request: AdminRequest| {
        let (db, audit) = (db.clone(), audit.clone());
        async move { admin(&db, &audit, &request).await }
    };
    match command {
        TokenCommand::Create { name, scope, expires, json } => {
            if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
                bail!("a token's name is 1 to 64 printable characters");
            }
            let now = chrono::Utc::now().timestamp();
            let expires = expires.as_deref().map(parse_duration).transpose()?.map(|d| now.saturating_add(d));
            let (token, record) = auth::new_token(&name, scope, expires, now);
            let answer = admin(AdminRequest::AddToken { record: record.clone() }).await?;
            if answer.get("exists").and_then(Value::as_bool) == Some(true) {
                bail!(
                    "a token named {name:?} exists; revoke it first (`hephd token revoke {name}`) or pick another name"
                );
            }
            if json {
                println!(
                    "{}",
                    json!({"token": token, "name": record.name, "scope": record.scope, "expires": record.expires})
                );
            } else {
                println!("{token}");
                eprintln!(
                    "Token {name:?} ({scope:?}, {}). This is the only time it is shown: the hub keeps only its hash.",
                    expires.map_or_else(|| "no expiry".to_string(), |at| format!("expires {}", when(at)))
                );
            }
        }
        TokenCommand::List { json } => {
            let answer = admin(AdminRequest::ListTokens).await?;
            let tokens: Vec<TokenRecord> = serde_json::from_value(answer.get("tokens").cloned().unwrap_or_default())
                .context("the hub's answer")?;
            if json {
                println!("{}", serde_json::to_string(&tokens)?);
            } else if tokens.is_empty() {
                println!("No automation tokens. Make one with `hephd token create --name NAME --scope read|write`.");
            } else {
                for t in tokens {
                    let expires = t.expires.map_or_else(|| "no expiry".into(), |at| format!("expires {}", when(at)));
                    println!("{}\t{:?}\tcreated {}\t{expires}", t.name, t.scope, when(t.created));
                }
            }
        }
        TokenCommand::Revoke { name } => {
            let answer = admin(AdminRequest::RevokeToken { name: name.clone() }).await?;
            if answer.get("revoked").and_then(Value::as_bool) != Some(true) {
                bail!("no token named {name:?} (see `hephd token list`)");
            }
            eprintln!("Revoked {name:?}: it no longer works, and its connections are closed.");
        }
    }
    Ok(())
}

fn when(at: i64) -> String {
    chrono::DateTime::from_timestamp(at, 0)
        .map_or_else(|| at.to_string(), |t| t.format("%Y-%m-%d %H:%M UTC").to_string())
}

/// Sends `request` to the running hub, or, if none runs, does it on the
/// store directly.
async fn admin(db: &Path, audit: &Path, request: &AdminRequest) -> Result<Value> {
    let socket = admin_socket(db);
    if let Ok(stream) = UnixStream::connect(&socket).await {
        let (read, mut write) = stream.into_split();
        let mut line = serde_json::to_vec(request)?;
        line.push(b'\n');
        write.write_all(&line).await?;
        let mut answer = String::new();
        BufReader::new(read).read_line(&mut answer).await?;
        let answer: Value = serde_json::from_str(&answer).context("the hub's admin socket answered nonsense")?;
        if let Some(e) = answer.get("error").and_then(Value::as_str) {
            bail!("the hub refused: {e}");
        }
        return Ok(answer);
    }
    if !db.exists() {
        bail!("no hub store at {} (pass --db PATH, the hub's store)", db.display());
    }
    let replica = Replica::open(db).with_context(|| {
        format!(
            "opening the hub store {} (if the hub runs, its admin socket {} is missing)",
            db.display(),
            socket.display()
        )
    })?;
    let audit = auth::Audit::open(audit)?;
    Ok(apply(&replica, request, &|event| {
        match event {
        Event::Added(r) => {
            audit.record(
                "token_created",
                json!({"name": r.name, "scope": r.scope, "expires": r.expires, "via": "cli", "who": heph_hub::audit::local_user()}),
            )
        }
        Event::Revoked(name) => {
            audit.record("token_revoked", json!({"name": name, "via": "cli", "who": heph_hub::audit::local_user()}));
        }
    }
    }))
}

/// What [`apply`] changed.
pub enum Event<'a> {
    /// A token was stored.
    Added(&'a TokenRecord),
    /// A token was removed.
    Revoked(&'a str),
}

/// Does `request` on `replica`'s store; `changed` hears what changed.
pub fn apply(replica: &Replica, request: &AdminRequest, changed: &dyn Fn(Event<'_>)) -> Value {
    let store = replica.store();
    let outcome = match request {
        AdminRequest::AddToken { record } => store.write(|w| auth::settings::add_token(w, record)).map(|added| {
            if added {
                changed(Event::Added(record));
            }
            json!({"exists": !added})
        }),
        AdminRequest::ListTokens => auth::settings::tokens(store).map(|tokens| json!({"tokens": tokens})),
        AdminRequest::RevokeToken { name } => store.write(|w| auth::settings::remove_token(w, name)).map(|revoked| {
            if revoked {
                changed(Event::Revoked(name));
            }
            json!({"revoked": revoked})
        }),
    };
    outcome.unwrap_or_else(|e| json!({"error": e.to_string()}))
}

/// Serves the admin socket of a running hub until shutdown.
pub async fn serve_admin(hub: Arc<Hub>, db: &Path) -> Result<()> {
    let socket = crate::unix::bind(&admin_socket(db)).await?;
    let stop = hub.shutdown.clone();
    tokio::spawn(crate::unix::serve(socket, stop, move |line| {
        let hub = hub.clone();
        async move {
            let request: AdminRequest = match serde_json::from_slice(&line) {
                Ok(r) => r,
                Err(e) => return json!({"error": format!("not an admin request: {e}")}).to_string(),
            };
            let on_hub = hub.clone();
            let answer = hub
                .writer
                .call(move |replica| {
                    let answer = apply(replica, &request, &|event| match event {
                        Event::Added(r) => on_hub.auth.token_added(r, "admin_socket"),
                        Event::Revoked(name) => on_hub.auth.token_revoked(name, "admin_socket"),
                    });
                    (answer, Vec::new())
                })
                .await;
            answer.unwrap_or_else(|e| json!({"error": e.to_string()})).to_string()
        }
    }));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30d").unwrap(), 30 * 86_400);
        assert_eq!(parse_duration("12h").unwrap(), 12 * 3_600);
        assert_eq!(parse_duration("90m").unwrap(), 5_400);
        assert_eq!(parse_duration("45").unwrap(), 45);
        assert!(parse_duration("0d").is_err());
        assert!(parse_duration("1y").is_err());
        assert!(parse_duration("d").is_err());
        assert_eq!(parse_duration("5200w").unwrap(), 5200 * 7 * 86_400);
        assert!(parse_duration("5300w").is_err(), "past a century");
        assert!(parse_duration("9223372036854775807s").is_err(), "no overflow further on");
    }
}
