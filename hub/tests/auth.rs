//! Authentication, against a real OpenID provider (the npm package
//! `oidc-provider`, in `tests/oidc/`) and real hephd processes on 127.0.0.1.
//!
//! The attack table: every way in that must fail, each with the answer it
//! must get and proof that no data went out (the owner's node title never
//! appears, and a refused `/sync` connection gets nothing but its close).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use common::oidc::{AUDIENCE, Provider, raw_http};
use common::{Hub, free_port, hephd};
use heph_engine::{Node, NodeId, NodeKind};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::stream::MaybeTlsStream;
use tokio_tungstenite::tungstenite::{self, Message, WebSocket};

/// A title only the owner may ever see.
const SECRET: &str = "SECRET-owner-only-title";

/// `POST /rpc` with optional bearer and extra headers.
fn rpc(port: u16, bearer: Option<&str>, extra: &str, body: &Value) -> (u16, String) {
    let body = body.to_string();
    let auth = bearer.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    raw_http(
        port,
        &format!(
            "POST /rpc HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}{extra}Content-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
}

fn export() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "export"})
}

type Ws = WebSocket<MaybeTlsStream<TcpStream>>;

/// Opens `/sync`, with a bearer and an `Origin` if given. Err: the HTTP
/// status and body of a refused upgrade.
fn sync(port: u16, bearer: Option<&str>, origin: Option<&str>) -> Result<Ws, (u16, String)> {
    let mut request = format!("ws://127.0.0.1:{port}/sync").into_client_request().unwrap();
    if let Some(t) = bearer {
        request.headers_mut().insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    if let Some(o) = origin {
        request.headers_mut().insert("origin", o.parse().unwrap());
    }
    match tungstenite::connect(request) {
        Ok((ws, _)) => {
            if let MaybeTlsStream::Plain(s) = ws.get_ref() {
                s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            }
            Ok(ws)
        }
        Err(tungstenite::Error::Http(response)) => {
            let status = response.status().as_u16();
            let body = response.body().as_ref().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
            Err((status, body))
        }
        Err(e) => panic!("connecting to /sync: {e}"),
    }
}

fn send(ws: &mut Ws, frame: &Value) {
    ws.send(Message::Text(frame.to_string().into())).unwrap();
}

fn hello() -> Value {
    json!({"type": "hello", "version": 3, "origin": "authtest", "cursor": 0, "bootstrap": false})
}

/// Everything the hub sends until it closes: the text frames, and the close code.
fn until_close(ws: &mut Ws) -> (Vec<String>, Option<u16>) {
    let mut texts = Vec::new();
    loop {
        match ws.read() {
            Ok(Message::Text(t)) => texts.push(t.as_str().to_string()),
            Ok(Message::Close(frame)) => return (texts, frame.map(|f| u16::from(f.code))),
            Ok(_) => {}
            Err(_) => return (texts, None),
        }
    }
}

/// The next text frame as JSON.
fn next(ws: &mut Ws) -> Value {
    loop {
        match ws.read().expect("a frame") {
            Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
            Message::Close(f) => panic!("closed: {f:?}"),
            _ => {}
        }
    }
}

/// Says hello and reads the welcome and the catch-up; returns all the text.
fn hello_and_catch_up(ws: &mut Ws) -> String {
    send(ws, &hello());
    let welcome = next(ws);
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    let head = welcome["head"].as_u64().unwrap();
    let mut text = welcome.to_string();
    let mut last = 0;
    while last < head {
        let frame = next(ws);
        text.push_str(&frame.to_string());
        if let Some(seq) = frame["changes"].as_array().and_then(|c| c.last()).and_then(|c| c["seq"].as_u64()) {
            last = seq;
        }
    }
    text
}

fn authed_hub(dir: &Path, provider: &Provider, extra: &[&str]) -> Hub {
    let mut args = vec![
        "--oidc-issuer",
        provider.issuer.as_str(),
        "--oidc-audience",
        AUDIENCE,
        "--oidc-leeway",
        "1",
        "--auth-timeout",
        "2",
    ];
    args.extend_from_slice(extra);
    Hub::start_with(dir, free_port(), &args)
}

fn audit(hub: &Hub) -> Vec<Value> {
    let path = hub.db.with_extension("db.audit.jsonl");
    std::fs::read_to_string(path).unwrap_or_default().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The owner signs in (claiming the hub) and stores a node with a secret title.
fn seed(hub: &Hub, owner: &str) {
    let draft = Node::new(NodeId::random(), NodeKind::Task, SECRET.into(), Utc::now());
    let create = json!({"jsonrpc": "2.0", "id": 1, "method": "create", "params": {"draft": draft, "message": "add"}});
    let (status, body) = rpc(hub.port, Some(owner), "", &create);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"result\""), "{body}");
    let (status, body) = rpc(hub.port, Some(owner), "", &export());
    assert_eq!(status, 200);
    assert!(body.contains(SECRET), "the owner reads its node: {body}");
}

#[test]
fn the_attack_table() {
    let dir = tempfile::tempdir().unwrap();
    let provider = Provider::start();
    let hub = authed_hub(dir.path(), &provider, &["--cors-origin", "https://app.example"]);
    let port = hub.port;
    // The first valid identity claims the hub.
    let owner = provider.token("heph-ci", "ci-secret");
    seed(&hub, &owner);
    let claims = audit(&hub);
    assert!(claims.iter().any(|e| e["event"] == "owner_claimed" && e["who"] == "heph-ci"), "{claims:?}");

    let now = Utc::now().timestamp();
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = provider.claims("heph-ci");
        f(&mut c);
        provider.forge(&c)
    };
    let alg_none = {
        let head = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"at+jwt"}"#);
        let body = URL_SAFE_NO_PAD.encode(provider.claims("heph-ci").to_string());
        format!("{head}.{body}.")
    };
    let hs256_with_public_key = {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(provider.kid.clone());
        jsonwebtoken::encode(
            &header,
            &provider.claims("heph-ci"),
            &EncodingKey::from_secret(provider.public_pem.as_bytes()),
        )
        .unwrap()
    };
    let unknown_kid = {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("not-published".into());
        jsonwebtoken::encode(&header, &provider.claims("heph-ci"), &provider.other_key).unwrap()
    };
    let stranger = provider.token("stranger", "stranger-secret");
    // (row, bearer, expected HTTP status, expected close code on the auth-frame path)
    let rows: Vec<(&str, Option<String>, u16, u16)> = vec![
        ("no token", None, 401, 4401),
        ("garbage", Some("garbage".into()), 401, 4401),
        ("a 100 KiB token", Some("e".repeat(100 * 1024)), 401, 4401),
        ("expired", Some(with(&|c| c["exp"] = json!(now - 120))), 401, 4401),
        ("not yet valid", Some(with(&|c| c["nbf"] = json!(now + 3600))), 401, 4401),
        ("wrong issuer", Some(with(&|c| c["iss"] = json!("http://127.0.0.1:1"))), 401, 4401),
        ("wrong audience", Some(with(&|c| c["aud"] = json!("another-api"))), 401, 4401),
        (
            "no sub",
            Some(with(&|c| {
                c.as_object_mut().unwrap().remove("sub");
            })),
            401,
            4401,
        ),
        ("alg none", Some(alg_none), 401, 4401),
        ("HS256 signed with the provider's public key", Some(hs256_with_public_key), 401, 4401),
        ("unknown kid", Some(unknown_kid), 401, 4401),
        ("a valid token of another identity", Some(stranger), 403, 4403),
        (
            "an automation token that never existed",
            Some("heph_at_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into()),
            401,
            4401,
        ),
    ];
    let mut failures = Vec::new();
    for (row, bearer, status, close) in &rows {
        let bearer = bearer.as_deref();
        // /rpc
        let (got, body) = rpc(port, bearer, "", &export());
        if got != *status || body.contains(SECRET) {
            failures.push(format!("{row}: /rpc answered {got} (want {status}): {body}"));
        }
        // /sync, bearer on the upgrade (a row without a token goes the auth-frame way below).
        if bearer.is_some() {
            match sync(port, bearer, None) {
                Err((got, body)) if got == *status && !body.contains(SECRET) => {}
                Err((got, body)) => {
                    failures.push(format!("{row}: /sync upgrade answered {got} (want {status}): {body}"))
                }
                Ok(_) => failures.push(format!("{row}: /sync upgrade accepted")),
            }
        }
        // /sync, the browser way: upgrade, then the token as the first frame.
        let mut ws = sync(port, None, None).expect("the upgrade itself needs no token");
        if let Some(token) = bearer {
            send(&mut ws, &json!({"type": "auth", "token": token}));
        }
        send(&mut ws, &hello());
        let (texts, code) = until_close(&mut ws);
        if !texts.is_empty() || code != Some(*close) {
            failures
                .push(format!("{row}: auth frame: sent {texts:?} then closed with {code:?} (want only close {close})"));
        }
    }
    // The auth frame too late: nothing but the close, after --auth-timeout.
    let mut ws = sync(port, None, None).unwrap();
    let t = Instant::now();
    std::thread::sleep(Duration::from_millis(2500));
    let (texts, code) = until_close(&mut ws);
    if !texts.is_empty() || code != Some(4401) || t.elapsed() > Duration::from_secs(10) {
        failures.push(format!("auth frame too late: sent {texts:?}, closed with {code:?}"));
    }
    // A foreign Origin, even with the owner's token.
    let (got, body) = rpc(port, Some(&owner), "Origin: http://evil.example\r\n", &export());
    if got != 403 || body.contains(SECRET) {
        failures.push(format!("foreign Origin on /rpc: {got} {body}"));
    }
    match sync(port, Some(&owner), Some("http://evil.example")) {
        Err((403, body)) if !body.contains(SECRET) => {}
        Err((got, body)) => failures.push(format!("foreign Origin on /sync: {got} {body}")),
        Ok(_) => failures.push("foreign Origin on /sync: accepted".into()),
    }
    // A listed origin and the hub's own are fine.
    let (got, body) = rpc(port, Some(&owner), "Origin: https://app.example\r\n", &export());
    if got != 200 || !body.contains(SECRET) {
        failures.push(format!("listed Origin on /rpc: {got} {body}"));
    }
    let own = format!("Origin: http://127.0.0.1:{port}\r\n");
    let (got, _) = rpc(port, Some(&owner), &own, &export());
    if got != 200 {
        failures.push(format!("the hub's own origin on /rpc: {got}"));
    }
    assert!(failures.is_empty(), "{} rows failed:\n{}", failures.len(), failures.join("\n"));

    // The owner gets in all three ways.
    let mut ws = sync(port, Some(&owner), None).unwrap();
    assert!(hello_and_catch_up(&mut ws).contains("\"changes\""));
    let mut ws = sync(port, None, Some(&format!("http://127.0.0.1:{port}"))).unwrap();
    send(&mut ws, &json!({"type": "auth", "token": owner}));
    hello_and_catch_up(&mut ws);

    // The audit log has every refusal with its reason, and never a token.
    let log = std::fs::read_to_string(hub.db.with_extension("db.audit.jsonl")).unwrap();
    for reason in [
        "missing",
        "malformed",
        "expired",
        "not_yet_valid",
        "issuer",
        "audience",
        "algorithm",
        "unknown_kid",
        "not_owner",
        "revoked",
        "late",
        "origin",
    ] {
        assert!(log.contains(&format!("\"reason\":\"{reason}\"")), "no {reason} in the audit log:\n{log}");
    }
    assert!(!log.contains(&owner) && !log.contains(owner.split('.').nth(2).unwrap()), "a token in the audit log");
    // The keys were fetched at start, and once more for the unknown kid:
    // not once per connection.
    let (status, metrics) = raw_http(
        port,
        &format!(
            "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {owner}\r\nConnection: close\r\n\r\n"
        ),
    );
    assert_eq!(status, 200);
    let fetches: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("heph_hub_jwks_fetches_total ")?.trim().parse().ok())
        .expect("the fetch counter");
    assert!(fetches <= 2, "{fetches} JWKS fetches for {} connections", rows.len() * 3);
    assert_eq!(raw_http(port, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").0, 401);
}

#[test]
fn expiry_and_refresh_on_a_live_connection() {
    let dir = tempfile::tempdir().unwrap();
    let provider = Provider::start();
    let mut hub = authed_hub(dir.path(), &provider, &["--owner-sub", "heph-ci"]);
    let short = |secs: i64| {
        let mut c = provider.claims("heph-ci");
        c["exp"] = json!(Utc::now().timestamp() + secs);
        provider.forge(&c)
    };
    // Expiring without a fresh token: closed with 4401 about exp + leeway (1 s) later.
    let mut ws = sync(hub.port, Some(&short(2)), None).unwrap();
    hello_and_catch_up(&mut ws);
    let t = Instant::now();
    let (_, code) = until_close(&mut ws);
    assert_eq!(code, Some(4401));
    assert!(t.elapsed() < Duration::from_secs(10));
    // Sending a fresh token first keeps it open past the first expiry.
    let mut ws = sync(hub.port, Some(&short(2)), None).unwrap();
    hello_and_catch_up(&mut ws);
    send(&mut ws, &json!({"type": "auth", "token": short(600)}));
    if let MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    }
    match ws.read() {
        Err(tungstenite::Error::Io(e))
            if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
        other => panic!("the refreshed connection should stay open and quiet, got {other:?}"),
    }
    // A fresh token of someone else ends it with 4403.
    let stranger = provider.token("stranger", "stranger-secret");
    send(&mut ws, &json!({"type": "auth", "token": stranger}));
    if let MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    }
    assert_eq!(until_close(&mut ws).1, Some(4403));
    // A real short-lived token from the provider ("short" lives 3 s) is
    // another identity here; the owner set up front keeps it out.
    let short_lived = provider.token("short", "short-secret");
    assert_eq!(sync(hub.port, Some(&short_lived), None).err().map(|e| e.0), Some(403));

    // The owner set up front is stored: restarted without the flag, the
    // hub is still heph-ci's, and a first sign-in by someone else claims
    // nothing.
    hub.proc.stop();
    hub.extra.retain(|a| a != "--owner-sub" && a != "heph-ci");
    hub.restart();
    let stranger = provider.token("stranger", "stranger-secret");
    assert_eq!(sync(hub.port, Some(&stranger), None).err().map(|e| e.0), Some(403));
    assert!(sync(hub.port, Some(&short(600)), None).is_ok(), "the owner still gets in");
    // Another owner given for it is refused at start, with the reason.
    hub.proc.stop();
    let out = std::process::Command::new(common::hephd())
        .args(["--mode", "server", "--http-addr", "127.0.0.1:0", "--db"])
        .arg(&hub.db)
        .args(&hub.extra)
        .args(["--owner-sub", "mallory"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("differs from the owner this hub already has"), "{err}");
}

/// While the identity provider cannot be reached, a token is neither
/// accepted nor called bad: the hub answers 503 with Retry-After, so a
/// device retries instead of waiting for someone to sign in again.
#[test]
fn an_unreachable_identity_provider_is_a_retry_not_a_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = format!("http://127.0.0.1:{}", free_port());
    let hub = Hub::start_with(dir.path(), free_port(), &["--oidc-issuer", &issuer, "--oidc-audience", AUDIENCE]);
    let head = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","kid":"k1"}"#);
    let token = format!("{head}.e30.c2ln");
    let (code, body) = rpc(hub.port, Some(&token), "", &export());
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("discovery"), "the reason: {body}");
    let (status, body) = sync(hub.port, Some(&token), None).expect_err("not upgraded");
    assert_eq!(status, 503, "{body}");
    // A bad token is still a bad token.
    let (code, _) = rpc(hub.port, Some("not-a-token"), "", &export());
    assert_eq!(code, 401);
}

/// Browsers send their token in the first frame, so the hub upgrades their
/// connection before it knows who they are. Peers that connect that way
/// and never authenticate wait in a small pool of their own: they cannot
/// take the `--max-connections` slots of the owner's devices.
#[test]
fn unauthenticated_connections_cannot_crowd_out_the_owner() {
    let dir = tempfile::tempdir().unwrap();
    let provider = Provider::start();
    // Waiting peers are not timed out while the test fills the pool.
    let args = [
        "--oidc-issuer",
        provider.issuer.as_str(),
        "--oidc-audience",
        AUDIENCE,
        "--auth-timeout",
        "60",
        "--owner-sub",
        "heph-ci",
        "--max-connections",
        "3",
    ];
    let hub = Hub::start_with(dir.path(), free_port(), &args);
    let mut claims = provider.claims("heph-ci");
    claims["exp"] = json!(Utc::now().timestamp() + 600);
    let token = provider.forge(&claims);
    // The whole waiting pool, sending nothing.
    let waiting: Vec<Ws> = (0..32).map(|_| sync(hub.port, None, None).expect("upgraded, to wait for auth")).collect();
    let (status, body) = sync(hub.port, None, None).expect_err("the pool is full");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("waiting to authenticate"), "{body}");
    // The owner's devices get in all the same, up to --max-connections.
    let devices: Vec<Ws> = (0..3)
        .map(|_| {
            let mut ws = sync(hub.port, Some(&token), None).expect("the owner's device connects");
            hello_and_catch_up(&mut ws);
            ws
        })
        .collect();
    let (status, body) = sync(hub.port, Some(&token), None).expect_err("past --max-connections");
    assert_eq!(status, 503);
    assert!(body.contains("at most 3 connections"), "{body}");
    drop((waiting, devices));
}

#[test]
fn automation_tokens_read_write_and_revocation() {
    let dir = tempfile::tempdir().unwrap();
    let provider = Provider::start();
    let hub = authed_hub(dir.path(), &provider, &[]);
    let owner = provider.token("heph-ci", "ci-secret");
    seed(&hub, &owner);
    let token = |name: &str, scope: &str| {
        let out = Command::new(hephd())
            .args(["token", "create", "--name", name, "--scope", scope, "--expires", "30d", "--db"])
            .arg(&hub.db)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let reader = token("dashboard", "read");
    let writer = token("ci", "write");
    // A second token of the same name is refused.
    let again = Command::new(hephd())
        .args(["token", "create", "--name", "ci", "--scope", "read", "--db"])
        .arg(&hub.db)
        .output()
        .unwrap();
    assert!(!again.status.success());
    // The list shows names and scopes, never the tokens.
    let list = Command::new(hephd()).args(["token", "list", "--json", "--db"]).arg(&hub.db).output().unwrap();
    let list = String::from_utf8(list.stdout).unwrap();
    assert!(
        list.contains("dashboard") && list.contains("\"write\"") && !list.contains(&reader) && !list.contains(&writer)
    );

    // Read scope: reads, but cannot write by RPC or push.
    let (status, body) = rpc(hub.port, Some(&reader), "", &export());
    assert_eq!(status, 200);
    assert!(body.contains(SECRET));
    let draft = Node::new(NodeId::random(), NodeKind::Task, "from a read token".into(), Utc::now());
    let create = json!({"jsonrpc": "2.0", "id": 2, "method": "create", "params": {"draft": draft, "message": "add"}});
    let (_, body) = rpc(hub.port, Some(&reader), "", &create);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], 10, "forbidden: {body}");
    let mut ws = sync(hub.port, Some(&reader), None).unwrap();
    hello_and_catch_up(&mut ws);
    let head = hub.head();
    let (_, change) = heph_engine::doc::NodeDoc::create(&draft, &automerge::ActorId::random(), "add").unwrap();
    let wire: Vec<Value> = change
        .iter()
        .map(|c| json!({"doc": draft.id, "bytes": base64::engine::general_purpose::STANDARD.encode(c.raw_bytes())}))
        .collect();
    send(&mut ws, &json!({"type": "push", "batch": 1, "changes": wire}));
    let answer = next(&mut ws);
    assert_eq!(answer["type"], "error", "{answer}");
    assert_eq!(answer["code"], "forbidden", "{answer}");
    assert_eq!(hub.head(), head, "nothing was stored");

    // Write scope: pushes are acknowledged.
    let mut w = sync(hub.port, Some(&writer), None).unwrap();
    hello_and_catch_up(&mut w);
    send(&mut w, &json!({"type": "push", "batch": 1, "changes": wire}));
    loop {
        let frame = next(&mut w);
        if frame["type"] == "ack" {
            break;
        }
        assert_eq!(frame["type"], "changes", "{frame}");
    }

    // Revocation ends the live connection within a second, and the token
    // is refused from then on.
    let revoke = Instant::now();
    let out = Command::new(hephd()).args(["token", "revoke", "ci", "--db"]).arg(&hub.db).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut code = None;
    loop {
        match w.read() {
            Ok(Message::Close(f)) => {
                code = f.map(|f| u16::from(f.code));
                break;
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    assert_eq!(code, Some(4401));
    assert!(
        revoke.elapsed() < Duration::from_secs(2),
        "closed {:?} after the revoke command started",
        revoke.elapsed()
    );
    assert_eq!(rpc(hub.port, Some(&writer), "", &export()).0, 401);
    let log = std::fs::read_to_string(hub.db.with_extension("db.audit.jsonl")).unwrap();
    for event in ["token_created", "token_revoked"] {
        assert!(log.contains(event), "{event} missing:\n{log}");
    }
    assert!(!log.contains(&reader) && !log.contains(&writer), "a token in the audit log");
}

#[test]
fn open_mode_is_loopback_only_and_checks_host() {
    let dir = tempfile::tempdir().unwrap();
    // Refuses to serve open on a non-loopback address.
    let out = Command::new(hephd())
        .args(["--mode", "server", "--http-addr", &format!("0.0.0.0:{}", free_port()), "--db"])
        .arg(dir.path().join("open.db"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--insecure-no-auth") && err.contains("--oidc-issuer"), "{err}");

    // On loopback it serves, but not to a rebinding Host, nor to a foreign Origin.
    let hub = Hub::start(dir.path());
    let port = hub.port;
    let rebinding = format!(
        "POST /rpc HTTP/1.1\r\nHost: evil.example:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        export().to_string().len(),
        export()
    );
    assert_eq!(raw_http(port, &rebinding).0, 403);
    assert_eq!(rpc(port, None, "Origin: http://evil.example\r\n", &export()).0, 403);
    assert_eq!(rpc(port, None, "", &export()).0, 200);
    let preflight = format!(
        "OPTIONS /rpc HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: http://evil.example\r\nAccess-Control-Request-Method: POST\r\nConnection: close\r\n\r\n"
    );
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(preflight.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(!answer.to_ascii_lowercase().contains("access-control-allow-origin"), "{answer}");
    // /config says there is no authentication.
    let (status, body) = common::http(port, "GET", "/config", "").unwrap();
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["auth"], false);
}

#[test]
fn device_code_login_then_sync_with_refreshed_tokens() {
    let dir = tempfile::tempdir().unwrap();
    // The device's access tokens live 6 s: the daemon refreshes them on the
    // live connection, and again on reconnecting.
    let provider = Provider::start_with(6);
    let hub = authed_hub(dir.path(), &provider, &[]);
    let config = dir.path().join("config");
    let env = vec![
        ("HEPH_CREDENTIAL_STORE".to_string(), "file".to_string()),
        ("XDG_CONFIG_HOME".to_string(), config.display().to_string()),
        // The transport crates at their most verbose: they log whole requests there.
        (
            "HEPH_LOG".to_string(),
            "info,hephd=debug,tungstenite=trace,tokio_tungstenite=trace,hyper=trace,reqwest=trace".to_string(),
        ),
    ];
    let mut device = common::Device::new(dir.path(), "laptop");
    device.env = env.clone();

    // Before signing in, the daemon is refused and says what to do.
    device.start(&hub.url());
    common::eventually(20, "an auth failure in sync status", || device.status()["auth_failure"] == true);
    let text = device.ok(&["sync", "--status"]);
    assert!(text.contains("heph auth login"), "{text}");
    device.stop();

    // heph auth login: the device flow, approved in the "browser".
    let (prompt, done) = common::oidc::device_login(&env, &hub.url(), &provider);
    assert!(prompt["verification_uri"].as_str().unwrap().ends_with("/device"), "{prompt}");
    assert_eq!(done["signed_in"], true);

    // Stored in a file only its owner can read, with a refresh token.
    let file = config.join("heph/credentials.json");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    let stored: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let first_token = stored[format!("http://127.0.0.1:{}", hub.port)]["access_token"].as_str().unwrap().to_string();
    assert!(stored.to_string().contains("refresh_token"));
    let status = device.json(&["auth", "status", "--hub-url", &hub.url()]);
    assert_eq!(status["signed_in"], true, "{status}");

    // The daemon syncs through the authenticated hub; the device's identity owns it.
    device.start(&hub.url());
    device.ok(&["add", "Written", "after", "login"]);
    device.sync_ok(30);
    assert!(audit(&hub).iter().any(|e| e["event"] == "owner_claimed" && e["who"] == "owner"));

    // Past several token lifetimes the connection stays up (fresh tokens as
    // `auth` frames), and writes keep flowing.
    std::thread::sleep(Duration::from_secs(14));
    device.ok(&["add", "Written", "after", "the", "first", "token", "expired"]);
    device.sync_ok(30);
    let refreshed: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let token = refreshed[format!("http://127.0.0.1:{}", hub.port)]["access_token"].as_str().unwrap().to_string();
    assert_ne!(token, first_token, "the token was refreshed");
    let s = device.status();
    assert_eq!(s["auth_failure"], false, "{s}");
    let (code, body) = rpc(hub.port, Some(&token), "", &export());
    assert_eq!(code, 200);
    for title in ["Written after login", "Written after the first token expired"] {
        assert!(body.contains(title), "the hub lacks {title:?}");
    }
    // The hub accepted fresh tokens on the live connection.
    let frames = audit(&hub).iter().filter(|e| e["via"] == "sync_frame" && e["outcome"] == "allowed").count();
    assert!(frames >= 1, "no token was renewed on the live connection");

    // Restarting the daemon after expiry: it refreshes before connecting.
    device.stop();
    std::thread::sleep(Duration::from_secs(7));
    device.start(&hub.url());
    device.ok(&["add", "Written", "after", "a", "restart"]);
    device.sync_ok(30);
    assert_eq!(device.status()["auth_failure"], false);

    // No token reached the daemon's log, at any level asked for.
    device.stop();
    let log = std::fs::read_to_string(device.db.with_extension("log")).unwrap();
    assert!(log.contains("handshake done"), "the transport's own lines are there: {log}");
    let last: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let last = last[format!("http://127.0.0.1:{}", hub.port)]["access_token"].as_str().unwrap().to_string();
    for t in [&first_token, &token, &last] {
        assert!(!log.contains(t.as_str()), "a token is in the daemon's log");
    }

    // Logging out forgets the token.
    let out = device.json(&["auth", "logout", "--hub-url", &hub.url()]);
    assert_eq!(out["signed_out"], true);
    assert_eq!(device.json(&["auth", "status", "--hub-url", &hub.url()])["signed_in"], false);
}
