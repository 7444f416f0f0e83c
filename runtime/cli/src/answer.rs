//! A command's answer, printed in one place: as JSON with `--json`, else as
//! text for a person. Each verb gives the value of its answer and how to
//! draw it; none chooses between the two itself.
//!
//! JSON goes through [`terminal::json_output`] too: what an app or a file put in
//! a string (a bidirectional override, an escape sequence) stays a `\uXXXX`
//! escape, which means the same to a JSON reader and cannot move a
//! terminal's cursor when a person reads the JSON.

use anyhow::Result;
use serde::Serialize;

use crate::terminal;

/// Prints `value` as JSON with `--json`, else the text `draw` makes of it:
/// lines without a final newline, nothing at all when it is empty.
pub fn say<T: Serialize + ?Sized>(json: bool, value: &T, draw: impl FnOnce(&T) -> String) -> Result<()> {
    try_say(json, value, |value| Ok(draw(value)))
}

/// As [`say`], for a text that takes more than `value` to draw (what may
/// fail is done only when the text is asked for).
pub fn try_say<T: Serialize + ?Sized>(json: bool, value: &T, draw: impl FnOnce(&T) -> Result<String>) -> Result<()> {
    if json {
        say_json_text(true, &serde_json::to_string(value)?, String::new)
    } else {
        print_text(draw(value)?);
        Ok(())
    }
}

/// As [`say`], for an answer that is JSON text already (an app's output,
/// an importer's summary), printed as it is.
pub fn say_json_text(json: bool, json_text: &str, draw: impl FnOnce() -> String) -> Result<()> {
    if json {
        outln!("{}", terminal::json_output(json_text));
    } else {
        print_text(draw());
    }
    Ok(())
}

fn print_text(text: String) {
    if !text.is_empty() {
        outln!("{text}");
    }
}

/// Lines joined for [`say`]'s `draw`.
pub fn lines(lines: impl IntoIterator<Item = String>) -> String {
    lines.into_iter().collect::<Vec<_>>().join("\n")
}
