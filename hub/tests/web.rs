//! The browser app end to end, in headless Chromium (Debian's `chromium`,
//! driven by npm `playwright-core`): `web/test/e2e/app.test.mjs` against this
//! build's `hephd` and `heph`, the real OpenID provider and real device
//! daemons. Screenshots of the main views land in `web/test-output/`.

mod common;

use std::path::Path;
use std::process::Command;

#[test]
fn browser_app_end_to_end() {
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "no Chromium at {chromium}: install Debian's package (`apt-get install chromium`) or set CHROMIUM; .ci/test does this"
    );
    assert!(
        web.join("node_modules/playwright-core").exists()
            && Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc/node_modules").exists(),
        "the npm packages are missing: run `npm ci` in web/ and in hub/tests/oidc/ (.ci/test does this)"
    );
    let status = Command::new("node")
        .args([
            "--test",
            "--test-concurrency=1",
            "--test-timeout=300000",
            "--test-reporter=spec",
            "test/e2e/app.test.mjs",
        ])
        .current_dir(&web)
        .env("HEPHD", common::hephd())
        .env("HEPH", common::heph())
        .env("CHROMIUM", &chromium)
        .env("OUT", web.join("test-output"))
        .status()
        .expect("run node (Node.js 20+ is needed for the web tests)");
    assert!(status.success(), "the browser tests failed (their output is above; screenshots in web/test-output/)");
}
