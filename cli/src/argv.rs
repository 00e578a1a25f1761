//! Flags anywhere on the line: `heph ls kind:note --json`, `heph add Buy milk
//! -y due:today`.
//!
//! Commands that take Taskwarrior words (`add`, `modify`, `ls`, …) must
//! accept words that look like flags (`-tag`, `-5`), which clap can only do
//! by taking every later flag as one more word. So before clap parses, one
//! pass over argv ([`arrange`]) moves each flag of the command being run in
//! front of its words and puts a `--` between them. Which words are flags
//! comes from the clap [`Command`] itself (its long and short names and
//! aliases, globals included), so the list cannot drift from `--help`.
//!
//! The rules, for the words after the subcommand:
//! - `--name`, `--name=VALUE` and `--name VALUE` of a known flag are flags;
//!   an unknown `--name` is left to clap, which says it is unknown (and how
//!   to pass it as a word: after `--`);
//! - `-x` (or a cluster `-xy`) is a flag only when every letter is a known
//!   short flag; otherwise (`-work`, `-5`) it is a word. A short flag's value
//!   is the next word (`-n 5`; `-n5` is a word);
//! - after a lone `--` everything is a word. That `--` stays among the words
//!   of a command taking a word list (`add`, `modify`: after it, `due:x` is
//!   title text); elsewhere, a list of ids included, it is dropped.

use std::ffi::OsString;

use clap::{Arg, Command};

/// `args` (program name first) with every flag of the (sub)command moved in
/// front of its words, and a `--` before the words. Words before the
/// subcommand name (`heph --db x ls`) stay where they are, so `heph --help
/// ls` still asks for the top-level help.
#[must_use]
pub fn arrange(command: &Command, args: Vec<OsString>) -> Vec<OsString> {
    let mut command = command.clone();
    command.build();
    let mut rest = args.into_iter();
    let mut out: Vec<OsString> = rest.next().into_iter().collect();
    let mut current = &command;
    'levels: loop {
        let mut flags: Vec<OsString> = Vec::new();
        let mut words: Vec<OsString> = Vec::new();
        let mut literal = false;
        // Where the user's `--` stood among the words.
        let mut dashes: Option<usize> = None;
        while let Some(token) = rest.next() {
            let Some(text) = token.to_str().map(str::to_owned) else {
                words.push(token);
                continue;
            };
            if literal {
                words.push(token);
                continue;
            }
            if text == "--" {
                literal = true;
                dashes = Some(words.len());
                continue;
            }
            match flag(current, &text) {
                Some(Flag { alone, value_of }) => {
                    flags.extend(alone.into_iter().map(OsString::from));
                    if let Some(name) = value_of {
                        match rest.next() {
                            Some(value) => {
                                let mut joined = OsString::from(format!("{name}="));
                                joined.push(value);
                                flags.push(joined);
                            }
                            // clap says the value is missing.
                            None => flags.push(name.into()),
                        }
                    }
                }
                None if words.is_empty() && current.has_subcommands() => {
                    out.append(&mut flags);
                    match current.find_subcommand(&text) {
                        Some(sub) => {
                            out.push(token);
                            current = sub;
                            continue 'levels;
                        }
                        None => {
                            // Not a subcommand: clap says so.
                            out.push(token);
                            out.extend(rest);
                            return out;
                        }
                    }
                }
                None => words.push(token),
            }
        }
        out.append(&mut flags);
        // A word list reads the `--` itself; it goes after the single
        // positionals (`modify -- 3fa2 due:x`: the id, then `--`).
        if let (Some(at), Some(list)) = (dashes, word_list_at(current)) {
            let at = at.max(list);
            if at <= words.len() {
                words.insert(at, "--".into());
            }
        }
        if !words.is_empty() {
            out.push("--".into());
            out.append(&mut words);
        }
        return out;
    }
}

/// A word read as flags.
struct Flag {
    /// Flags complete in themselves (`--json`, `--limit=5`, `-y`).
    alone: Vec<String>,
    /// A flag whose value is the next word (`-n 5`): its name, to be joined
    /// to the value as `NAME=VALUE` so that a value starting with `-` stays
    /// a value.
    value_of: Option<String>,
}

/// Whether `text` is a flag (or a cluster of short flags) of `command`.
fn flag(command: &Command, text: &str) -> Option<Flag> {
    let args = || command.get_arguments().filter(|a| !a.is_positional());
    if let Some(long) = text.strip_prefix("--") {
        let (name, has_value) = match long.split_once('=') {
            Some((name, _)) => (name, true),
            None => (long, false),
        };
        let known = args().find(|a| a.get_long() == Some(name) || aliases(a).contains(&name));
        // An unknown flag stays a flag: clap reports it.
        return Some(match known {
            Some(arg) if !has_value && takes_value(arg) => Flag { alone: Vec::new(), value_of: Some(text.into()) },
            _ => Flag { alone: vec![text.into()], value_of: None },
        });
    }
    let letters: Vec<char> = text.strip_prefix('-')?.chars().collect();
    let found: Vec<&Arg> = letters
        .iter()
        .map(|c| {
            args().find(|a| a.get_short() == Some(*c) || a.get_all_short_aliases().unwrap_or_default().contains(c))
        })
        .collect::<Option<_>>()?;
    let (last, before) = found.split_last()?;
    if before.iter().any(|a| takes_value(a)) {
        return None;
    }
    let mut alone: Vec<String> = letters.iter().map(|c| format!("-{c}")).collect();
    if !takes_value(last) {
        return Some(Flag { alone, value_of: None });
    }
    let own = alone.pop().unwrap_or_default();
    let name = last.get_long().map_or(own, |l| format!("--{l}"));
    Some(Flag { alone, value_of: Some(name) })
}

fn aliases(arg: &Arg) -> Vec<&str> {
    arg.get_all_aliases().unwrap_or_default()
}

fn takes_value(arg: &Arg) -> bool {
    arg.get_action().takes_values()
}

/// Where the list of words starts among `command`'s positionals, if its
/// last positional takes many values: those words keep a lone `--`, which
/// they read themselves.
fn word_list_at(command: &Command) -> Option<usize> {
    let positionals: Vec<&Arg> = command.get_positionals().collect();
    let last = positionals.last()?;
    // A list of ids (done, delete …) is no word list: a `--` there is dropped.
    (last.get_id() != "ids" && last.get_num_args().is_some_and(|n| n.max_values() > 1)).then(|| positionals.len() - 1)
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;
    use crate::{Cli, Command as Sub};

    fn arranged(line: &str) -> Vec<String> {
        let args = std::iter::once("heph").chain(line.split(' ')).map(OsString::from).collect();
        arrange(&Cli::command(), args).into_iter().map(|a| a.into_string().unwrap()).collect()
    }

    fn parsed(line: &str) -> Cli {
        let args = std::iter::once("heph").chain(line.split(' ')).map(OsString::from).collect();
        Cli::try_parse_from(arrange(&Cli::command(), args)).unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    #[test]
    fn a_dash_dash_before_ids_ends_the_flags_and_is_no_id() {
        assert_eq!(arranged("done -- e138"), ["heph", "done", "--", "e138"]);
        assert!(matches!(parsed("delete -- e138 --json").command, Sub::Delete { ids } if ids == ["e138", "--json"]));
    }

    #[test]
    fn flags_after_words_are_flags() {
        assert_eq!(arranged("ls kind:note --json"), ["heph", "ls", "--json", "--", "kind:note"]);
        let cli = parsed("ls +work -n 5 -home --json");
        assert!(cli.json);
        let Sub::Ls { filter, limit } = cli.command else { panic!() };
        assert_eq!(filter, ["+work", "-home"]);
        assert_eq!(limit, Some(5));
        let cli = parsed("add Buy milk -y due:today --db=/tmp/x.db -errand");
        assert!(cli.yes);
        assert_eq!(cli.db.unwrap().to_str(), Some("/tmp/x.db"));
        let Sub::Add { words } = cli.command else { panic!() };
        assert_eq!(words, ["Buy", "milk", "due:today", "-errand"]);
        let Sub::Ls { limit, .. } = parsed("ls --limit 3 +x").command else { panic!() };
        assert_eq!(limit, Some(3));
        let Sub::Search { all, words } = parsed("search coffee --all beans").command else { panic!() };
        assert!(all);
        assert_eq!(words, ["coffee", "beans"]);
        let Sub::Note { words, body, .. } = parsed("note Espresso --body -strong +coffee").command else { panic!() };
        assert_eq!(words, ["Espresso", "+coffee"]);
        assert_eq!(body.as_deref(), Some("-strong"));
        let cli = parsed("--db /tmp/y.db modify abcd -old New --json title");
        assert!(cli.json);
        let Sub::Modify { id, words, .. } = cli.command else { panic!() };
        assert_eq!((id.as_str(), words), ("abcd", vec!["-old".to_string(), "New".into(), "title".into()]));
    }

    #[test]
    fn words_that_look_like_flags_stay_words() {
        // `-5` and `-work` are not flags of ls; `-n5` is not `-n 5`.
        let Sub::Ls { filter, limit } = parsed("ls -5 -work -n5").command else { panic!() };
        assert_eq!(filter, ["-5", "-work", "-n5"]);
        assert_eq!(limit, None);
    }

    #[test]
    fn after_a_lone_double_dash_everything_is_a_word() {
        // add keeps the `--` (its words read it: title text after it).
        let cli = parsed("add -- --json is a title");
        assert!(!cli.json);
        let Sub::Add { words } = cli.command else { panic!() };
        assert_eq!(words, ["--", "--json", "is", "a", "title"]);
        let Sub::Ls { filter, limit } = parsed("ls -- -n").command else { panic!() };
        assert_eq!((filter, limit), (vec!["--".to_string(), "-n".into()], None));
        // A command with no word list drops it; before the id, it moves after it.
        let Sub::Show { id } = parsed("show -- abcd").command else { panic!() };
        assert_eq!(id, "abcd");
        let Sub::Modify { id, words, .. } = parsed("modify -- abcd due:x -y").command else { panic!() };
        assert_eq!((id.as_str(), words), ("abcd", vec!["--".to_string(), "due:x".into(), "-y".into()]));
        let Sub::Modify { words, .. } = parsed("modify abcd pri:H -- due:x").command else { panic!() };
        assert_eq!(words, ["pri:H", "--", "due:x"]);
    }

    #[test]
    fn help_and_unknown_flags_are_left_to_clap() {
        assert_eq!(arranged("--help ls"), ["heph", "--help", "ls"]);
        assert_eq!(arranged("ls +x --help"), ["heph", "ls", "--help", "--", "+x"]);
        let args = ["heph", "add", "x", "--frob"].map(OsString::from).to_vec();
        let e = Cli::try_parse_from(arrange(&Cli::command(), args)).unwrap_err();
        assert!(e.to_string().contains("--frob"), "{e}");
        // Nested subcommands keep their own flags.
        assert_eq!(
            arranged("conflicts resolve --all --keep 1 --json"),
            ["heph", "conflicts", "resolve", "--all", "--keep=1", "--json"]
        );
    }
}
