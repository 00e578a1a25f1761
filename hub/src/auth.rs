//! Who may use the hub: OpenID Connect access tokens, automation tokens,
//! the single owner, browser origins, and the audit log.
//!
//! - **Access tokens** are JWTs from the issuer given with `--oidc-issuer`.
//!   The hub reads the issuer's discovery document once, keeps its signing
//!   keys (JWKS) by `kid`, and fetches them again only for a `kid` it does
//!   not know, at most once per [`JWKS_REFETCH`]. A token must be signed
//!   with an asymmetric algorithm of [`ALLOWED`] by one of those keys, and
//!   carry the issuer, the audience (`--oidc-audience`), a `sub`, and an
//!   `exp` (and `nbf`, if any) that hold within `--oidc-leeway`.
//! - **The owner**: the first `sub` to authenticate claims the hub (stored
//!   in the store's settings, so it survives restarts and backups); every
//!   other identity is refused (403). `--owner-sub` sets it up front.
//! - **Automation tokens** (`hephd token create`) are random strings with a
//!   prefix ([`TOKEN_PREFIX`]); the store keeps only their SHA-256, with a
//!   name, a scope and an expiry. Revoking one ends the connections that
//!   use it at once ([`Auth::revocations`]).
//! - **Browser origins**: a request carrying an `Origin` that is neither
//!   the hub's own nor listed with `--cors-origin` is refused, in every
//!   mode; without authentication, so is a `Host` that is not an IP address
//!   or `localhost` (a DNS-rebinding page names its own domain).
//! - **The audit log** gets one JSON line per decision: who (the `sub` or
//!   the token's name), the outcome, the reason, the peer. Never a token.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use axum::http::{HeaderMap, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::forwarded::Peer;
use crate::metrics::Metrics;

/// The signature algorithms accepted: asymmetric only (an HMAC "signed"
/// with the issuer's public key, or `none`, is refused).
pub const ALLOWED: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// The least time between two fetches of the JWKS for unknown `kid`s.
pub const JWKS_REFETCH: Duration = Duration::from_secs(10);

/// The longest credential the hub reads (access tokens are a few KiB).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// The prefix of automation tokens (and how the hub tells them from JWTs).
pub const TOKEN_PREFIX: &str = "heph_at_";

/// The settings key of the owner's `sub`.
const OWNER_KEY: &str = "auth/owner";
/// The settings prefix of automation tokens (then the name).
const TOKEN_KEY: &str = "auth/token/";

/// What a credential may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Read: sync down, read RPC methods.
    Read,
    /// Read and write.
    Write,
}

/// Who is on the other end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Who {
    /// No authentication (open mode, loopback).
    Open,
    /// The owner, signed in with the OpenID provider.
    Owner {
        /// The `sub` claim.
        sub: String,
    },
    /// An automation token.
    Token {
        /// Its name.
        name: String,
        /// The SHA-256 of the token.
        hash: [u8; 32],
    },
}

/// An authenticated caller.
#[derive(Clone, Debug)]
pub struct Identity {
    /// Who.
    pub who: Who,
    /// What it may do.
    pub scope: Scope,
    /// When the credential stops being valid (Unix seconds), if ever.
    pub expires: Option<i64>,
}

impl Identity {
    /// The caller of an open hub.
    #[must_use]
    pub fn open() -> Self {
        Self { who: Who::Open, scope: Scope::Write, expires: None }
    }

    /// Whether it may write.
    #[must_use]
    pub fn can_write(&self) -> bool {
        self.scope == Scope::Write
    }

    /// For logs and the audit log: the `sub`, or `token:NAME`.
    #[must_use]
    pub fn label(&self) -> String {
        match &self.who {
            Who::Open => "open".into(),
            Who::Owner { sub } => sub.clone(),
            Who::Token { name, .. } => format!("token:{name}"),
        }
    }

    /// Whether `other` is the same caller (a refreshed token must be).
    #[must_use]
    pub fn same_caller(&self, other: &Self) -> bool {
        self.who == other.who
    }
}

/// Why a credential was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// No credential at all.
    #[error("this hub requires a credential: send Authorization: Bearer TOKEN (run `heph auth login`)")]
    Missing,
    /// Not a JWT, or a JWT without the claims the hub needs.
    #[error("the token is not a valid access token: {0}")]
    Malformed(String),
    /// Signed with an algorithm the hub does not accept.
    #[error("the token's algorithm {0} is not accepted (only asymmetric signatures are)")]
    Algorithm(String),
    /// Signed with a key the issuer does not publish.
    #[error("the token was signed with a key the issuer does not publish (kid {0:?})")]
    UnknownKey(String),
    /// The signature does not verify.
    #[error("the token's signature does not verify")]
    Signature,
    /// Past its `exp`.
    #[error("the token has expired; sign in again (`heph auth login`)")]
    Expired,
    /// Before its `nbf`.
    #[error("the token is not valid yet (nbf in the future; check the clocks)")]
    NotYetValid,
    /// Another issuer's.
    #[error("the token was issued by another issuer")]
    Issuer,
    /// For another audience.
    #[error("the token is for another audience")]
    Audience,
    /// A valid token of someone who does not own this hub.
    #[error("this hub belongs to another identity")]
    NotOwner,
    /// An automation token that was revoked or never existed.
    #[error("unknown or revoked automation token")]
    Revoked,
    /// An automation token past its expiry.
    #[error("the automation token has expired; create a new one (`hephd token create`)")]
    TokenExpired,
    /// The issuer cannot be reached to fetch its keys.
    #[error("the hub cannot reach the identity provider to check the token: {0}")]
    Unavailable(String),
    /// A credential on a hub without authentication.
    #[error("this hub does not use credentials")]
    NotConfigured,
    /// A browser page from an origin that is not allowed.
    #[error("requests from this origin are not allowed (the hub's operator can list it with --cors-origin)")]
    Origin,
    /// A `Host` a DNS-rebinding page would send, on a hub without authentication.
    #[error("this hub answers only requests addressed to an IP address or localhost")]
    Host,
    /// No `auth` frame in time.
    #[error("no auth frame in time")]
    Late,
}

impl Denied {
    /// A stable short reason, for the audit log and the metrics.
    #[must_use]
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Malformed(_) => "malformed",
            Self::Algorithm(_) => "algorithm",
            Self::UnknownKey(_) => "unknown_kid",
            Self::Signature => "signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::Issuer => "issuer",
            Self::Audience => "audience",
            Self::NotOwner => "not_owner",
            Self::Revoked => "revoked",
            Self::TokenExpired => "token_expired",
            Self::Unavailable(_) => "issuer_unavailable",
            Self::NotConfigured => "not_configured",
            Self::Origin => "origin",
            Self::Host => "host",
            Self::Late => "late",
        }
    }

    /// Whether the caller is known but not allowed (403, close 4403),
    /// rather than not authenticated (401, close 4401).
    #[must_use]
    pub fn forbidden(&self) -> bool {
        matches!(self, Self::NotOwner | Self::Origin | Self::Host)
    }
}

/// The WebSocket close code for an unauthenticated connection.
pub const CLOSE_UNAUTHORIZED: u16 = 4401;
/// The WebSocket close code for an identity that may not use the hub.
pub const CLOSE_FORBIDDEN: u16 = 4403;

/// A stored automation token (the token itself is not kept).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenRecord {
    /// Its name, unique.
    pub name: String,
    /// SHA-256 of the token, hex.
    pub hash: String,
    /// What it may do.
    pub scope: Scope,
    /// When it was made (Unix seconds).
    pub created: i64,
    /// When it stops working (Unix seconds), if ever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<i64>,
}

impl TokenRecord {
    /// Its hash as bytes; `None` if the stored hex is damaged.
    #[must_use]
    pub fn digest(&self) -> Option<[u8; 32]> {
        <[u8; 32]>::try_from(hex::decode(&self.hash).ok()?).ok()
    }
}

/// The SHA-256 of a token.
#[must_use]
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A new automation token and its record.
#[must_use]
pub fn new_token(name: &str, scope: Scope, expires: Option<i64>, now: i64) -> (String, TokenRecord) {
    let secret: [u8; 32] = rand::random();
    let token = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(secret));
    let record =
        TokenRecord { name: name.to_string(), hash: hex::encode(token_hash(&token)), scope, created: now, expires };
    (token, record)
}

/// The store's settings rows for the owner and the tokens.
pub mod settings {
    use super::{OWNER_KEY, TOKEN_KEY, TokenRecord};
    use heph_engine::Error;
    use heph_engine::store::{Store, Writer};

    /// The owner's `sub`, if claimed.
    pub fn owner(store: &Store) -> Result<Option<String>, Error> {
        Ok(store.setting(OWNER_KEY)?.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Claims the hub for `sub` unless someone has; returns the owner.
    pub fn claim(w: &mut Writer, sub: &str) -> Result<String, Error> {
        if let Some(owner) = w.setting(OWNER_KEY)? {
            return Ok(String::from_utf8_lossy(&owner).into_owned());
        }
        w.set_setting(OWNER_KEY, Some(sub.as_bytes()))?;
        Ok(sub.to_string())
    }

    /// Every automation token.
    pub fn tokens(store: &Store) -> Result<Vec<TokenRecord>, Error> {
        let rows = store.settings(TOKEN_KEY)?;
        Ok(rows.into_iter().filter_map(|(_, v)| serde_json::from_slice(&v).ok()).collect())
    }

    /// Stores a new token; returns false (and stores nothing) if the name
    /// is in use.
    pub fn add_token(w: &mut Writer, record: &TokenRecord) -> Result<bool, Error> {
        let key = format!("{TOKEN_KEY}{}", record.name);
        if w.setting(&key)?.is_some() {
            return Ok(false);
        }
        let bytes = serde_json::to_vec(record).map_err(|e| Error::Storage(e.to_string()))?;
        w.set_setting(&key, Some(&bytes))?;
        Ok(true)
    }

    /// Removes a token; returns whether it existed.
    pub fn remove_token(w: &mut Writer, name: &str) -> Result<bool, Error> {
        let key = format!("{TOKEN_KEY}{name}");
        let existed = w.setting(&key)?.is_some();
        w.set_setting(&key, None)?;
        Ok(existed)
    }
}

pub use heph_hub::audit::Audit;

/// The issuer's keys, and where they come from.
struct Oidc {
    issuer: String,
    audience: String,
    leeway: u64,
    http: openidconnect::reqwest::Client,
    /// The JWKS address, from discovery (found on first use if the issuer
    /// was down when the hub started).
    jwks_uri: tokio::sync::Mutex<Option<String>>,
    keys: RwLock<HashMap<String, Key>>,
    /// When keys were last fetched, or a fetch was last tried: at most one
    /// try per [`JWKS_REFETCH`], failed or not.
    last_fetch: Mutex<Option<Instant>>,
    /// Why the last try failed, until one succeeds.
    failed: Mutex<Option<String>>,
}

#[derive(Clone)]
struct Key {
    key: DecodingKey,
    alg: Option<String>,
}

/// The claims the hub reads.
#[derive(Deserialize)]
struct Claims {
    sub: Option<String>,
    exp: Option<i64>,
}

impl Oidc {
    fn new(issuer: &str, audience: &str, leeway: u64) -> Result<Self> {
        let http = openidconnect::reqwest::ClientBuilder::new()
            // Discovery must not follow redirects (SSRF), and must not hang.
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .context("building the HTTP client for the identity provider")?;
        Ok(Self {
            issuer: issuer.trim_end_matches('/').to_string(),
            audience: audience.to_string(),
            leeway,
            http,
            jwks_uri: tokio::sync::Mutex::new(None),
            keys: RwLock::new(HashMap::new()),
            last_fetch: Mutex::new(None),
            failed: Mutex::new(None),
        })
    }

    /// Discovery: the JWKS address, checked to come from this issuer.
    async fn jwks_uri(&self) -> Result<String, Denied> {
        let mut uri = self.jwks_uri.lock().await;
        if let Some(u) = uri.as_ref() {
            return Ok(u.clone());
        }
        let issuer =
            openidconnect::IssuerUrl::new(self.issuer.clone()).map_err(|e| Denied::Unavailable(e.to_string()))?;
        let metadata = openidconnect::core::CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| Denied::Unavailable(format!("discovery at {}: {e}", self.issuer)))?;
        let found = metadata.jwks_uri().url().to_string();
        *uri = Some(found.clone());
        Ok(found)
    }

    /// Fetches the JWKS (now), replacing the keys.
    async fn fetch_keys(&self, metrics: &Metrics) -> Result<(), Denied> {
        let uri = self.jwks_uri().await?;
        Metrics::add(&metrics.jwks_fetches, 1);
        let response = self
            .http
            .get(&uri)
            .send()
            .await
            .and_then(openidconnect::reqwest::Response::error_for_status)
            .map_err(|e| Denied::Unavailable(format!("fetching the keys at {uri}: {e}")))?;
        let bytes = response.bytes().await.map_err(|e| Denied::Unavailable(e.to_string()))?;
        if bytes.len() > 1024 * 1024 {
            return Err(Denied::Unavailable(format!("the key set at {uri} is over 1 MiB")));
        }
        let set: JwkSet =
            serde_json::from_slice(&bytes).map_err(|e| Denied::Unavailable(format!("the key set at {uri}: {e}")))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            // Encryption keys and keys jsonwebtoken cannot use are skipped.
            if jwk.common.public_key_use == Some(jsonwebtoken::jwk::PublicKeyUse::Encryption) {
                continue;
            }
            let Ok(key) = DecodingKey::from_jwk(jwk) else { continue };
            let kid = jwk.common.key_id.clone().unwrap_or_default();
            let alg = jwk.common.key_algorithm.map(|a| format!("{a:?}"));
            keys.insert(kid, Key { key, alg });
        }
        tracing::info!(keys = keys.len(), %uri, "fetched the identity provider's signing keys");
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = keys;
        *self.last_fetch.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        Ok(())
    }

    fn key(&self, kid: &str) -> Option<Key> {
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        // A token without a kid is accepted only where the issuer has one key.
        if kid.is_empty() && keys.len() == 1 {
            return keys.values().next().cloned();
        }
        keys.get(kid).cloned()
    }

    /// The key for `kid`, fetching the JWKS if it is unknown and the last
    /// fetch is old enough.
    async fn key_for(&self, kid: &str, metrics: &Metrics) -> Result<Key, Denied> {
        if let Some(key) = self.key(kid) {
            return Ok(key);
        }
        // Taken and marked at once: of many requests with an unknown key,
        // one tries; a failed try (discovery included) waits its turn too.
        let due = {
            let mut last = self.last_fetch.lock().unwrap_or_else(PoisonError::into_inner);
            let due = !last.is_some_and(|at| at.elapsed() < JWKS_REFETCH);
            if due {
                *last = Some(Instant::now());
            }
            due
        };
        if due {
            let tried = self.fetch_keys(metrics).await;
            *self.failed.lock().unwrap_or_else(PoisonError::into_inner) = tried.as_ref().err().map(|e| match e {
                Denied::Unavailable(why) => why.clone(),
                other => other.to_string(),
            });
            tried?;
        }
        self.key(kid).ok_or_else(|| match self.failed.lock().unwrap_or_else(PoisonError::into_inner).clone() {
            Some(why) => Denied::Unavailable(why),
            None => Denied::UnknownKey(kid.to_string()),
        })
    }

    /// Verifies a JWT access token; returns its `sub` and `exp`.
    async fn verify(&self, token: &str, metrics: &Metrics) -> Result<(String, i64), Denied> {
        let (alg, kid) = header_of(token)?;
        let Some(algorithm) = ALLOWED.iter().copied().find(|a| format!("{a:?}") == alg) else {
            return Err(Denied::Algorithm(alg));
        };
        let key = self.key_for(&kid, metrics).await?;
        if key.alg.as_ref().is_some_and(|a| *a != alg) {
            return Err(Denied::Algorithm(format!("{alg} (the key is for {})", key.alg.unwrap_or_default())));
        }
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[self.issuer.as_str(), &format!("{}/", self.issuer)]);
        validation.set_audience(&[self.audience.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = self.leeway;
        let data = jsonwebtoken::decode::<Claims>(token, &key.key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            match e.kind() {
                K::ExpiredSignature => Denied::Expired,
                K::ImmatureSignature => Denied::NotYetValid,
                K::InvalidIssuer => Denied::Issuer,
                K::InvalidAudience => Denied::Audience,
                K::InvalidSignature => Denied::Signature,
                K::InvalidAlgorithm => Denied::Algorithm(alg.clone()),
                other => Denied::Malformed(format!("{other:?}")),
            }
        })?;
        let sub = data.claims.sub.filter(|s| !s.is_empty()).ok_or_else(|| Denied::Malformed("no sub".into()))?;
        let exp = data.claims.exp.ok_or_else(|| Denied::Malformed("no exp".into()))?;
        Ok((sub, exp))
    }
}

/// The `alg` and `kid` of a JWT's header, read without trusting it.
fn header_of(token: &str) -> Result<(String, String), Denied> {
    let mut parts = token.split('.');
    let (Some(head), Some(_), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(Denied::Malformed("not a JWT (three dot-separated parts)".into()));
    };
    let bytes = URL_SAFE_NO_PAD.decode(head).map_err(|_| Denied::Malformed("the header is not base64url".into()))?;
    let header: Value =
        serde_json::from_slice(&bytes).map_err(|_| Denied::Malformed("the header is not JSON".into()))?;
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or("none").to_string();
    let kid = header.get("kid").and_then(Value::as_str).unwrap_or("").to_string();
    Ok((alg, kid))
}

/// The hub's authentication: what is configured, the owner, the tokens.
pub struct Auth {
    oidc: Option<Oidc>,
    owner: RwLock<Option<String>>,
    tokens: RwLock<HashMap<[u8; 32], TokenRecord>>,
    /// Bumped on every revocation: connections holding an automation token
    /// check that it still stands.
    pub revocations: watch::Sender<u64>,
    /// The audit log.
    pub audit: Audit,
    /// Browser origins allowed besides the hub's own.
    pub cors_origins: Vec<String>,
    /// How long a browser has to send its `auth` frame.
    pub auth_timeout: Duration,
    /// For `/config`.
    pub client_id: Option<String>,
    metrics: Arc<Metrics>,
}

/// Where a credential came from, for the audit log.
#[derive(Clone, Copy, Debug)]
pub enum Via {
    /// `Authorization` on `/rpc` or `/metrics`.
    Http,
    /// `Authorization` on the `/sync` upgrade.
    SyncHeader,
    /// The `auth` frame.
    SyncFrame,
}

impl Via {
    fn name(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::SyncHeader => "sync_header",
            Self::SyncFrame => "sync_frame",
        }
    }
}

impl Auth {
    /// Authentication as `cfg` asks, with the owner and tokens from `store`.
    pub fn new(
        cfg: &crate::config::Config,
        store: &heph_engine::store::Store,
        audit: Audit,
        metrics: Arc<Metrics>,
    ) -> Result<Self> {
        let oidc = match (&cfg.oidc_issuer, &cfg.oidc_audience) {
            (Some(issuer), Some(audience)) => Some(Oidc::new(issuer, audience, cfg.oidc_leeway)?),
            _ => None,
        };
        let stored = settings::owner(store).context("reading the hub's owner")?;
        let owner = match (&cfg.owner_sub, stored) {
            (Some(given), Some(stored)) if *given != stored => anyhow::bail!(
                "--owner-sub {given:?} differs from the owner this hub already has ({stored:?}); \
                 one hub serves one owner"
            ),
            // Stored as a claim is: the hub stays this owner's when it is
            // started again without the flag.
            (Some(given), None) => {
                let owner = store.write(|w| settings::claim(w, given)).context("storing --owner-sub")?;
                audit.record("owner_claimed", json!({"who": owner, "via": "--owner-sub"}));
                Some(owner)
            }
            (_, stored) => stored,
        };
        let tokens = settings::tokens(store).context("reading the automation tokens")?;
        let tokens = tokens.into_iter().filter_map(|t| Some((t.digest()?, t))).collect();
        Ok(Self {
            oidc,
            owner: RwLock::new(owner),
            tokens: RwLock::new(tokens),
            revocations: watch::channel(0).0,
            audit,
            cors_origins: cfg.cors_origins.clone(),
            auth_timeout: Duration::from_secs(cfg.auth_timeout.max(1)),
            client_id: cfg.oidc_client_id.clone(),
            metrics,
        })
    }

    /// Whether credentials are required.
    #[must_use]
    pub fn required(&self) -> bool {
        self.oidc.is_some()
    }

    /// The issuer, if any.
    #[must_use]
    pub fn issuer(&self) -> Option<&str> {
        self.oidc.as_ref().map(|o| o.issuer.as_str())
    }

    /// The audience, if any.
    #[must_use]
    pub fn audience(&self) -> Option<&str> {
        self.oidc.as_ref().map(|o| o.audience.as_str())
    }

    /// Fetches the issuer's keys ahead of the first connection; a failure
    /// is logged and tried again on first use.
    pub async fn warm_up(&self) {
        if let Some(oidc) = &self.oidc
            && let Err(e) = oidc.fetch_keys(&self.metrics).await
        {
            tracing::warn!(error = %e, "cannot fetch the identity provider's keys yet; will retry on first use");
        }
    }

    /// Checks a bearer credential (a JWT or an automation token) and
    /// records the decision. `claim` lets an unclaimed hub be claimed by
    /// this caller (through `claim`, which stores the owner).
    pub async fn verify<F, Fut>(&self, bearer: &str, via: Via, peer: Peer, claim: F) -> Result<Identity, Denied>
    where
        F: FnOnce(String) -> Fut,
        Fut: std::future::Future<Output = Result<String, String>>,
    {
        let outcome = self.check(bearer, claim).await;
        match &outcome {
            Ok(identity) => {
                Metrics::add(&self.metrics.auth_ok, 1);
                self.audit.record(
                    "auth",
                    with_peer(
                        json!({"outcome": "allowed", "who": identity.label(), "scope": identity.scope, "via": via.name()}),
                        peer,
                    ),
                );
            }
            Err(denied) => self.denied(denied, via, peer, None),
        }
        outcome
    }

    /// Records a refusal that did not come from [`Self::verify`] (no
    /// credential, a late `auth` frame, a foreign origin).
    pub fn denied(&self, denied: &Denied, via: Via, peer: Peer, who: Option<&str>) {
        self.metrics.denied(denied.reason());
        tracing::info!(reason = denied.reason(), via = via.name(), %peer, "credential refused");
        self.audit.record(
            "auth",
            with_peer(json!({"outcome": "denied", "reason": denied.reason(), "who": who, "via": via.name()}), peer),
        );
    }

    async fn check<F, Fut>(&self, bearer: &str, claim: F) -> Result<Identity, Denied>
    where
        F: FnOnce(String) -> Fut,
        Fut: std::future::Future<Output = Result<String, String>>,
    {
        let bearer = bearer.trim();
        if bearer.is_empty() {
            return Err(Denied::Missing);
        }
        if bearer.len() > MAX_TOKEN_BYTES {
            return Err(Denied::Malformed(format!("{} bytes; at most {MAX_TOKEN_BYTES}", bearer.len())));
        }
        if bearer.starts_with(TOKEN_PREFIX) {
            return self.check_token(bearer);
        }
        let Some(oidc) = &self.oidc else { return Err(Denied::NotConfigured) };
        let (sub, exp) = oidc.verify(bearer, &self.metrics).await?;
        let owner = self.owner.read().unwrap_or_else(PoisonError::into_inner).clone();
        let owner = match owner {
            Some(owner) => owner,
            None => {
                let owner = claim(sub.clone()).await.map_err(Denied::Unavailable)?;
                *self.owner.write().unwrap_or_else(PoisonError::into_inner) = Some(owner.clone());
                if owner == sub {
                    tracing::info!(%sub, "the hub is claimed by its first identity");
                    self.audit.record("owner_claimed", json!({"who": sub}));
                }
                owner
            }
        };
        if owner != sub {
            return Err(Denied::NotOwner);
        }
        Ok(Identity { who: Who::Owner { sub }, scope: Scope::Write, expires: Some(exp + leeway_i64(oidc.leeway)) })
    }

    fn check_token(&self, token: &str) -> Result<Identity, Denied> {
        let hash = token_hash(token);
        let tokens = self.tokens.read().unwrap_or_else(PoisonError::into_inner);
        let record = tokens.get(&hash).ok_or(Denied::Revoked)?;
        if record.expires.is_some_and(|at| at <= chrono::Utc::now().timestamp()) {
            return Err(Denied::TokenExpired);
        }
        Ok(Identity {
            who: Who::Token { name: record.name.clone(), hash },
            scope: record.scope,
            expires: record.expires,
        })
    }

    /// Whether `identity` still stands (its token was not revoked).
    #[must_use]
    pub fn still_valid(&self, identity: &Identity) -> bool {
        match &identity.who {
            Who::Token { hash, .. } => self.tokens.read().unwrap_or_else(PoisonError::into_inner).contains_key(hash),
            _ => true,
        }
    }

    /// A token was created (and stored): it works at once.
    pub fn token_added(&self, record: &TokenRecord, via: &str) {
        if let Some(hash) = record.digest() {
            self.tokens.write().unwrap_or_else(PoisonError::into_inner).insert(hash, record.clone());
        }
        self.audit.record(
            "token_created",
            json!({"name": record.name, "scope": record.scope, "expires": record.expires, "via": via, "who": heph_hub::audit::local_user()}),
        );
    }

    /// A token was revoked (and removed from the store): connections using
    /// it end now.
    pub fn token_revoked(&self, name: &str, via: &str) {
        self.tokens.write().unwrap_or_else(PoisonError::into_inner).retain(|_, t| t.name != name);
        self.revocations.send_modify(|n| *n += 1);
        self.audit.record("token_revoked", json!({"name": name, "via": via, "who": heph_hub::audit::local_user()}));
    }

    /// Whether a request's `Origin` (if any) may call the hub: its own
    /// origin (the `Host` it was sent to) or one of `--cors-origin`.
    #[must_use]
    pub fn origin_allowed(&self, headers: &HeaderMap) -> bool {
        let Some(origin) = headers.get(header::ORIGIN) else { return true };
        let Ok(origin) = origin.to_str() else { return false };
        if self.cors_origins.iter().any(|o| o.eq_ignore_ascii_case(origin)) {
            return true;
        }
        let authority = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://"));
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        matches!((authority, host), (Some(a), Some(h)) if a.eq_ignore_ascii_case(h))
    }
}

/// An audit event with who it came from: `peer`, the client (from
/// `X-Forwarded-For` when it came through a trusted proxy), and `proxy`,
/// that proxy's address, when there was one.
fn with_peer(mut event: Value, peer: Peer) -> Value {
    if let Value::Object(fields) = &mut event {
        fields.insert("peer".into(), peer.to_string().into());
        if let Some(proxy) = peer.proxy() {
            fields.insert("proxy".into(), proxy.to_string().into());
        }
    }
    event
}

fn leeway_i64(leeway: u64) -> i64 {
    i64::try_from(leeway).unwrap_or(i64::MAX)
}

/// Whether a `Host` header names this machine in a way a DNS-rebinding
/// page cannot: an IP address, or `localhost`.
#[must_use]
pub fn host_is_safe(host: Option<&str>) -> bool {
    let Some(host) = host else { return false };
    // Strip the port: `[::1]:8787`, `127.0.0.1:8787`, `localhost:8787`.
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(h, port)| if port.chars().all(|c| c.is_ascii_digit()) { h } else { host })
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok()
}

/// The bearer token of an `Authorization` header, if any.
#[must_use]
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An issuer whose discovery fails is asked at most once per
    /// `JWKS_REFETCH`, however many tokens come meanwhile, and they are
    /// refused as the issuer being unavailable (not as an unknown key).
    #[tokio::test]
    async fn a_failing_discovery_is_not_retried_per_request() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let asked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = asked.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = std::io::Read::read(&mut stream, &mut buf);
                let _ = std::io::Write::write_all(
                    &mut stream,
                    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
            }
        });
        let oidc = Oidc::new(&format!("http://127.0.0.1:{port}"), "heph", 0).unwrap();
        let metrics = Metrics::default();
        for _ in 0..20 {
            let denied = oidc.key_for("k1", &metrics).await.err();
            assert!(matches!(denied, Some(Denied::Unavailable(ref why)) if why.contains("discovery")), "{denied:?}");
        }
        assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 1, "discovery was asked once");
    }

    #[test]
    fn hosts() {
        for ok in ["127.0.0.1:8787", "localhost", "LOCALHOST:1", "[::1]:8787", "10.0.0.2", "[::1]"] {
            assert!(host_is_safe(Some(ok)), "{ok}");
        }
        for bad in ["evil.example", "evil.example:8787", "127.0.0.1.evil.example", "localhost.evil.example"] {
            assert!(!host_is_safe(Some(bad)), "{bad}");
        }
        assert!(!host_is_safe(None));
    }

    #[test]
    fn headers_of_jwts() {
        let head = URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#);
        assert_eq!(header_of(&format!("{head}.e30.")).unwrap().0, "none");
        assert!(matches!(header_of("abc"), Err(Denied::Malformed(_))));
        assert!(matches!(header_of("a.b.c.d"), Err(Denied::Malformed(_))));
    }

    #[test]
    fn tokens_are_random_and_stored_hashed() {
        let (a, ra) = new_token("ci", Scope::Read, None, 0);
        let (b, _) = new_token("ci", Scope::Read, None, 0);
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX));
        assert_eq!(ra.hash, hex::encode(token_hash(&a)));
        assert!(!serde_json::to_string(&ra).unwrap().contains(&a));
    }
}
