//! The checks behind `tests/tidy.rs`, as pure functions over source text, file names and
//! `cargo metadata`, so that each can be shown to fail on a bad sample.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use regex::Regex;

/// Rust source split into code and string literals: comments are gone, and every literal's
/// contents are blanked out of `code` and kept in `strings` with the line it starts on.
#[derive(Debug, Default)]
pub struct Lexed {
    /// The source with comments and literal contents replaced by spaces; newlines are kept, so
    /// line numbers still hold.
    pub code: String,
    pub strings: Vec<(usize, String)>,
}

/// Splits Rust source into code and string literals. Handles line, block (nested) and doc
/// comments, escapes, raw strings with any number of `#`, byte and C strings, and tells char
/// literals (`'"'`) from lifetimes (`'a`).
pub fn lex(source: &str) -> Lexed {
    let chars: Vec<char> = source.chars().collect();
    let mut out = Lexed::default();
    let mut line = 1;
    let mut i = 0;
    // Copies `c` into the code, or a space in its place (a newline stays a newline).
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if chars[i] == '\n' {
                        line += 1;
                        out.code.push('\n');
                    }
                    i += 1;
                }
            }
        } else if let Some((hashes, start)) = raw_string_start(&chars, i) {
            let closing: Vec<char> = std::iter::once('"')
                .chain(std::iter::repeat_n('#', hashes))
                .collect();
            let begin_line = line;
            out.code.extend(std::iter::repeat_n(' ', start - i));
            let mut j = start;
            let mut text = String::new();
            while j < chars.len() && !chars[j..].starts_with(&closing) {
                if chars[j] == '\n' {
                    line += 1;
                }
                text.push(chars[j]);
                out.code.push(blank(chars[j]));
                j += 1;
            }
            out.strings.push((begin_line, text));
            out.code
                .extend(std::iter::repeat_n(' ', closing.len().min(chars.len() - j)));
            i = (j + closing.len()).min(chars.len());
        } else if c == '"' {
            let begin_line = line;
            let mut text = String::new();
            out.code.push(' ');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    text.push(chars[i]);
                    out.code.push(' ');
                    i += 1;
                }
                if chars[i] == '\n' {
                    line += 1;
                }
                text.push(chars[i]);
                out.code.push(blank(chars[i]));
                i += 1;
            }
            out.code.push(' ');
            i += 1;
            out.strings.push((begin_line, text));
        } else if c == '\'' {
            // A char literal is `'x'` or `'\…'`; anything else is a lifetime or a label.
            let end = if next == Some('\\') {
                (i + 3..chars.len().min(i + 13)).find(|&j| chars[j] == '\'')
            } else if chars.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            match end {
                Some(end) => {
                    out.code.extend(std::iter::repeat_n(' ', end + 1 - i));
                    i = end + 1;
                }
                None => {
                    out.code.push(c);
                    i += 1;
                }
            }
        } else {
            if c == '\n' {
                line += 1;
            }
            out.code.push(c);
            i += 1;
        }
    }
    out
}

/// At `r"`, `r#"`, `br#"`, `cr"` …, the number of `#` and where the contents start.
fn raw_string_start(chars: &[char], i: usize) -> Option<(usize, usize)> {
    let after_prefix = match (chars[i], chars.get(i + 1)) {
        ('r', _) => i + 1,
        ('b' | 'c', Some('r')) => i + 2,
        _ => return None,
    };
    // `r` must begin a token, not end an identifier such as `for"`.
    if i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_') {
        return None;
    }
    let hashes = chars[after_prefix..]
        .iter()
        .take_while(|&&c| c == '#')
        .count();
    (chars.get(after_prefix + hashes) == Some(&'"')).then_some((hashes, after_prefix + hashes + 1))
}

/// Whether a module opens with its `//!` line.
pub fn has_module_doc(source: &str) -> bool {
    source.trim_start().starts_with("//!")
}

/// Printing to the terminal in code (not in comments or strings): `(line, macro)`.
pub fn prints(source: &str) -> Vec<(usize, String)> {
    static PRINT: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"\b(e?print(ln)?|dbg)!\s*\(").unwrap());
    matches_by_line(&lex(source).code, &PRINT)
}

/// Writing to standard output directly, which only a crate's designated output module may do.
pub fn writes_stdout(source: &str) -> Vec<(usize, String)> {
    static STDOUT: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\bstdout\s*\(\s*\)").unwrap());
    matches_by_line(&lex(source).code, &STDOUT)
}

/// IO in code: files, sockets, processes, the environment, threads, async runtimes, or a clock
/// read (the current time must come in as a value).
pub fn does_io(source: &str) -> Vec<(usize, String)> {
    static IO: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"\b(std::(fs|net|io|env|process|thread)\b|tokio::|reqwest::|SystemTime|Instant::now|Timestamp::now|Zoned::now|now_v7)",
        )
        .unwrap()
    });
    matches_by_line(&lex(source).code, &IO)
}

/// Reading or decompressing a request body in full, which only the server's capped body
/// reader may do.
pub fn reads_bodies(source: &str) -> Vec<(usize, String)> {
    static BODY: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"\b(to_bytes\s*\(|GzDecoder|read_to_end\s*\(|Json\s*<|\bBytes\s*[,)])").unwrap()
    });
    matches_by_line(&lex(source).code, &BODY)
}

fn matches_by_line(code: &str, pattern: &Regex) -> Vec<(usize, String)> {
    code.lines()
        .enumerate()
        .flat_map(|(index, line)| {
            pattern
                .find_iter(line)
                .map(move |m| (index + 1, m.as_str().to_owned()))
        })
        .collect()
}

/// String literals that read as SQL statements: `(line, literal)`.
pub fn sql_literals(source: &str) -> Vec<(usize, String)> {
    static SQL: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"(?x)\b(
                SELECT\b[\s\S]*\bFROM | INSERT\s+(OR\s+\w+\s+)?INTO | UPDATE\s+\w+\s+SET
              | DELETE\s+FROM | (CREATE|ALTER|DROP)\s+(TABLE|INDEX|UNIQUE\s+INDEX|VIEW|TRIGGER)
              | PRAGMA\s+\w+ | BEGIN\s+(IMMEDIATE|EXCLUSIVE|TRANSACTION)
            )\b",
        )
        .unwrap()
    });
    lex(source)
        .strings
        .into_iter()
        .filter(|(_, text)| SQL.is_match(text))
        .collect()
}

/// Migration file names that break the scheme `NNNN_name.sql`, numbered 1, 2, 3 … without gaps
/// or repeats.
pub fn migration_problems(names: &[String]) -> Vec<String> {
    static NAME: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"^(\d{4})_[a-z0-9_]+\.sql$").unwrap());
    let mut problems = Vec::new();
    let mut numbers = Vec::new();
    for name in names {
        match NAME.captures(name) {
            Some(captures) => numbers.push((captures[1].parse::<usize>().unwrap(), name)),
            None => problems.push(format!("{name} is not named NNNN_name.sql")),
        }
    }
    numbers.sort();
    for (index, (number, name)) in numbers.iter().enumerate() {
        if *number != index + 1 {
            problems.push(format!("{name} should be number {:04}", index + 1));
        }
    }
    problems
}

/// A workspace crate as `cargo metadata --no-deps` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    pub dependencies: Vec<Dependency>,
    /// Whether the crate has a library target (as opposed to binaries only).
    pub is_library: bool,
    pub manifest_dir: std::path::PathBuf,
}

/// One dependency of a crate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    pub name: String,
    /// `normal`, `dev` or `build`.
    pub kind: String,
    /// Behind a cargo feature.
    pub optional: bool,
}

/// The workspace's crates from `cargo metadata --format-version 1 --no-deps` output.
pub fn packages(metadata: &serde_json::Value) -> Vec<Package> {
    let members: BTreeSet<&str> = metadata["workspace_members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m.as_str())
        .collect();
    metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["id"].as_str().is_some_and(|id| members.contains(id)))
        .map(|p| Package {
            name: p["name"].as_str().unwrap_or_default().to_owned(),
            dependencies: p["dependencies"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|d| Dependency {
                    name: d["name"].as_str().unwrap_or_default().to_owned(),
                    kind: d["kind"].as_str().unwrap_or("normal").to_owned(),
                    optional: d["optional"].as_bool().unwrap_or(false),
                })
                .collect(),
            is_library: p["targets"].as_array().into_iter().flatten().any(|t| {
                t["kind"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|k| k == "lib")
            }),
            manifest_dir: std::path::Path::new(p["manifest_path"].as_str().unwrap_or_default())
                .parent()
                .unwrap_or(std::path::Path::new(""))
                .to_owned(),
        })
        .collect()
}

/// The intended dependency graph.
#[derive(Debug)]
pub struct DependencyRules<'a> {
    /// Each workspace crate and the workspace crates it may depend on (normal and build
    /// dependencies). A crate missing here is a problem: the graph must be written down.
    pub workspace: &'a [(&'a str, &'a [&'a str])],
    /// External crates only some workspace crates may use (normal and build dependencies), with
    /// those crates.
    pub restricted: &'a [(&'a str, &'a [&'a str])],
    /// Workspace crates nothing may depend on, not even as a dev-dependency.
    pub leaves: &'a [&'a str],
    /// `(crate, dependency)` edges that must stay behind a cargo feature.
    pub optional: &'a [(&'a str, &'a str)],
}

/// Every dependency edge that breaks `rules`.
pub fn dependency_problems(packages: &[Package], rules: &DependencyRules<'_>) -> Vec<String> {
    let workspace: BTreeMap<&str, &[&str]> = rules.workspace.iter().copied().collect();
    let restricted: BTreeMap<&str, &[&str]> = rules.restricted.iter().copied().collect();
    let names: BTreeSet<&str> = packages.iter().map(|p| p.name.as_str()).collect();
    let mut problems = Vec::new();
    for package in packages {
        let Some(allowed) = workspace.get(package.name.as_str()) else {
            problems.push(format!(
                "{} is not in the dependency rules: write down what it may depend on",
                package.name
            ));
            continue;
        };
        for Dependency {
            name: dependency,
            kind,
            optional,
        } in &package.dependencies
        {
            let dependency = dependency.as_str();
            let must_be_optional = rules
                .optional
                .contains(&(package.name.as_str(), dependency));
            if must_be_optional && kind != "dev" && !optional {
                problems.push(format!(
                    "{} must depend on {dependency} only behind a feature",
                    package.name
                ));
            }
            if rules.leaves.contains(&dependency) {
                problems.push(format!(
                    "{} depends on {dependency} ({kind}), which nothing may depend on",
                    package.name
                ));
            } else if kind == "dev" {
                continue;
            } else if names.contains(dependency) && !allowed.contains(&dependency) {
                problems.push(format!(
                    "{} may not depend on {dependency} ({kind})",
                    package.name
                ));
            } else if let Some(users) = restricted.get(dependency)
                && !users.contains(&package.name.as_str())
            {
                problems.push(format!(
                    "{} may not depend on {dependency} ({kind}): only {} may",
                    package.name,
                    users.join(", ")
                ));
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexing_keeps_strings_apart_from_code_and_drops_comments() {
        let source = concat!(
            "//! doc println!(\"x\")\n",
            "fn f<'a>(s: &'a str) -> char {\n",
            "    let q = '\"'; let e = '\\''; /* a /* nested */ println!() */\n",
            "    let raw = r#\"raw \"quoted\" text\"#;\n",
            "    let plain = \"esc \\\" aped\"; // trailing println!()\n",
            "    'x'\n",
            "}\n",
        );
        let lexed = lex(source);
        let strings: Vec<_> = lexed
            .strings
            .iter()
            .map(|(l, s)| (*l, s.as_str()))
            .collect();
        assert_eq!(
            strings,
            [(4, r#"raw "quoted" text"#), (5, r#"esc \" aped"#)]
        );
        assert!(!lexed.code.contains("println"), "{}", lexed.code);
        assert!(lexed.code.contains("fn f<'a>(s: &'a str)"));
        assert_eq!(lexed.code.lines().count(), source.lines().count());
    }

    #[test]
    fn a_module_without_its_doc_line_is_found() {
        assert!(has_module_doc("\n//! Why this exists.\nfn f() {}\n"));
        assert!(!has_module_doc(
            "/// An item doc is not a module doc.\nfn f() {}\n"
        ));
        assert!(!has_module_doc("use std::io;\n//! too late\n"));
    }

    #[test]
    fn printing_is_found_in_code_but_not_in_comments_or_strings() {
        let source = "//! Never println!() here.\nfn f() {\n    let s = \"dbg!(x)\";\n    println!(\"{s}\");\n    eprint!(\"e\"); dbg!(s);\n}\n";
        assert_eq!(
            prints(source),
            [
                (4, "println!(".to_owned()),
                (5, "eprint!(".to_owned()),
                (5, "dbg!(".to_owned())
            ]
        );
        assert_eq!(
            writes_stdout("fn f() { std::io::stdout().lock(); }"),
            [(1, "stdout()".to_owned())]
        );
        assert!(writes_stdout("fn f() { let my_stdout_buffer = 1; }").is_empty());
    }

    #[test]
    fn io_is_found() {
        let source = "use std::fs::File;\nfn f() { let t = Timestamp::now(); }\nfn g(now: Timestamp) {}\n// std::env is fine in a comment\n";
        assert_eq!(
            does_io(source),
            [(1, "std::fs".to_owned()), (2, "Timestamp::now".to_owned())]
        );
    }

    #[test]
    fn uncapped_body_reads_are_found() {
        let source = "async fn h(Json(v): Json<Value>) {}\nasync fn g(body: Bytes) {}\nfn d(b: &[u8]) { GzDecoder::new(b).read_to_end(&mut out); }\nasync fn capped(body: Body) { read_capped(body).await; }\n";
        let lines: Vec<usize> = reads_bodies(source).into_iter().map(|(l, _)| l).collect();
        assert_eq!(lines, [1, 2, 3, 3]);
    }

    #[test]
    fn sql_in_string_literals_is_found() {
        let source = concat!(
            "fn f() {\n",
            "    conn.execute(\"INSERT INTO steps (a) VALUES (?1)\", []);\n",
            "    let q = r#\"SELECT id\n         FROM label_jobs\"#;\n",
            "    let s = \"CREATE TABLE t (x)\";\n",
            "    // SELECT * FROM in a comment is fine\n",
            "    let words = \"select the best, then insert into the list\";\n",
            "}\n",
        );
        let found: Vec<usize> = sql_literals(source).into_iter().map(|(l, _)| l).collect();
        assert_eq!(found, [2, 3, 5]);
    }

    #[test]
    fn migration_gaps_repeats_and_bad_names_are_found() {
        let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(migration_problems(&names(&["0001_init.sql", "0002_more.sql"])).is_empty());
        assert_eq!(
            migration_problems(&names(&["0001_init.sql", "0003_skip.sql"])),
            ["0003_skip.sql should be number 0002"]
        );
        assert_eq!(
            migration_problems(&names(&["0001_init.sql", "0001_again.sql"])),
            ["0001_init.sql should be number 0002"]
        );
        assert_eq!(
            migration_problems(&names(&["0001_init.sql", "2_Bad.sql"])),
            ["2_Bad.sql is not named NNNN_name.sql"]
        );
    }

    /// A crate with dependencies given as `(name, kind)`; a kind of `optional` is a normal
    /// dependency behind a feature.
    fn package(name: &str, dependencies: &[(&str, &str)]) -> Package {
        Package {
            name: name.to_owned(),
            dependencies: dependencies
                .iter()
                .map(|(name, kind)| Dependency {
                    name: (*name).to_owned(),
                    kind: kind.replace("optional", "normal"),
                    optional: *kind == "optional",
                })
                .collect(),
            is_library: true,
            manifest_dir: std::path::PathBuf::new(),
        }
    }

    #[test]
    fn forbidden_dependency_edges_are_found() {
        let rules = DependencyRules {
            workspace: &[("model", &[]), ("store", &["model"]), ("cli", &["store"])],
            restricted: &[("rusqlite", &["store"])],
            leaves: &["cli"],
            optional: &[("cli", "store")],
        };
        let good = [
            package("model", &[("serde", "normal")]),
            package("store", &[("model", "normal"), ("rusqlite", "normal")]),
            package("cli", &[("store", "optional"), ("rusqlite", "dev")]),
        ];
        assert!(dependency_problems(&good, &rules).is_empty());
        let bad = [
            package("model", &[("store", "normal")]),
            package("store", &[("cli", "dev")]),
            package("cli", &[("rusqlite", "normal"), ("store", "normal")]),
            package("new", &[]),
        ];
        assert_eq!(
            dependency_problems(&bad, &rules),
            [
                "model may not depend on store (normal)",
                "store depends on cli (dev), which nothing may depend on",
                "cli may not depend on rusqlite (normal): only store may",
                "cli must depend on store only behind a feature",
                "new is not in the dependency rules: write down what it may depend on",
            ]
        );
    }

    #[test]
    fn packages_are_read_from_cargo_metadata() {
        let metadata = serde_json::json!({
            "workspace_members": ["path+file:///w/crates/store#0.1.0"],
            "packages": [{
                "id": "path+file:///w/crates/store#0.1.0",
                "name": "store",
                "manifest_path": "/w/crates/store/Cargo.toml",
                "dependencies": [
                    {"name": "model", "kind": null, "optional": true},
                    {"name": "tempfile", "kind": "dev", "optional": false}
                ],
                "targets": [{"kind": ["lib"]}]
            }]
        });
        assert_eq!(
            packages(&metadata),
            [Package {
                name: "store".to_owned(),
                dependencies: vec![
                    Dependency {
                        name: "model".to_owned(),
                        kind: "normal".to_owned(),
                        optional: true
                    },
                    Dependency {
                        name: "tempfile".to_owned(),
                        kind: "dev".to_owned(),
                        optional: false
                    }
                ],
                is_library: true,
                manifest_dir: "/w/crates/store".into(),
            }]
        );
    }
}
