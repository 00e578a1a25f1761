//! `heph`: the command line of heph, a local-first task and knowledge system.

mod argv;
mod auth;
mod commands;
mod confirm;
mod daemon;
mod output;
mod printable;
mod render;
mod summary;

use heph_cli::{api, editor, mods, recurring, store};

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

const ABOUT: &str = "heph keeps your tasks, notes and journal in a local replica that works offline \
and syncs through a hub.";

const LONG_ABOUT: &str = "heph keeps your tasks, notes and journal in a local replica that works offline \
and syncs through a hub.

Tasks are written the Taskwarrior way:

    heph add Buy milk due:tomorrow +errand pri:H project:home
    heph ls +errand due.before:eow
    heph done 3fa2

Nodes are named by a short prefix of their id (at least 6 hex digits are shown), the same \
on every device. show and history take any unique prefix; commands that change something \
need at least 4 characters.

Modifications (add, modify): due:DATE wait:DATE scheduled:DATE pri:H|M|L project:NAME \
depends:ID[,ID] recur:PERIOD until:DATE +tag -tag, and NAME:VALUE for a UDA this or another task \
carries; an empty value (due:) clears it; an unambiguous abbreviation of 3+ letters names its \
attribute (prio:H); any other KEY:VALUE word is an error; words after -- are title text.

Recurring tasks, as in Taskwarrior:

    heph add Pay rent due:1st recur:monthly until:2027-12-31

makes a template (not listed) and one task per occurrence: every one already due, and the next \
(--recurrence-limit / HEPH_RECURRENCE_LIMIT future ones, default 1). Periods: daily, weekdays, \
weekly, biweekly, monthly, bimonthly, quarterly, semiannual, yearly, biannual, 3d, 2w, 6m, 2q, \
1y, P1W. Instances are made before tasks are listed and after every change, by the daemon when \
one runs. Modifying the template changes its pending instances too; heph modify --all ID on an \
instance changes the template and its pending siblings; deleting the template ends the series \
(its pending instances with it, after a yes).

Flags go anywhere on the line (heph ls +work --json -n 5); words that only look like flags \
(-errand, -5) stay words, and after a lone -- every word is a word.

Undo: heph undo reverts this device's last change (shown first, asked); again goes further back.
Summaries: heph projects and heph tags count pending and waiting tasks, with the filter words of ls.

Filters (ls, tui, projects, tags) are Taskwarrior's: +tag -tag, ATTR:VALUE and ATTR.MODIFIER:VALUE \
on every attribute (description project priority status kind tags due wait scheduled until entry \
end start modified depends recur urgency uuid, and UDAs), modifiers before after by is not isnt \
has hasnt startswith endswith word noword none any, virtual tags (+ACTIVE +BLOCKED +BLOCKING \
+UNBLOCKED +READY +DUE +TODAY +TOMORROW +YESTERDAY +WEEK +MONTH +QUARTER +YEAR +OVERDUE +WAITING \
+PENDING +COMPLETED +DELETED +RECURRING +TEMPLATE +INSTANCE +TAGGED +ANNOTATED +PROJECT +PRIORITY \
+SCHEDULED +UNTIL +UDA +LATEST), and, or, xor, not and parentheses: heph ls '( +work or +home ) and \
due.before:eow and -BLOCKED'. Other words must appear in the title. status:pending includes started \
tasks; without status: or kind: the default report lists open tasks. An unknown attribute or \
modifier is an error.

Dates: 2026-12-24, 2026-12-24T09:00, 10:30, today, tomorrow, friday, 15th, 3d, 2w, now+4h, and \
Taskwarrior's period bounds: so/eo, then p (previous) or n (next) or nothing, then d, w, ww (Monday \
to Friday), m, q or y (eow, eom, sonw, eoq, sopy); read in your time zone (TZ is honoured) with the \
offset in force on that date. Days and longer move the calendar; hours and less are real time.";

/// heph: tasks, notes and a journal, local-first.
#[derive(Parser, Debug)]
#[command(name = "heph", version, about = ABOUT, long_about = LONG_ABOUT, propagate_version = true)]
pub struct Cli {
    /// The replica's store file [default: $XDG_DATA_HOME/heph/heph.db, i.e. ~/.local/share/heph/heph.db].
    /// A device daemon serving it listens on the store path + ".sock", or on HEPH_SOCKET where set.
    #[arg(long, global = true, env = "HEPH_DB", value_name = "PATH")]
    pub db: Option<PathBuf>,

    /// Print machine-readable JSON (schemas in schemas/) instead of text.
    #[arg(long, global = true)]
    pub json: bool,

    /// How many future pending instances each recurring task keeps made (Taskwarrior's recurrence.limit).
    #[arg(long, global = true, env = "HEPH_RECURRENCE_LIMIT", value_name = "N", default_value_t = 1)]
    pub recurrence_limit: u32,

    /// Answer yes to confirmations (restore, deleting more than 3 nodes or a recurring template with pending instances, resolving conflicts in bulk); needed when standard input is not a terminal.
    #[arg(long, short = 'y', global = true)]
    pub yes: bool,

    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Add a task: heph add Buy milk due:tomorrow +errand pri:H project:home
    Add {
        /// Title words and modifications.
        #[arg(required = true, value_name = "WORDS")]
        words: Vec<String>,
    },
    /// List nodes; by default open tasks, most urgent first.
    #[command(visible_alias = "list")]
    Ls {
        /// Filter words (see heph --help).
        #[arg(value_name = "FILTER")]
        filter: Vec<String>,
        /// Show at most this many rows.
        #[arg(long, short = 'n')]
        limit: Option<usize>,
    },
    /// Show one node in full, with its links and backlinks.
    Show {
        /// Id prefix.
        id: String,
    },
    /// Mark tasks done.
    Done {
        /// Id prefixes (with --json, several print an array of nodes).
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Start working on a task (status active).
    Start {
        /// Id prefixes (with --json, several print an array of nodes).
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Stop working on a task (back to pending).
    Stop {
        /// Id prefixes (with --json, several print an array of nodes).
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Change a node: heph modify 3fa2 due:friday +urgent -someday New title
    Modify {
        /// Id prefix.
        id: String,
        /// On an instance of a recurring task: also change its template and its pending siblings (dates stay).
        #[arg(long)]
        all: bool,
        /// Modifications; plain words replace the title.
        #[arg(required = true, value_name = "WORDS")]
        words: Vec<String>,
    },
    /// Edit a node in $VISUAL/$EDITOR as Markdown; your changes merge as edits.
    Edit {
        /// Id prefix.
        id: String,
    },
    /// Add a dated annotation to a node.
    Annotate {
        /// Id prefix.
        id: String,
        /// The annotation.
        #[arg(required = true)]
        text: Vec<String>,
    },
    /// Delete nodes (a tombstone that syncs; `heph undelete` undoes it). More than 3 at once are listed and need a yes.
    #[command(visible_alias = "rm")]
    Delete {
        /// Id prefixes (with --json, several print an array of nodes).
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Undo a delete.
    Undelete {
        /// Id prefixes (with --json, several print an array of nodes).
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Write a consistent copy of the whole replica to FILE (works while the daemon runs).
    ///
    /// The copy is a heph store file: every node with its whole history, and where sync with the
    /// hub stood. While the device daemon runs it writes the copy (one read transaction, beside
    /// its sync); otherwise heph reads the store itself. The file appears only once complete.
    Backup {
        /// The backup file to write.
        file: PathBuf,
        /// Replace FILE if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Replace the replica's contents with a backup's (`heph backup`), after showing what changes and asking.
    ///
    /// Shows when the backup was taken and what it holds against what the replica holds now, and
    /// asks (--yes skips the question). Works while the daemon runs: it pauses sync, restores,
    /// and syncs again. The restored replica reconciles with the hub: edits the hub already has
    /// (those made here after the backup included) come back from it, and whatever only the
    /// backup holds is offered to it. Local edits never sent to the hub are lost; the summary
    /// counts them. The restored replica edits as a new device id. Written to the audit log
    /// beside the store. (To undo a delete: heph undelete ID.)
    Restore {
        /// The backup file.
        file: PathBuf,
    },
    /// Create a note: heph note "Espresso ratios" +coffee --body "1:2 in 30s"
    Note {
        /// Title words and +tags.
        #[arg(required = true, value_name = "WORDS")]
        words: Vec<String>,
        /// The body text (Markdown); `-` reads it from standard input.
        #[arg(long, short)]
        body: Option<String>,
        /// Open the new note in the editor.
        #[arg(long, short)]
        edit: bool,
    },
    /// Show (creating if needed) the journal of a day, today by default.
    Journal {
        /// The day: today, yesterday, 2026-11-24, monday…
        day: Option<String>,
        /// Append a line to the day's journal.
        #[arg(long, short, value_name = "TEXT")]
        append: Option<String>,
        /// Open the day's journal in the editor.
        #[arg(long, short)]
        edit: bool,
    },
    /// Link node A to node B (B then lists A among its backlinks).
    Link {
        /// The node that links.
        from: String,
        /// The node linked to.
        to: String,
    },
    /// Remove a link from A to B.
    Unlink {
        /// The node that links.
        from: String,
        /// The node linked to.
        to: String,
    },
    /// Find nodes of any kind whose text contains every word.
    Search {
        /// Words to look for (case-insensitive).
        #[arg(required = true)]
        words: Vec<String>,
        /// Also search done, cancelled and deleted nodes.
        #[arg(long, short)]
        all: bool,
    },
    /// Undo this device's last change (shows it and asks first); again to go further back.
    ///
    /// The undo is a new change that syncs like any edit. Undoing an add deletes the node,
    /// undoing a delete restores it, and undoing an edit sets the fields that edit changed back
    /// to their earlier values (fields changed since on other devices that it did not touch stay
    /// as they are). Each undo walks one change further back; an undo is never itself undone.
    /// Only changes made on this device count. Needs --yes without a terminal.
    Undo,
    /// Pending and waiting tasks per project, sub-projects under their parents: heph projects +work
    Projects {
        /// Filter words, as for `heph ls`.
        #[arg(value_name = "FILTER")]
        filter: Vec<String>,
    },
    /// Pending and waiting tasks per tag: heph tags project:home
    Tags {
        /// Filter words, as for `heph ls`.
        #[arg(value_name = "FILTER")]
        filter: Vec<String>,
    },
    /// Show the changes that made a node: when, on which device, what.
    History {
        /// Id prefix.
        id: String,
    },
    /// List fields changed concurrently on two devices, or resolve one.
    Conflicts {
        #[command(subcommand)]
        action: Option<ConflictAction>,
    },
    /// Write every node as JSON (native, or Taskwarrior's import format).
    Export {
        /// Output format.
        #[arg(long, short, value_enum, default_value_t = Format::Native)]
        format: Format,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Read nodes from JSON: heph's own export, or Taskwarrior's `task export`.
    Import {
        /// The file; `-` or nothing reads standard input.
        file: Option<PathBuf>,
        /// Input format; `auto` tells them apart by their fields.
        #[arg(long, short, value_enum, default_value_t = ImportFormat::Auto)]
        format: ImportFormat,
    },
    /// List stored documents heph cannot read (written by a newer or another client), with the reason for each.
    ///
    /// They are kept and synced as they are; `heph export` includes them raw, so a backup is complete.
    Unreadable,
    /// Verify the replica's store: every change, the log, every document and what is read from them.
    ///
    /// Reads everything in one read transaction, so it works while the daemon runs. Each stored
    /// change is hashed again, the log's position digest is followed, every document is loaded
    /// (Automerge checks its checksum) and compared with its heads, the changes logged for it, its
    /// index row and its stored reading. Exits with 1 when something is wrong, naming each problem.
    /// With --repair, what the store can mend from itself is mended in one write: rows read from
    /// documents are rebuilt, and a logged change a document lacks goes back into it. A damaged
    /// document or change, or a broken log, only a copy holds: restore a backup, or let the hub
    /// refill the replica.
    Check {
        /// Mend what the store can mend from itself, then check again.
        #[arg(long)]
        repair: bool,
    },
    /// Sync with the hub now (through the device daemon), or show how sync stands.
    Sync {
        /// Only show sync health: last attempt and success, last error, pending changes, conflicts.
        #[arg(long)]
        status: bool,
    },
    /// Sign this device in to an authenticated hub, or out: heph auth login --hub-url URL --issuer URL --client-id ID
    Auth {
        /// What to do.
        #[command(subcommand)]
        action: AuthAction,
    },
    /// Run hephd as a service of this user (systemd, launchd): install, start, stop, restart, status, uninstall.
    Daemon {
        /// What to do.
        #[command(subcommand)]
        action: daemon::DaemonAction,
    },
    /// A full-screen task list that follows changes live: heph tui +work (press ? for keys).
    Tui {
        /// Filter words, as for `heph ls`.
        #[arg(value_name = "FILTER")]
        filter: Vec<String>,
    },
    /// Print a shell completion script: heph completions bash > /etc/bash_completion.d/heph
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Signing in to a hub.
#[derive(Subcommand, Debug)]
pub enum AuthAction {
    /// Sign in with the device flow: shows an address and a code to approve in a browser, then waits.
    Login {
        /// The hub, e.g. https://heph.example.org (or ws://127.0.0.1:8787).
        #[arg(long, env = "HEPH_HUB_URL", value_name = "URL")]
        hub_url: String,
        /// The hub's OpenID provider (its issuer URL; the hub's /config shows it).
        #[arg(long, env = "HEPH_OIDC_ISSUER", value_name = "URL")]
        issuer: String,
        /// The OAuth client id for devices (a public client allowed the device flow).
        #[arg(long, env = "HEPH_OIDC_CLIENT_ID", value_name = "ID")]
        client_id: String,
        /// A resource indicator to ask the token for (RFC 8707), if the provider wants one.
        #[arg(long, value_name = "URI")]
        resource: Option<String>,
        /// Also trust the certificate authorities in this PEM file (a provider behind a private CA).
        #[arg(long, env = "HEPH_CA_FILE", value_name = "PATH")]
        ca_file: Option<std::path::PathBuf>,
    },
    /// Whether this device is signed in to the hub, and until when.
    Status {
        /// The hub.
        #[arg(long, env = "HEPH_HUB_URL", value_name = "URL")]
        hub_url: String,
    },
    /// Forget this device's token for the hub.
    Logout {
        /// The hub.
        #[arg(long, env = "HEPH_HUB_URL", value_name = "URL")]
        hub_url: String,
    },
}

/// What to do with conflicts.
#[derive(Subcommand, Debug)]
pub enum ConflictAction {
    /// Keep one value: heph conflicts resolve 3fa2 title 2, or every conflict at once: heph conflicts resolve --all --keep 1
    Resolve {
        /// Id prefix.
        #[arg(required_unless_present = "all")]
        id: Option<String>,
        /// The field, as listed.
        #[arg(required_unless_present = "all")]
        field: Option<String>,
        /// The value to keep: its number as listed (1 is the one shown now).
        #[arg(required_unless_present = "all")]
        choice: Option<usize>,
        /// Resolve every listed conflict, keeping value --keep of each; lists them and asks first.
        #[arg(long, requires = "keep", conflicts_with_all = ["id", "field", "choice"])]
        all: bool,
        /// With --all: the number of the value to keep in each conflict (1 is the one shown now).
        #[arg(long, value_name = "N", requires = "all")]
        keep: Option<usize>,
    },
}

/// Export formats.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// heph's own JSON: every node, every field.
    Native,
    /// Taskwarrior's JSON, for `task import` (tasks only).
    Taskwarrior,
}

/// Import formats.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportFormat {
    /// Decide by the records' fields.
    Auto,
    /// heph's own JSON.
    Native,
    /// Taskwarrior's `task export` JSON (a list, or one object per line).
    Taskwarrior,
}

fn main() -> ExitCode {
    // A change Automerge asserts on fails its command with a reason; it is
    // not a crash to print.
    heph_engine::panics::quiet_caught();
    // Flags may come anywhere on the line; see `argv`.
    let cli = Cli::parse_from(argv::arrange(&Cli::command(), std::env::args_os().collect()));
    let outcome = match cli.command {
        Command::Completions { shell } => completions(shell),
        Command::Auth { action } => auth::run(action, cli.json),
        Command::Daemon { action } => daemon::run(action, cli.db.as_deref(), cli.json, cli.yes),
        Command::Tui { filter } => {
            heph_cli::tui::run(cli.db.as_deref(), &commands::plain(&filter), cli.recurrence_limit)
        }
        _ => commands::run(cli),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A closed pipe (heph ls | head) is not an error worth a message.
            if e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) {
                return ExitCode::SUCCESS;
            }
            // Errors may quote titles: control characters are shown, not obeyed.
            let _ = std::io::Write::write_fmt(
                &mut printable::Printable::new(std::io::stderr().lock()),
                format_args!("heph: {e:#}\n"),
            );
            ExitCode::FAILURE
        }
    }
}

/// `heph completions SHELL`: the script, written whole (clap_complete's own
/// writer panics on a closed pipe, as in `heph completions bash | head`).
fn completions(shell: clap_complete::Shell) -> anyhow::Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "heph", &mut script);
    std::io::Write::write_all(&mut std::io::stdout().lock(), &script)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
