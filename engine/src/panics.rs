//! Panics that a write catches.
//!
//! Automerge asserts on some malformed changes, and a bug met by one write
//! must fail that write alone: the document guards and
//! [`crate::error::unpanicked`] catch the panic and report it as that
//! write's error. Rust's default panic hook would still print it on stderr,
//! with a backtrace when `RUST_BACKTRACE` is set, where an operator reads it
//! as a crash. [`quiet_caught`] installs a hook that keeps a caught panic
//! off stderr and hands where it was raised to the error instead; every
//! other panic is printed as before.

use std::cell::{Cell, RefCell};
use std::panic::AssertUnwindSafe;

thread_local! {
    /// How many [`catch`] calls this thread is inside.
    static DEPTH: Cell<u32> = const { Cell::new(0) };
    /// Where the last caught panic was raised, when the hook saw it.
    static RAISED_AT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Runs `f`, catching a panic: `Err` carries its message, and where it was
/// raised when [`quiet_caught`]'s hook is installed.
pub(crate) fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    /// Leaves the count whether `f` returns or unwinds.
    struct Inside;
    impl Drop for Inside {
        fn drop(&mut self) {
            DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
        }
    }
    DEPTH.with(|d| d.set(d.get().saturating_add(1)));
    let inside = Inside;
    let out = std::panic::catch_unwind(AssertUnwindSafe(f));
    drop(inside);
    out.map_err(|panic| {
        let what = message(&*panic).unwrap_or_else(|| "a panic without a message".into());
        match RAISED_AT.with(|at| at.borrow_mut().take()) {
            Some(at) => format!("{what} (at {at})"),
            None => what,
        }
    })
}

/// Whether a panic raised on this thread now would be caught by [`catch`]
/// (and so is not the process going down). A panic hook of its own, such
/// as a terminal UI's that restores the terminal, asks this first.
#[must_use]
pub fn is_caught() -> bool {
    DEPTH.with(Cell::get) > 0
}

/// Installs a panic hook that keeps caught panics off stderr (see the
/// module's documentation) and passes every other panic to the hook that
/// was installed before. Called once, first thing, by a binary.
pub fn quiet_caught() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if is_caught() {
            let at = info.location().map(|l| format!("{}:{}", short_path(l.file()), l.line()));
            RAISED_AT.with(|slot| *slot.borrow_mut() = at);
        } else {
            previous(info);
        }
    }));
}

/// The message a caught panic carries, when it carries one (`panic!` with
/// a literal or with formatting).
#[must_use]
pub fn message(panic: &(dyn std::any::Any + Send)) -> Option<String> {
    panic.downcast_ref::<&str>().map(|s| (*s).to_string()).or_else(|| panic.downcast_ref::<String>().cloned())
}

/// A source path as a bug report wants it: a dependency's from its crate
/// directory (`automerge-0.12.0/src/…`), not from the building machine's
/// cargo registry.
fn short_path(file: &str) -> &str {
    match file.rsplit_once("/registry/src/") {
        Some((_, rest)) => rest.split_once('/').map_or(rest, |(_, path)| path),
        None => file,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caught_panic_is_an_error_that_says_what_and_where() {
        quiet_caught();
        assert!(!is_caught());
        let err = catch(|| -> u32 {
            assert!(is_caught());
            panic!("the check failed: {}", 7)
        })
        .unwrap_err();
        assert!(err.starts_with("the check failed: 7 (at "), "{err}");
        assert!(err.contains("engine/src/panics.rs:"), "{err}");
        assert!(!is_caught(), "the count is left after an unwind");
        // Nested: the inner catch takes its own panic, the outer goes on.
        let outer = catch(|| catch(|| panic!("inner")).unwrap_err());
        assert!(outer.as_deref().is_ok_and(|e| e.starts_with("inner")), "{outer:?}");
        assert_eq!(catch(|| 5), Ok(5));
    }

    #[test]
    fn paths_from_the_registry_start_at_the_crate() {
        assert_eq!(
            short_path(
                "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/automerge-0.12.0/src/op_set2/change/batch.rs"
            ),
            "automerge-0.12.0/src/op_set2/change/batch.rs"
        );
        assert_eq!(short_path("engine/src/doc.rs"), "engine/src/doc.rs");
    }
}
