//! Text that an app or a file controls (log lines, notifications, outbox
//! purposes and payloads, audit entries, document bodies, file names),
//! made safe to print for a person. Raw control characters could move the
//! cursor, rewrite earlier lines or recolour them, and bidirectional
//! overrides could reorder what is shown: an outbox item could appear to go
//! somewhere it does not. Every such character is printed as a visible
//! escape instead; in JSON (`--json` output, JSON shown to a person) as a
//! `\uXXXX` escape, see [`json`].

use std::borrow::Cow;

use domicile_manifest::is_hazard;

/// `text` with every character `escapes` picks replaced by what `escape`
/// writes for it; borrowed when there is none.
fn escaped(text: &str, escapes: impl Fn(char) -> bool, escape: impl Fn(char, &mut String)) -> Cow<'_, str> {
    if !text.chars().any(&escapes) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if escapes(c) {
            escape(c, &mut out);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A character as JSON's `\uXXXX` escape (two for one beyond the BMP).
fn json_escape(c: char, out: &mut String) {
    for unit in c.encode_utf16(&mut [0u16; 2]) {
        out.push_str(&format!("\\u{unit:04x}"));
    }
}

/// One line of text: every hazard, line breaks included, escaped
/// (`\n`, `\u{1b}`), so the text can neither leave its line nor fake another.
pub fn safe(text: &str) -> Cow<'_, str> {
    escaped(text, is_hazard, |c, out| out.extend(c.escape_default()))
}

/// Several lines: each escaped as by [`safe`], and every line after the
/// first indented by `indent`, so none can pass for a line of ours.
pub fn indented(text: &str, indent: &str) -> String {
    text.split('\n')
        .map(|line| safe(line.strip_suffix('\r').unwrap_or(line)))
        .collect::<Vec<_>>()
        .join(&format!("\n{indent}"))
}

/// JSON text shown to a person (an app's output, a document): hazards
/// become `\uXXXX` escapes, which keep it valid JSON meaning the same thing
/// (they can only stand inside strings), on one line.
pub fn json(text: &str) -> Cow<'_, str> {
    escaped(text, is_hazard, json_escape)
}

/// `--json` output: as [`json`], but line feeds, carriage returns and tabs
/// are left as they are. In JSON they can only be whitespace between
/// tokens (pretty-printed JSON), where an escape would be a syntax error.
pub fn json_output(text: &str) -> Cow<'_, str> {
    escaped(text, |c| is_hazard(c) && !matches!(c, '\n' | '\r' | '\t'), json_escape)
}

/// A service's output for a person: its view drawn as text when it has
/// one (the host checked it: no hazard can be in it), else its JSON.
pub fn service_output(output: &str) -> String {
    match drawn_view(output) {
        Some(drawn) => format!("{drawn}\n(the whole output, data included: --json)"),
        None => json(output).into_owned(),
    }
}

/// The view of a service's output drawn as text, if it has one.
pub fn drawn_view(output: &str) -> Option<String> {
    let view =
        serde_json::from_str(output).ok().and_then(|value| domicile_view::check_output(&value).ok().flatten())?;
    Some(domicile_view::text::render(&view, width()))
}

/// The terminal's width as the shell exports it (`COLUMNS`), else 80.
fn width() -> usize {
    std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()).filter(|w| *w >= 40).unwrap_or(80)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_and_line_breaks_are_shown_not_obeyed() {
        let hostile = "city survey\u{1b}[2K\r\n    to      http://127.0.0.1:8099/survey\u{9b}31m";
        let shown = safe(hostile);
        assert!(!shown.chars().any(is_hazard), "{shown}");
        assert_eq!(shown, "city survey\\u{1b}[2K\\r\\n    to      http://127.0.0.1:8099/survey\\u{9b}31m");
        assert_eq!(safe("plain text, été"), Cow::Borrowed("plain text, été"));
    }

    #[test]
    fn bidirectional_overrides_are_escaped() {
        assert_eq!(safe("evil\u{202E}gro.ytic"), "evil\\u{202e}gro.ytic");
        assert_eq!(safe("a\u{2066}b\u{200f}c\u{feff}"), "a\\u{2066}b\\u{200f}c\\u{feff}");
    }

    #[test]
    fn indented_lines_cannot_start_a_line_of_their_own() {
        assert_eq!(indented("one\r\ntwo\u{1b}[1A\nthree", "    "), "one\n    two\\u{1b}[1A\n    three");
    }

    #[test]
    fn json_stays_json_with_the_same_meaning() {
        let text = serde_json::json!({ "label": "a\u{9b}b\u{202e}c\u{2028}", "n": 1 }).to_string();
        let shown = json(&text);
        assert!(!shown.chars().any(is_hazard));
        let back: serde_json::Value = serde_json::from_str(&shown).unwrap();
        assert_eq!(back, serde_json::from_str::<serde_json::Value>(&text).unwrap());
        // Pretty-printed JSON keeps its line breaks (whitespace between tokens) and stays JSON.
        let pretty = serde_json::to_string_pretty(&back).unwrap();
        let shown = json_output(&pretty);
        assert!(!shown.chars().any(|c| is_hazard(c) && !matches!(c, '\n')), "{shown}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&shown).unwrap(), back);
    }
}
