//! Writing and checking the fixtures the browser app's tests read
//! (`web/test/fixtures/`), generated from the engine.

use std::path::PathBuf;

use serde_json::Value as Json;

fn fixture_path(name: &str) -> PathBuf {
    let engine = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    engine.parent().unwrap_or(&engine).join("web/test/fixtures").join(name)
}

/// Compares `fresh` with the checked-in file `name`, or rewrites it with
/// `HEPH_BLESS=1`; `test` names the cargo test that regenerates it.
pub fn check(name: &str, fresh: &Json, test: &str) {
    let path = fixture_path(name);
    let text = serde_json::to_string_pretty(fresh).expect("fixtures serialise") + "\n";
    if std::env::var("HEPH_BLESS").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().expect("a parent directory")).expect("create the fixtures directory");
        std::fs::write(&path, text).expect("write the fixture");
        return;
    }
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        current == text,
        "{} is stale: run `HEPH_BLESS=1 cargo test -p heph-engine --test {test}` and commit",
        path.display()
    );
}
