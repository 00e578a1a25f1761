//! Asking before a destructive command (restore, deleting many nodes,
//! resolving conflicts in bulk): the command prints what it will do, then
//! [`ask`] wants a yes.
//!
//! - `--yes` (`-y`) answers for the user: scripts pass it.
//! - With a terminal on standard input, the user types y or yes (any other
//!   answer, or none, declines).
//! - Without one (a pipe, a service) and without `--yes`, the command is
//!   refused: nobody is there to say no.
//!
//! The plan and the question go to standard error, so `--json` output on
//! standard output stays clean.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Result, bail};

/// Whether to go ahead with what `plan` describes. `Ok(())` means yes;
/// a refusal is an error that says nothing was changed, and how to go
/// ahead without a prompt.
pub fn ask(yes: bool, plan: &str, question: &str) -> Result<()> {
    let stdin = std::io::stdin();
    // The plan names titles and values documents carry: shown, not obeyed.
    let mut err = crate::printable::Printable::new(std::io::stderr());
    ask_with(yes, plan, question, stdin.is_terminal(), &mut stdin.lock(), &mut err)
}

/// [`ask`] with its input and output given (tests).
pub fn ask_with(
    yes: bool,
    plan: &str,
    question: &str,
    interactive: bool,
    input: &mut impl BufRead,
    output: &mut impl Write,
) -> Result<()> {
    if !plan.is_empty() {
        write!(output, "{plan}")?;
        if !plan.ends_with('\n') {
            writeln!(output)?;
        }
    }
    if yes {
        return Ok(());
    }
    if !interactive {
        bail!("{question} Not confirmed: standard input is not a terminal. Pass --yes (-y) to go ahead");
    }
    write!(output, "{question} [y/N] ")?;
    output.flush()?;
    let mut answer = String::new();
    input.read_line(&mut answer)?;
    match answer.trim().to_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => bail!("cancelled; nothing was changed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(yes: bool, interactive: bool, typed: &str) -> (Result<()>, String) {
        let mut out = Vec::new();
        let outcome =
            ask_with(yes, "Delete 4 nodes:\n  a\n", "Delete them?", interactive, &mut typed.as_bytes(), &mut out);
        (outcome, String::from_utf8(out).unwrap())
    }

    #[test]
    fn yes_goes_ahead_and_still_shows_the_plan() {
        let (outcome, shown) = run(true, false, "");
        assert!(outcome.is_ok());
        assert!(shown.contains("Delete 4 nodes"));
        assert!(!shown.contains("[y/N]"));
    }

    #[test]
    fn a_terminal_must_type_yes() {
        assert!(run(false, true, "y\n").0.is_ok());
        assert!(run(false, true, "YES\n").0.is_ok());
        for no in ["\n", "n\n", "maybe\n", ""] {
            let (outcome, shown) = run(false, true, no);
            assert!(outcome.unwrap_err().to_string().contains("nothing was changed"));
            assert!(shown.contains("Delete them? [y/N]"));
        }
    }

    #[test]
    fn no_terminal_and_no_yes_is_refused_with_the_way_out() {
        let message = run(false, false, "y\n").0.unwrap_err().to_string();
        assert!(message.contains("--yes"), "{message}");
    }
}
