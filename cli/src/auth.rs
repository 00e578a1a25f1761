//! `heph auth login|status|logout`: signing this device in to an
//! authenticated hub (the OAuth 2.0 device authorization grant), and out.
//! The device daemon (`hephd --mode local`) then uses the stored token and
//! refreshes it on its own.

use std::io::Write as _;

use anyhow::{Context, Result};
use heph_hub::login;

use crate::AuthAction;

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the async runtime")
}

/// Runs one `heph auth` command.
pub fn run(action: AuthAction, json: bool) -> Result<()> {
    match action {
        AuthAction::Login { hub_url, issuer, client_id, resource, ca_file } => {
            login::check_transport(&hub_url)?;
            let trust = heph_hub::tls::Trust::load(ca_file.as_deref())?;
            let set = runtime()?.block_on(login::login(
                &hub_url,
                &issuer,
                &client_id,
                resource.as_deref(),
                &trust,
                |code| {
                    if json {
                        let line = serde_json::json!({"verification_uri": code.verification_uri,
                        "verification_uri_complete": code.verification_uri_complete,
                        "user_code": code.user_code, "expires_in": code.expires_in});
                        println!("{line}");
                    } else {
                        eprintln!("To sign this device in to {}, open", login::hub_key(&hub_url));
                        eprintln!();
                        eprintln!(
                            "    {}",
                            code.verification_uri_complete.as_deref().unwrap_or(&code.verification_uri)
                        );
                        eprintln!();
                        eprintln!(
                            "and enter the code {} (it expires in {} minutes). Waiting for you to approve…",
                            code.user_code,
                            code.expires_in.div_ceil(60)
                        );
                    }
                    let _ = std::io::stdout().flush();
                },
            ))?;
            let place = login::save(&set)?;
            if json {
                println!("{}", serde_json::json!({"signed_in": true, "hub": set.hub, "stored_in": place.to_string()}));
            } else {
                eprintln!("Signed in to {}. The token is kept in {place}.", set.hub);
                eprintln!("Start (or restart) the device daemon: hephd --mode local --hub-url {}", hub_url);
            }
            Ok(())
        }
        AuthAction::Status { hub_url } => {
            let found = login::load(&hub_url)?;
            let now = chrono::Utc::now().timestamp();
            if json {
                let value = match &found {
                    Some((set, place)) => serde_json::json!({"signed_in": true, "stored_in": place.to_string(),
                        "expired": !set.fresh(now, 0), "token": set.redacted()}),
                    None => serde_json::json!({"signed_in": false, "hub": login::hub_key(&hub_url)}),
                };
                println!("{}", serde_json::to_string_pretty(&value)?);
                return Ok(());
            }
            match found {
                None => println!(
                    "Not signed in to {}. Sign in: heph auth login --hub-url {hub_url} --issuer URL --client-id ID",
                    login::hub_key(&hub_url)
                ),
                Some((set, place)) => {
                    println!("Signed in to {} through {} as client {}.", set.hub, set.issuer, set.client_id);
                    match set.expires_at {
                        Some(at) if at > now => {
                            println!("The access token is good for {} more minutes.", (at - now) / 60)
                        }
                        Some(_) if set.refresh_token.is_some() => {
                            println!("The access token has expired; the daemon refreshes it when it next connects.");
                        }
                        Some(_) => {
                            println!("The access token has expired and cannot be refreshed: run heph auth login.")
                        }
                        None => println!("The access token has no stated expiry."),
                    }
                    println!("Kept in {place}.");
                }
            }
            Ok(())
        }
        AuthAction::Logout { hub_url } => {
            let removed = login::delete(&hub_url)?;
            if json {
                println!("{}", serde_json::json!({"signed_out": removed, "hub": login::hub_key(&hub_url)}));
            } else if removed {
                println!("Signed out of {}: its token is forgotten on this device.", login::hub_key(&hub_url));
            } else {
                println!("Not signed in to {}; nothing to forget.", login::hub_key(&hub_url));
            }
            Ok(())
        }
    }
}
