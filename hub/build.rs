//! Builds the browser app (`web/`) with Node.js and embeds it in `hephd`.
//!
//! `node web/tools/build.mjs --out $OUT_DIR/web` (after `npm ci` when
//! `web/node_modules` is missing or older than the lockfile), then
//! `$OUT_DIR/web_assets.rs`: every file of the build as (URL path, bytes,
//! content type, ETag). A missing Node.js or a failed build never fails the
//! cargo build: it warns, embeds nothing, and the hub's `/` says how to fix
//! it. `HEPH_WEB_BUILD=0` skips the build on purpose.

use std::fmt::Write as _;
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

include!("src/web/content_type.rs");

/// The oldest Node.js the app's toolchain (esbuild, TypeScript) runs on.
const NODE_MAJOR: u32 = 20;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let web = manifest.parent().map_or_else(|| manifest.join("../web"), |p| p.join("web"));
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/web/content_type.rs");
    for input in ["src", "tools", "package.json", "package-lock.json"] {
        println!("cargo:rerun-if-changed={}", web.join(input).display());
    }
    println!("cargo:rerun-if-env-changed=HEPH_WEB_BUILD");

    let dist = out.join("web");
    if std::env::var("HEPH_WEB_BUILD").is_ok_and(|v| v.trim() == "0") {
        println!(
            "cargo:warning=HEPH_WEB_BUILD=0: the web app is not built into hephd (`hephd --web-root DIR` serves one)"
        );
        let table = table(&[], "its build was skipped (HEPH_WEB_BUILD=0)");
        std::fs::write(out.join("web_assets.rs"), table).expect("writing web_assets.rs into OUT_DIR");
        return;
    }
    let outcome = build(&web, &dist);
    let (files, not_built) = match outcome.and_then(|()| collect(&dist)) {
        Ok(files) => (files, String::new()),
        Err(failure) => {
            println!("cargo:warning=the web app is not embedded in hephd: {}", failure.reason);
            for line in &failure.details {
                println!("cargo:warning=  {line}");
            }
            println!(
                "cargo:warning=hephd builds, but its / only says the app is missing. To fix: install Node.js \
                 {NODE_MAJOR}+ and npm and build again (`touch web/package.json` if nothing else changed), \
                 or run `hephd --web-root DIR` with DIR from `node web/tools/build.mjs --out DIR`."
            );
            (Vec::new(), failure.reason)
        }
    };
    let table = table(&files, &not_built);
    std::fs::write(out.join("web_assets.rs"), table).expect("writing web_assets.rs into OUT_DIR");
}

/// Why the app is not embedded, with the tail of a tool's output.
struct Failure {
    reason: String,
    details: Vec<String>,
}

impl Failure {
    fn new(reason: impl Into<String>) -> Self {
        Self { reason: reason.into(), details: Vec::new() }
    }

    /// A tool that ran and failed: the first lines of what it said, without
    /// Node's stack frames.
    fn of(reason: impl Into<String>, output: &Output) -> Self {
        let text = format!("{}{}", String::from_utf8_lossy(&output.stderr), String::from_utf8_lossy(&output.stdout));
        let noise = ["at ", "errors: [", "warnings: [", "}", "Node.js v"];
        let details = text
            .lines()
            .map(str::trim_end)
            .filter(|l| !l.trim().is_empty() && !noise.iter().any(|n| l.trim_start().starts_with(n)))
            .take(12)
            .map(str::to_string)
            .collect();
        Self { reason: reason.into(), details }
    }
}

/// `npm ci` when needed, then the app's own build into `dist`.
fn build(web: &Path, dist: &Path) -> Result<(), Failure> {
    if !web.join("package.json").is_file() {
        return Err(Failure::new(format!("the app's sources are not at {}", web.display())));
    }
    let version = Command::new("node")
        .arg("--version")
        .output()
        .map_err(|e| Failure::new(format!("Node.js (`node`) was not found ({e}); it is needed to build the app")))?;
    let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
    let major = version.trim_start_matches('v').split('.').next().and_then(|m| m.parse::<u32>().ok());
    if major.is_none_or(|m| m < NODE_MAJOR) {
        return Err(Failure::new(format!("Node.js {version} is too old; the app needs {NODE_MAJOR} or newer")));
    }

    // Cargo may run this script for several target folders at once: one
    // `npm ci` at a time, and no build while it runs.
    let lock = File::create(std::env::temp_dir().join("heph-web-npm.lock")).ok();
    if stale(web) {
        if let Some(lock) = &lock {
            let _ = lock.lock();
        }
        // Checked again: another build may have installed them meanwhile.
        if stale(web) {
            let output =
                Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(web).output().map_err(|e| {
                    Failure::new(format!("npm was not found ({e}); it is needed to install the app's toolchain"))
                })?;
            if !output.status.success() {
                return Err(Failure::of(format!("`npm ci` in {} failed", web.display()), &output));
            }
        }
        if let Some(lock) = &lock {
            let _ = lock.unlock();
        }
    }
    if let Some(lock) = &lock {
        let _ = lock.lock_shared();
    }
    let output = Command::new("node")
        .arg("tools/build.mjs")
        .arg("--out")
        .arg(dist)
        .current_dir(web)
        .output()
        .map_err(|e| Failure::new(format!("cannot run node ({e})")))?;
    if !output.status.success() {
        return Err(Failure::of("`node tools/build.mjs` failed", &output));
    }
    if !dist.join("index.html").is_file() {
        return Err(Failure::new(format!("the build wrote no index.html into {}", dist.display())));
    }
    Ok(())
}

/// Whether `web/node_modules` is missing or older than the lockfile (npm
/// writes `node_modules/.package-lock.json` at the end of every install).
fn stale(web: &Path) -> bool {
    let modified = |p: PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    match (modified(web.join("node_modules/.package-lock.json")), modified(web.join("package-lock.json"))) {
        (Some(installed), Some(locked)) => installed < locked,
        (None, _) => true,
        (Some(_), None) => false,
    }
}

/// One built file.
struct Built {
    url: String,
    file: PathBuf,
    etag: String,
}

/// Every file under `dist`, sorted by URL path.
fn collect(dist: &Path) -> Result<Vec<Built>, Failure> {
    let mut files = Vec::new();
    let mut dirs = vec![dist.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| Failure::new(format!("reading {}: {e}", dir.display())))?;
        for entry in entries {
            let path = entry.map_err(|e| Failure::new(format!("reading {}: {e}", dir.display())))?.path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let rel = path.strip_prefix(dist).expect("under dist");
            let parts: Vec<String> = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
            let bytes = std::fs::read(&path).map_err(|e| Failure::new(format!("reading {}: {e}", path.display())))?;
            let mut hasher = std::hash::DefaultHasher::new();
            bytes.hash(&mut hasher);
            let file = path.canonicalize().unwrap_or(path);
            files.push(Built {
                url: format!("/{}", parts.join("/")),
                file,
                etag: format!("\"{:016x}\"", hasher.finish()),
            });
        }
    }
    files.sort_by(|a, b| a.url.cmp(&b.url));
    Ok(files)
}

/// The Rust source of the embedded table.
fn table(files: &[Built], not_built: &str) -> String {
    let mut src = String::from(
        "// Generated by hub/build.rs; do not edit.\n\n\
         /// Every file of the web app: (URL path, bytes, content type, ETag).\n\
         pub static FILES: &[(&str, &[u8], &str, &str)] = &[\n",
    );
    for f in files {
        let _ = writeln!(
            src,
            "    ({:?}, include_bytes!({:?}), {:?}, {:?}),",
            f.url,
            f.file.display().to_string(),
            content_type(&f.url),
            f.etag
        );
    }
    let _ = write!(
        src,
        "];\n\n/// Why no web app is embedded (empty when one is).\npub const NOT_BUILT: &str = {not_built:?};\n"
    );
    src
}
