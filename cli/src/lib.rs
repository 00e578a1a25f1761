//! The parts of `heph` that other crates reach: the TUI (for its render
//! benchmark), and what it shares with the command line (the daemon-or-store
//! [`api`], finding the [`store`], the [`editor`] flow, and keeping
//! [`recurring`] tasks' instances made, reading modification words
//! against the store: [`mods`]).

pub mod api;
pub mod editor;
pub mod mods;
pub mod recurring;
pub mod store;
pub mod tui;
