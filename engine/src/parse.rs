//! Reading Taskwarrior-style modification words: `Buy milk due:tomorrow
//! +errand pri:H project:home`.
//!
//! `key:value` words for known keys set attributes (an empty value clears
//! one), `+tag` adds and `-tag` removes a tag, and the remaining words form
//! the title. After a lone `--`, every word is title text.
//!
//! A word shaped like an attribute whose key is not known is an error, not
//! title text: `recur:weekly` on a heph without recurrence must not rename
//! the task. The shape is narrow so that ordinary text stays text: a key of
//! ASCII letters, digits, `_`, `.` and `-` that starts with a letter or `_`,
//! a colon, and a value that is not empty and does not start with `/`. So
//! `foo:bar` and `due.before:eow` are errors, while `https://x.org`, `10:30`,
//! `re:` and `(see:` are title words.

use crate::doc::Edit;
use crate::node::{Priority, Status};
use crate::recur;
use crate::when::{Clock, WhenError, parse_when};

/// Why modification words could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ModError {
    /// A date.
    #[error("{key}: {problem}")]
    When {
        /// The attribute.
        key: String,
        /// What was wrong with the date.
        problem: WhenError,
    },
    /// Another value.
    #[error("{0}")]
    BadValue(String),
    /// A word shaped like `key:value` whose key is no attribute (see the
    /// module doc).
    #[error(
        "'{word}': {key} is not an attribute (known: {}); to put the word in the title, write it after --",
        known.join(", ")
    )]
    UnknownAttribute {
        /// The word.
        word: String,
        /// Its key.
        key: String,
        /// The attributes that can be set here: [`ATTRIBUTES`], then the
        /// node's own UDAs.
        known: Vec<String>,
    },
}

/// The attributes modification words set, by their full names (each also
/// has aliases: `pri`, `proj`, `sched`, `dep` …).
pub const ATTRIBUTES: &[&str] =
    &["due", "wait", "scheduled", "priority", "project", "status", "depends", "recur", "until"];

/// Parsed modification words.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mods {
    /// The title words, if any were given.
    pub title: Option<String>,
    /// Attribute edits, in the order given.
    pub edits: Vec<Edit>,
    /// Dependencies by id prefix: `(true, p)` adds, `(false, p)` removes.
    pub depends: Vec<(bool, String)>,
}

fn date(key: &str, value: &str, now: &Clock) -> Result<Option<chrono::DateTime<chrono::Utc>>, ModError> {
    if value.is_empty() {
        return Ok(None);
    }
    parse_when(value, now).map(Some).map_err(|problem| ModError::When { key: key.to_string(), problem })
}

/// Parses modification words; `now` anchors relative dates. Only the
/// built-in attributes are known (a new node has no UDAs yet).
pub fn parse_mods<S: AsRef<str>>(words: &[S], now: &Clock) -> Result<Mods, ModError> {
    parse_mods_with(words, now, &[])
}

/// Whether `key:value` is shaped like an attribute (see the module doc).
fn attribute_shaped(key: &str, value: &str) -> bool {
    let mut chars = key.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && !value.is_empty()
        && !value.starts_with('/')
}

/// Like [`parse_mods`], for a node that has the UDAs `udas` (attributes
/// heph does not model, kept from a Taskwarrior import): `name:value` sets
/// one of them and `name:` clears it.
pub fn parse_mods_with<S: AsRef<str>>(words: &[S], now: &Clock, udas: &[String]) -> Result<Mods, ModError> {
    let mut mods = Mods::default();
    let mut title: Vec<&str> = Vec::new();
    let mut literal = false;
    for word in words {
        let word = word.as_ref();
        if literal {
            title.push(word);
            continue;
        }
        if word == "--" {
            literal = true;
            continue;
        }
        if let Some(tag) = word.strip_prefix('+').filter(|t| valid_tag(t)) {
            mods.edits.push(Edit::AddTag(tag.to_string()));
            continue;
        }
        if let Some(tag) = word.strip_prefix('-').filter(|t| valid_tag(t)) {
            mods.edits.push(Edit::RemoveTag(tag.to_string()));
            continue;
        }
        let Some((key, value)) = word.split_once(':') else {
            title.push(word);
            continue;
        };
        let lower = key.to_ascii_lowercase();
        // An abbreviation with no value stays text (`Prio:` in a title), as `re:` does;
        // the full names and the short forms heph always took clear with one (`pri:`).
        let named =
            attribute_named(&lower).filter(|a| !value.is_empty() || *a == lower || CLEARING.contains(&lower.as_str()));
        let edit = match named.unwrap_or(lower.as_str()) {
            "due" => Edit::Due(date("due", value, now)?),
            "wait" => Edit::Wait(date("wait", value, now)?),
            "scheduled" => Edit::Scheduled(date("scheduled", value, now)?),
            "priority" => Edit::Priority(if value.is_empty() {
                None
            } else {
                Some(value.parse::<Priority>().map_err(ModError::BadValue)?)
            }),
            "project" => Edit::Project((!value.is_empty()).then(|| value.to_string())),
            "status" => Edit::Status(value.parse::<Status>().map_err(ModError::BadValue)?),
            "recur" => Edit::Uda(
                recur::RECUR.into(),
                match value {
                    "" => None,
                    v => Some(recur::Period::parse(v).map_err(|e| ModError::BadValue(e.to_string()))?.to_string()),
                },
            ),
            "until" => Edit::Uda(recur::UNTIL.into(), date("until", value, now)?.map(recur::format_until)),
            "depends" => {
                for part in value.split(',').filter(|p| !p.is_empty()) {
                    match part.strip_prefix('-') {
                        Some(p) => mods.depends.push((false, p.to_string())),
                        None => mods.depends.push((true, part.to_string())),
                    }
                }
                continue;
            }
            _ if udas.iter().any(|u| u == key) => Edit::Uda(key.to_string(), (!value.is_empty()).then(|| value.into())),
            _ if attribute_shaped(key, value) => {
                let known = ATTRIBUTES.iter().map(|a| (*a).to_string()).chain(udas.iter().cloned()).collect();
                return Err(ModError::UnknownAttribute { word: word.to_string(), key: key.to_string(), known });
            }
            _ => {
                title.push(word);
                continue;
            }
        };
        mods.edits.push(edit);
    }
    if !title.is_empty() {
        mods.title = Some(title.join(" "));
    }
    Ok(mods)
}

/// Short forms that clear their attribute with an empty value (`pri:`).
const CLEARING: &[&str] = &["pri", "pro", "proj", "sch", "sched", "dep"];

/// The attribute `key` (lower case) names: one of [`ATTRIBUTES`], or an
/// unambiguous abbreviation of one (`pri`, `proj`, `sched`, `wai`, `stat`).
fn attribute_named(key: &str) -> Option<&'static str> {
    abbreviated(key, ATTRIBUTES)
}

/// The one of `names` that `word` is, or abbreviates with at least 3 letters
/// and no other name sharing them (Taskwarrior's rule, but 3 letters); the
/// rule of attribute names in modifications and filters alike.
pub(crate) fn abbreviated(word: &str, names: &[&'static str]) -> Option<&'static str> {
    if let Some(&exact) = names.iter().find(|n| **n == word) {
        return Some(exact);
    }
    let mut found = names.iter().filter(|n| word.len() >= 3 && n.starts_with(word));
    match (found.next(), found.next()) {
        (Some(&one), None) => Some(one),
        _ => None,
    }
}

/// A tag is one word of letters, digits, `_`, `-` or `.`, not starting with a digit-only form.
fn valid_tag(tag: &str) -> bool {
    !tag.is_empty()
        && !tag.chars().all(|c| c.is_ascii_digit())
        && tag.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{FixedOffset, TimeZone};

    fn now() -> Clock {
        FixedOffset::east_opt(0).unwrap().with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap().into()
    }

    #[test]
    fn reads_the_taskwarrior_add_line() {
        let words = ["Buy", "milk", "due:tomorrow", "+errand", "pri:H", "project:home"];
        let m = parse_mods(&words, &now()).unwrap();
        assert_eq!(m.title.as_deref(), Some("Buy milk"));
        assert!(m.edits.contains(&Edit::AddTag("errand".into())));
        assert!(m.edits.contains(&Edit::Priority(Some(Priority::H))));
        assert!(m.edits.contains(&Edit::Project(Some("home".into()))));
        assert!(matches!(m.edits[0], Edit::Due(Some(_))));
    }

    #[test]
    fn empty_values_clear_and_text_with_colons_stays_in_the_title() {
        let words =
            ["due:", "see", "http://x.org", "at", "10:30", "re:", "-old", "dep:abc,-def", "--", "+literal", "x:y"];
        let m = parse_mods(&words, &now()).unwrap();
        assert_eq!(m.title.as_deref(), Some("see http://x.org at 10:30 re: +literal x:y"));
        assert!(m.edits.contains(&Edit::Due(None)));
        assert!(m.edits.contains(&Edit::RemoveTag("old".into())));
        assert_eq!(m.depends, vec![(true, "abc".into()), (false, "def".into())]);
    }

    #[test]
    fn unknown_attributes_are_errors_that_name_the_word() {
        for word in ["recurr:weekly", "foo:bar", "due.before:eow", "_x:1", "mailto:a@b"] {
            let e = parse_mods(&["Title", word], &now()).unwrap_err();
            let ModError::UnknownAttribute { word: ref w, ref known, .. } = e else { panic!("{word}: {e:?}") };
            assert_eq!(w, word);
            assert!(known.iter().any(|k| k == "due"));
            let text = e.to_string();
            assert!(text.contains(word) && text.contains("after --"), "{text}");
        }
        // A UDA the node has is an attribute; a built-in wins over a UDA of the same name.
        let udas = ["estimate".to_string(), "due".to_string()];
        let m = parse_mods_with(&["estimate:3", "size:L", "due:"], &now(), &udas);
        assert!(matches!(m, Err(ModError::UnknownAttribute { ref key, .. }) if key == "size"), "{m:?}");
        let m = parse_mods_with(&["estimate:3", "due:"], &now(), &udas).unwrap();
        assert_eq!(m.edits, vec![Edit::Uda("estimate".into(), Some("3".into())), Edit::Due(None)]);
        let m = parse_mods_with(&["estimate:"], &now(), &udas).unwrap();
        assert_eq!(m.edits, vec![Edit::Uda("estimate".into(), None)]);
        let e = parse_mods_with(&["x:1"], &now(), &udas).unwrap_err().to_string();
        assert!(e.contains("depends, recur, until, estimate, due"), "{e}");
    }

    #[test]
    fn recur_and_until_are_kept_in_taskwarrior_form() {
        let m = parse_mods(&["Rent", "recur:monthly", "until:2027-12-31T00:00:00Z"], &now()).unwrap();
        assert!(m.edits.contains(&Edit::Uda("recur".into(), Some("monthly".into()))));
        assert!(m.edits.contains(&Edit::Uda("until".into(), Some("20271231T000000Z".into()))));
        let e = parse_mods(&["recur:sometimes"], &now()).unwrap_err();
        assert!(e.to_string().contains("\"sometimes\""), "{e}");
    }

    #[test]
    fn bad_values_are_errors() {
        assert!(matches!(parse_mods(&["due:frob"], &now()), Err(ModError::When { .. })));
        assert!(matches!(parse_mods(&["pri:X"], &now()), Err(ModError::BadValue(_))));
        // A negative number is a title word, not a tag removal.
        assert_eq!(parse_mods(&["-5"], &now()).unwrap().title.as_deref(), Some("-5"));
    }
}
