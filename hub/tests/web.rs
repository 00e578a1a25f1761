//! The browser app end to end, in headless Chromium (Debian's `chromium`,
//! driven by npm `playwright-core`): the files of `web/test/e2e/` against
//! this build's `hephd` and `heph`, the real OpenID provider and real device
//! daemons, one file after another. Screenshots of the main views land in
//! `web/test-output/`.

mod common;

use std::path::Path;
use std::process::Command;

/// The end-to-end files: the app's main paths, silent token renewal, a hub
/// restored from an older copy, a hostile page in the owner's browser, and
/// a vault of thousands of long notes.
const E2E: [&str; 5] = [
    "test/e2e/app.test.mjs",
    "test/e2e/refresh.test.mjs",
    "test/e2e/restore.test.mjs",
    "test/e2e/hostile.test.mjs",
    "test/e2e/vault.test.mjs",
];

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
        .args(["--test", "--test-concurrency=1", "--test-timeout=300000", "--test-reporter=spec"])
        .args(E2E)
        .current_dir(&web)
        .env("HEPHD", common::hephd())
        .env("HEPH", common::heph())
        .env("CHROMIUM", &chromium)
        .env("OUT", web.join("test-output"))
        .status()
        .expect("run node (Node.js 20+ is needed for the web tests)");
    assert!(status.success(), "the browser tests failed (their output is above; screenshots in web/test-output/)");
}
