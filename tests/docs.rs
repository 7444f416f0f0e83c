//! The README and the guides (`docs/`) say what is true: every `domicile`
//! command in their shell blocks parses (the binary answers `--help` for
//! those verbs and flags), every file of the repository they name exists,
//! and every link resolves, to a file and, with an anchor, to one of its
//! headings. A guide that drifts from the code fails here, not in a
//! reader's terminal.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

mod common;
use common::repo;

/// The README and every guide, with their text.
fn documents() -> Vec<(PathBuf, String)> {
    let mut paths = vec![repo().join("README.md")];
    let mut guides: Vec<PathBuf> = std::fs::read_dir(repo().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    guides.sort();
    paths.extend(guides);
    paths.into_iter().map(|p| (p.clone(), std::fs::read_to_string(&p).unwrap())).collect()
}

/// The lines of a document's shell blocks (```sh), joined where they end with `\`.
fn shell_lines(text: &str) -> Vec<String> {
    let (mut lines, mut in_block, mut pending) = (Vec::new(), false, String::new());
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") {
            in_block = trimmed == "```sh";
            continue;
        }
        if !in_block {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(start) => pending.push_str(start),
            None => {
                pending.push_str(line);
                lines.push(std::mem::take(&mut pending));
            }
        }
    }
    lines
}

/// The `domicile` commands of a shell line: its words up to a comment,
/// cut at `&&`, `||`, `|` and `;`, each command without its redirections.
fn domicile_commands(line: &str) -> Vec<Vec<String>> {
    let mut lexer = shlex::Shlex::new(line);
    let words: Vec<String> = lexer.by_ref().take_while(|w| !w.starts_with('#')).collect();
    let mut commands = vec![Vec::new()];
    let mut words = words.into_iter();
    while let Some(word) = words.next() {
        if ["&&", "||", "|", ";"].contains(&word.as_str()) {
            commands.push(Vec::new());
        } else if [">", ">>", "<", "2>", "2>>"].contains(&word.as_str()) {
            words.next(); // the file it redirects to
        } else if !(word.starts_with('>') || word.starts_with('<') || word.starts_with("2>")) {
            commands.last_mut().unwrap().push(word);
        }
    }
    commands.into_iter().filter(|c| c.first().is_some_and(|w| w == "domicile")).collect()
}

#[test]
fn every_domicile_command_of_the_docs_parses() {
    let mut checked = 0;
    let mut wrong = Vec::new();
    for (path, text) in documents() {
        for line in shell_lines(&text) {
            for command in domicile_commands(&line) {
                let output = std::process::Command::new(env!("CARGO_BIN_EXE_domicile"))
                    .args(&command[1..])
                    .arg("--help")
                    .env_remove("DOMICILE_HOME")
                    .output()
                    .unwrap();
                checked += 1;
                if !output.status.success() {
                    let said = String::from_utf8_lossy(&output.stderr);
                    let first = said.lines().find(|l| !l.trim().is_empty()).unwrap_or_default().to_owned();
                    wrong.push(format!("{}: `{}`: {first}", path.display(), command.join(" ")));
                }
            }
        }
    }
    assert!(checked > 50, "only {checked} commands found: are the shell blocks still ```sh?");
    assert!(wrong.is_empty(), "{} command(s) of the docs do not parse:\n{}", wrong.len(), wrong.join("\n"));
}

/// GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens.
fn anchor(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors_of(text: &str) -> BTreeSet<String> {
    text.lines().filter_map(|l| l.strip_prefix('#')).map(|l| anchor(l.trim_start_matches('#').trim())).collect()
}

#[test]
fn every_link_and_file_the_docs_name_exists() {
    let mut wrong = Vec::new();
    for (path, text) in documents() {
        let dir = path.parent().unwrap();
        for target in links_of(&text) {
            if target.starts_with("http://") || target.starts_with("https://") || target.starts_with("mailto:") {
                continue;
            }
            let (file, fragment) = target.split_once('#').unwrap_or((&target, ""));
            let file_path = if file.is_empty() { path.clone() } else { dir.join(file) };
            if !file_path.exists() {
                wrong.push(format!("{}: link to {target}: no such file", path.display()));
                continue;
            }
            if !fragment.is_empty()
                && !anchors_of(&std::fs::read_to_string(&file_path).unwrap_or_default()).contains(fragment)
            {
                wrong.push(format!("{}: link to {target}: no such heading", path.display()));
            }
        }
        for named in repository_paths(&text) {
            // A file in a folder the reader is told to make is theirs (`sample-apps/bike-km/...`).
            let folder: PathBuf = Path::new(&named).components().take(2).collect();
            if repo().join(&folder).is_dir() && !repo().join(&named).exists() {
                wrong.push(format!("{}: names `{named}`, which does not exist", path.display()));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The targets of the Markdown links `[text](target)` of a text.
fn links_of(text: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        let Some(end) = after.find(')') else { break };
        let target = &after[..end];
        if !target.contains(char::is_whitespace) {
            targets.push(target.to_owned());
        }
        rest = &after[end..];
    }
    targets
}

/// Files of the repository a text names in backquotes: `sample-apps/...`,
/// `tests/...`, `runtime/...`, `manifests/...`, `wit/...`, `docs/...`
/// (not patterns or placeholders, nor what a build or a run makes).
fn repository_paths(text: &str) -> BTreeSet<String> {
    let roots = ["sample-apps/", "tests/", "runtime/", "manifests/", "wit/", "docs/", ".ci/"];
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(|quoted| quoted.split_whitespace().next().unwrap_or_default().trim_end_matches([',', '.', ':', ')']))
        .filter(|p| roots.iter().any(|r| p.starts_with(r)))
        .filter(|p| !p.contains(['<', '>', '*', '{', '$']) && !p.contains("NAME") && !p.contains("..."))
        .filter(|p| !p.contains("/target") && !p.contains("node_modules") && !p.contains("fuzz-findings"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_path_in_the_repository_is_what_the_docs_check() {
    let named = repository_paths(
        "see `sample-apps/data/bank-2026-02.ofx`, `tests/<name>.rs` and `runtime/cli` (or `target/x`)",
    );
    assert_eq!(named.into_iter().collect::<Vec<_>>(), ["runtime/cli", "sample-apps/data/bank-2026-02.ofx"]);
    assert_eq!(anchor("Views: results you can look at"), "views-results-you-can-look-at");
    assert_eq!(
        anchor("The quickest way: `domicile new`, `domicile dev`"),
        "the-quickest-way-domicile-new-domicile-dev"
    );
    let commands = domicile_commands("domicile import X 'a b' > out.json && domicile audit verify # checks");
    assert_eq!(commands, [vec!["domicile", "import", "X", "a b"], vec!["domicile", "audit", "verify"]]);
}
