//! Signing a device in to an authenticated hub, and staying signed in.
//!
//! - [`login`] runs the OAuth 2.0 device authorization grant (RFC 8628)
//!   against the hub's OpenID provider: it shows a verification address and
//!   a user code, then polls the token endpoint, honouring `interval` and
//!   `slow_down`.
//! - The token set is kept per hub, in the OS keyring where a keyring
//!   service runs (the Secret Service on Linux), or else in a file only its
//!   owner can read (`$XDG_CONFIG_HOME/heph/credentials.json`, mode 0600).
//!   `HEPH_CREDENTIAL_STORE=file` forces the file.
//! - [`access_token`] gives a token that is good for at least a minute,
//!   refreshing it with the refresh token first if need be (and saving the
//!   new set); the device daemon calls it before every connection and
//!   before the token on a live connection runs out.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClient, CoreClientAuthMethod, CoreDeviceAuthorizationResponse,
    CoreGrantType, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreResponseMode,
    CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{
    AdditionalProviderMetadata, ClientId, DeviceAuthorizationUrl, IssuerUrl, OAuth2TokenResponse, ProviderMetadata,
    RefreshToken, Scope,
};
use serde::{Deserialize, Serialize};

use crate::tls::Trust;

/// A token within this many seconds of its expiry is refreshed first.
pub const REFRESH_MARGIN: i64 = 60;

/// What a device keeps after signing in to a hub.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenSet {
    /// The hub (its HTTP base, e.g. `https://heph.example.org`).
    pub hub: String,
    /// The OpenID provider.
    pub issuer: String,
    /// The OAuth client the device signed in as.
    pub client_id: String,
    /// The resource indicator asked for, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// The access token (a JWT for the hub).
    pub access_token: String,
    /// The refresh token, if the provider gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// When the access token expires (Unix seconds), if the provider said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// When it was issued (Unix seconds).
    #[serde(default)]
    pub issued_at: i64,
}

impl TokenSet {
    /// Whether the access token is good for at least `margin` more seconds.
    #[must_use]
    pub fn fresh(&self, now: i64, margin: i64) -> bool {
        self.expires_at.is_none_or(|at| at - margin > now)
    }

    /// How long before expiry to refresh: [`REFRESH_MARGIN`], or a third
    /// of the token's life if that is shorter (short-lived tokens).
    #[must_use]
    pub fn margin(&self) -> i64 {
        match self.expires_at {
            Some(at) if self.issued_at > 0 => REFRESH_MARGIN.min((at - self.issued_at) / 3).max(1),
            _ => REFRESH_MARGIN,
        }
    }

    /// A copy with secrets masked, for `heph auth status --json`.
    #[must_use]
    pub fn redacted(&self) -> serde_json::Value {
        serde_json::json!({
            "hub": self.hub, "issuer": self.issuer, "client_id": self.client_id,
            "expires_at": self.expires_at, "has_refresh_token": self.refresh_token.is_some(),
        })
    }
}

/// Where a token set is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Place {
    /// The OS keyring.
    Keyring,
    /// A 0600 file.
    File(PathBuf),
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Keyring => write!(f, "the OS keyring"),
            Self::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// The hub's key in the stores: its HTTP base, without a trailing slash.
#[must_use]
pub fn hub_key(hub: &str) -> String {
    let hub = hub.trim_end_matches('/').trim_end_matches("/sync");
    if let Some(rest) = hub.strip_prefix("ws://") {
        format!("http://{rest}")
    } else if let Some(rest) = hub.strip_prefix("wss://") {
        format!("https://{rest}")
    } else {
        hub.to_string()
    }
}

const SERVICE: &str = "heph";

fn file_only() -> bool {
    std::env::var("HEPH_CREDENTIAL_STORE").is_ok_and(|v| v == "file")
}

/// The credentials file.
pub fn credentials_file() -> Result<PathBuf> {
    let dir = dirs::config_dir().context("cannot find your config folder (set XDG_CONFIG_HOME)")?;
    Ok(dir.join("heph").join("credentials.json"))
}

mod keyring {
    //! The OS keyring, where one runs.
    #[cfg(target_os = "linux")]
    fn entry(hub: &str) -> Option<keyring_core::Entry> {
        static STORE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        let ready = *STORE.get_or_init(|| match zbus_secret_service_keyring_store::Store::new() {
            Ok(store) => {
                keyring_core::set_default_store(store);
                true
            }
            Err(_) => false,
        });
        if !ready {
            return None;
        }
        keyring_core::Entry::new(super::SERVICE, hub).ok()
    }

    #[cfg(not(target_os = "linux"))]
    fn entry(_hub: &str) -> Option<NoKeyring> {
        None
    }

    #[cfg(not(target_os = "linux"))]
    struct NoKeyring;

    #[cfg(not(target_os = "linux"))]
    impl NoKeyring {
        fn get_password(&self) -> Result<String, ()> {
            Err(())
        }
        fn set_password(&self, _: &str) -> Result<(), ()> {
            Err(())
        }
        fn delete_credential(&self) -> Result<(), ()> {
            Err(())
        }
    }

    /// The stored text, if the keyring works and has it.
    pub fn get(hub: &str) -> Option<String> {
        entry(hub)?.get_password().ok()
    }

    /// Stores `text`; false if there is no keyring.
    pub fn set(hub: &str, text: &str) -> bool {
        entry(hub).is_some_and(|e| e.set_password(text).is_ok())
    }

    /// Removes it; false if there was none.
    pub fn delete(hub: &str) -> bool {
        entry(hub).is_some_and(|e| e.delete_credential().is_ok())
    }
}

fn read_file() -> Result<BTreeMap<String, TokenSet>> {
    let path = credentials_file()?;
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is damaged; remove it and run `heph auth login`", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn write_file(sets: &BTreeMap<String, TokenSet>) -> Result<PathBuf> {
    use std::io::Write as _;
    let path = credentials_file()?;
    let dir = path.parent().context("the credentials file has no folder")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    // Written whole to a 0600 file beside it, then renamed over it.
    let tmp = path.with_extension("json.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.create(true).write(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(&serde_json::to_vec_pretty(sets)?)?;
    file.sync_all()?;
    std::fs::rename(&tmp, &path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(path)
}

/// The token set for `hub`, and where it is kept.
pub fn load(hub: &str) -> Result<Option<(TokenSet, Place)>> {
    let key = hub_key(hub);
    if !file_only()
        && let Some(text) = keyring::get(&key)
        && let Ok(set) = serde_json::from_str(&text)
    {
        return Ok(Some((set, Place::Keyring)));
    }
    Ok(read_file()?.remove(&key).map(|set| (set, Place::File(credentials_file().unwrap_or_default()))))
}

/// Saves `set` (the keyring if there is one, else the file).
pub fn save(set: &TokenSet) -> Result<Place> {
    let key = hub_key(&set.hub);
    if !file_only() && keyring::set(&key, &serde_json::to_string(set)?) {
        return Ok(Place::Keyring);
    }
    let mut sets = read_file()?;
    sets.insert(key, set.clone());
    Ok(Place::File(write_file(&sets)?))
}

/// Forgets the token set for `hub`; returns whether there was one.
pub fn delete(hub: &str) -> Result<bool> {
    let key = hub_key(hub);
    let in_keyring = !file_only() && keyring::delete(&key);
    let mut sets = read_file()?;
    let in_file = sets.remove(&key).is_some();
    if in_file {
        write_file(&sets)?;
    }
    Ok(in_keyring || in_file)
}

/// The device authorization endpoint, which core discovery leaves out.
#[derive(Clone, Debug, Deserialize, Serialize)]
struct DeviceEndpoint {
    device_authorization_endpoint: DeviceAuthorizationUrl,
}
impl AdditionalProviderMetadata for DeviceEndpoint {}
type DeviceProviderMetadata = ProviderMetadata<
    DeviceEndpoint,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

fn http(trust: &Trust) -> Result<openidconnect::reqwest::Client> {
    let builder = openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30));
    trust.http_client(builder).build().context("building the HTTP client")
}

async fn discover(issuer: &str, http: &openidconnect::reqwest::Client) -> Result<DeviceProviderMetadata> {
    let url =
        IssuerUrl::new(issuer.trim_end_matches('/').to_string()).with_context(|| format!("{issuer:?} is not a URL"))?;
    DeviceProviderMetadata::discover_async(url, http).await.with_context(|| {
        format!("cannot read the OpenID configuration of {issuer} (is it the issuer URL, and does it offer the device flow?)")
    })
}

/// What the user must do to approve a device login.
#[derive(Clone, Debug, Serialize)]
pub struct DeviceCode {
    /// Where to go.
    pub verification_uri: String,
    /// The same with the code filled in, if the provider gives one.
    pub verification_uri_complete: Option<String>,
    /// The code to enter.
    pub user_code: String,
    /// Seconds until the code expires.
    pub expires_in: u64,
}

/// Runs the device authorization grant; `show` tells the user what to do.
/// The provider's certificate is checked against `trust`.
pub async fn login(
    hub: &str,
    issuer: &str,
    client_id: &str,
    resource: Option<&str>,
    trust: &Trust,
    show: impl FnOnce(&DeviceCode),
) -> Result<TokenSet> {
    let http = http(trust)?;
    let metadata = discover(issuer, &http).await?;
    let device_url = metadata.additional_metadata().device_authorization_endpoint.clone();
    let client = CoreClient::from_provider_metadata(metadata, ClientId::new(client_id.to_string()), None)
        .set_device_authorization_url(device_url);
    let mut request = client
        .exchange_device_code()
        .add_scope(Scope::new("openid".into()))
        .add_scope(Scope::new("offline_access".into()));
    if let Some(r) = resource {
        request = request.add_extra_param("resource", r.to_string());
    }
    let details: CoreDeviceAuthorizationResponse = request
        .request_async(&http)
        .await
        .map_err(|e| anyhow!("the provider refused the device login: {}", chain(&e)))?;
    show(&DeviceCode {
        verification_uri: details.verification_uri().to_string(),
        verification_uri_complete: details.verification_uri_complete().map(|u| u.secret().clone()),
        user_code: details.user_code().secret().clone(),
        expires_in: details.expires_in().as_secs(),
    });
    let mut poll = client.exchange_device_access_token(&details).map_err(|e| anyhow!("{}", chain(&e)))?;
    if let Some(r) = resource {
        poll = poll.add_extra_param("resource", r.to_string());
    }
    // openidconnect polls at the provider's interval, and slower after slow_down.
    let token = poll
        .request_async(&http, tokio::time::sleep, None)
        .await
        .map_err(|e| anyhow!("the device login did not complete: {}", chain(&e)))?;
    let now = chrono::Utc::now().timestamp();
    Ok(TokenSet {
        hub: hub_key(hub),
        issuer: issuer.trim_end_matches('/').to_string(),
        client_id: client_id.to_string(),
        resource: resource.map(str::to_string),
        access_token: token.access_token().secret().clone(),
        refresh_token: token.refresh_token().map(|t| t.secret().clone()),
        expires_at: token.expires_in().map(|d| expiry(now, d)),
        issued_at: now,
    })
}

/// Why a refresh failed.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// The provider refused: a new login is needed.
    #[error("the identity provider refused to refresh the token ({0}); run `heph auth login`")]
    Rejected(String),
    /// The provider could not be reached; try again later.
    #[error("cannot reach the identity provider to refresh the token: {0}")]
    Unreachable(String),
}

/// A new token set from the refresh token (the provider's certificate
/// checked against `trust`).
pub async fn refresh(set: &TokenSet, trust: &Trust) -> Result<TokenSet, RefreshError> {
    let Some(refresh_token) = &set.refresh_token else {
        return Err(RefreshError::Rejected("no refresh token was given at login".into()));
    };
    let http = http(trust).map_err(|e| RefreshError::Unreachable(e.to_string()))?;
    let metadata = discover(&set.issuer, &http).await.map_err(|e| RefreshError::Unreachable(format!("{e:#}")))?;
    let client = CoreClient::from_provider_metadata(metadata, ClientId::new(set.client_id.clone()), None);
    let refresh_token = RefreshToken::new(refresh_token.clone());
    let mut request = client.exchange_refresh_token(&refresh_token).map_err(|e| RefreshError::Rejected(chain(&e)))?;
    if let Some(r) = &set.resource {
        request = request.add_extra_param("resource", r.clone());
    }
    let token = request.request_async(&http).await.map_err(|e| match &e {
        openidconnect::RequestTokenError::ServerResponse(_) => RefreshError::Rejected(chain(&e)),
        _ => RefreshError::Unreachable(chain(&e)),
    })?;
    let now = chrono::Utc::now().timestamp();
    Ok(TokenSet {
        access_token: token.access_token().secret().clone(),
        // A provider that rotates refresh tokens sends a new one.
        refresh_token: token.refresh_token().map(|t| t.secret().clone()).or_else(|| set.refresh_token.clone()),
        expires_at: token.expires_in().map(|d| expiry(now, d)),
        issued_at: now,
        ..set.clone()
    })
}

/// Why there is no token to send.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Never signed in to this hub (or signed out).
    #[error("not signed in to {0}; run `heph auth login --hub-url {0} --issuer URL --client-id ID`")]
    NotSignedIn(String),
    /// The refresh failed.
    #[error(transparent)]
    Refresh(#[from] RefreshError),
    /// The stored credentials cannot be read.
    #[error("{0:#}")]
    Store(anyhow::Error),
}

impl TokenError {
    /// Whether a new login is what it takes.
    #[must_use]
    pub fn needs_login(&self) -> bool {
        matches!(self, Self::NotSignedIn(_) | Self::Refresh(RefreshError::Rejected(_)))
    }
}

/// A usable access token.
#[derive(Clone, Debug)]
pub struct Access {
    /// The bearer token.
    pub token: String,
    /// When to get a fresh one (Unix seconds): its margin before expiry.
    pub renew_at: Option<i64>,
}

/// An access token for `hub` good for at least its margin
/// ([`TokenSet::margin`]), refreshed and saved first if need be (the
/// provider's certificate checked against `trust`).
pub async fn access_token(hub: &str, trust: &Trust) -> Result<Access, TokenError> {
    let (set, _) = load(hub).map_err(TokenError::Store)?.ok_or_else(|| TokenError::NotSignedIn(hub_key(hub)))?;
    let now = chrono::Utc::now().timestamp();
    let set = if set.fresh(now, set.margin()) {
        set
    } else {
        let fresh = refresh(&set, trust).await?;
        save(&fresh).map_err(TokenError::Store)?;
        tracing::info!(hub = %fresh.hub, "refreshed the access token");
        fresh
    };
    let renew_at = set.expires_at.map(|at| at - set.margin());
    Ok(Access { token: set.access_token, renew_at })
}

/// Whether `hub` has a token set at all.
pub fn signed_in(hub: &str) -> Result<bool> {
    Ok(load(hub)?.is_some())
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Refuses a hub URL that would send a token in the clear to another machine.
pub fn check_transport(hub: &str) -> Result<()> {
    let key = hub_key(hub);
    if let Some(rest) = key.strip_prefix("http://") {
        let host = match rest.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(""),
            None => rest.split(['/', ':']).next().unwrap_or(""),
        };
        let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
        if !loopback {
            bail!("{hub} is not encrypted: tokens go to other machines only over https:// or wss://");
        }
    }
    Ok(())
}

/// When a token that lives `lifetime` from `now` expires: a provider's
/// `expires_in` is whatever it sent, so this saturates instead of
/// overflowing (a century is as good as forever here).
fn expiry(now: i64, lifetime: std::time::Duration) -> i64 {
    const CENTURY: i64 = 100 * 365 * 24 * 3600;
    now.saturating_add(i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX).min(CENTURY))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_provider_s_expires_in_never_overflows() {
        let t = expiry(1_700_000_000, std::time::Duration::from_secs(u64::MAX));
        assert_eq!(t, 1_700_000_000 + 100 * 365 * 24 * 3600);
        assert_eq!(expiry(1_700_000_000, std::time::Duration::from_secs(300)), 1_700_000_300);
    }

    #[test]
    fn hub_keys() {
        assert_eq!(hub_key("ws://127.0.0.1:8787/sync"), "http://127.0.0.1:8787");
        assert_eq!(hub_key("wss://h.example/"), "https://h.example");
        assert_eq!(hub_key("https://h.example"), "https://h.example");
    }

    #[test]
    fn freshness() {
        let mut set = TokenSet {
            hub: "h".into(),
            issuer: "i".into(),
            client_id: "c".into(),
            resource: None,
            access_token: "a".into(),
            refresh_token: None,
            expires_at: Some(1000),
            issued_at: 0,
        };
        assert!(set.fresh(900, 60));
        assert!(!set.fresh(950, 60));
        set.expires_at = None;
        assert!(set.fresh(i64::MAX - 100, 60));
        assert!(!set.redacted().to_string().contains("\"a\""));
        // A token living 6 s is refreshed 2 s before it ends.
        set.issued_at = 994;
        set.expires_at = Some(1000);
        assert_eq!(set.margin(), 2);
    }

    #[test]
    fn tokens_travel_encrypted_off_this_machine() {
        assert!(check_transport("ws://127.0.0.1:8787").is_ok());
        assert!(check_transport("http://localhost:1").is_ok());
        assert!(check_transport("ws://[::1]:8787").is_ok());
        assert!(check_transport("wss://hub.example").is_ok());
        assert!(check_transport("ws://hub.example").is_err());
        assert!(check_transport("http://10.0.0.2:8787").is_err());
    }
}
