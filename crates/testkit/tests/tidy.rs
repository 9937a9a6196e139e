//! The workspace's conventions, checked like any other behaviour over every crate: the intended
//! dependency graph (written down in ARCHITECTURE.md), SQL only in `store`, HTTP crates only where
//! they belong, `model` free of IO, request bodies read only through the server's capped reader,
//! no printing from library crates, a `//!` line on every module, and migrations numbered without
//! gaps. The checks themselves are tested on bad samples in `src/tidy.rs`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::LazyLock;

use evalmint_testkit::tidy::{self, DependencyRules, Package};

/// What each workspace crate may depend on (normal and build dependencies; dev-dependencies are
/// free except on the leaves). Keep in step with "Dependency graph" in ARCHITECTURE.md.
const RULES: DependencyRules<'static> = DependencyRules {
    workspace: &[
        ("evalmint-model", &[]),
        ("evalmint-otlp", &["evalmint-model"]),
        ("evalmint-store", &["evalmint-model"]),
        ("evalmint-pipeline", &["evalmint-model", "evalmint-store"]),
        (
            "evalmint-eval",
            &["evalmint-model", "evalmint-pipeline", "evalmint-store"],
        ),
        (
            "evalmint-server",
            &[
                "evalmint-eval",
                "evalmint-model",
                "evalmint-otlp",
                "evalmint-store",
            ],
        ),
        ("evalmint-sim", &["evalmint-model"]),
        ("evalmint-testkit", &[]),
        (
            "evalmint-cli",
            &[
                "evalmint-eval",
                "evalmint-model",
                "evalmint-otlp",
                "evalmint-pipeline",
                "evalmint-server",
                "evalmint-sim",
                "evalmint-store",
            ],
        ),
    ],
    restricted: &[
        // Serving HTTP: the API, the simulator's telemetry API, and the benchmarks, which serve
        // the API's router in-process.
        ("axum", &["evalmint-server", "evalmint-sim", "evalmint-cli"]),
        // Calling HTTP: capture sources and the LLM drafter, the simulator's agents and users,
        // candidate agents served over HTTP (`eval`), and the CLI's client commands and
        // benchmarks.
        (
            "reqwest",
            &[
                "evalmint-pipeline",
                "evalmint-eval",
                "evalmint-sim",
                "evalmint-cli",
            ],
        ),
        ("rusqlite", &["evalmint-store"]),
        // Databases are the store's business only.
        ("tokio-postgres", &["evalmint-store"]),
        ("deadpool-postgres", &["evalmint-store"]),
    ],
    leaves: &["evalmint-cli"],
    // The shipped binary leaves the simulator and the benchmarks out (the `sim` feature of
    // `cli`); only the benchmarks decode OTLP in the CLI.
    optional: &[
        ("evalmint-cli", "evalmint-sim"),
        ("evalmint-cli", "evalmint-otlp"),
    ],
};

/// Files that may print from a library crate, and why.
const MAY_PRINT: &[(&str, &str)] = &[(
    "crates/testkit/src/lib.rs",
    "says in the test log why a test skipped",
)];

/// Files of library crates that may write to standard output directly, and why.
const MAY_WRITE_STDOUT: &[(&str, &str)] = &[(
    "crates/sim/src/output.rs",
    "the simulator command's one output module",
)];

/// SQL-looking literals outside `store`: `(file, start of the literal, why)`.
const SQL_ALLOWED: &[(&str, &str, &str)] = &[
    (
        "crates/sim/src/faults.rs",
        "slow query:",
        "a simulated database log line",
    ),
    (
        "crates/testkit/src/tidy.rs",
        "",
        "the SQL check's own bad samples",
    ),
];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

static PACKAGES: LazyLock<Vec<Package>> = LazyLock::new(|| {
    let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(workspace_root())
        .output()
        .expect("running cargo metadata");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    tidy::packages(&serde_json::from_slice(&output.stdout).unwrap())
});

/// A Rust file of the workspace, with its path relative to the root.
struct Source {
    path: String,
    text: String,
    /// Under a library crate's `src/`, apart from its binaries.
    in_library: bool,
}

static SOURCES: LazyLock<Vec<Source>> = LazyLock::new(|| {
    let root = workspace_root();
    let mut sources = Vec::new();
    let mut add = |dir: &Path, in_library: bool| {
        for path in rust_files(dir) {
            let relative = path.strip_prefix(&root).unwrap().to_string_lossy();
            let binary = relative.ends_with("/src/main.rs") || relative.contains("/src/bin/");
            sources.push(Source {
                path: relative.replace('\\', "/"),
                text: std::fs::read_to_string(&path).unwrap(),
                in_library: in_library && !binary,
            });
        }
    };
    for package in PACKAGES.iter() {
        for sub in ["src", "tests", "examples", "benches"] {
            add(
                &package.manifest_dir.join(sub),
                package.is_library && sub == "src",
            );
        }
    }
    add(&root.join("fuzz/fuzz_targets"), false);
    assert!(
        sources.len() > 50,
        "found only {} Rust files: is the workspace root right?",
        sources.len()
    );
    sources
});

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

#[test]
fn dependencies_follow_the_intended_graph() {
    let problems = tidy::dependency_problems(&PACKAGES, &RULES);
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn every_module_opens_with_a_doc_comment() {
    let missing: Vec<&str> = SOURCES
        .iter()
        .filter(|s| !tidy::has_module_doc(&s.text))
        .map(|s| s.path.as_str())
        .collect();
    assert!(
        missing.is_empty(),
        "modules without a `//!` line: {missing:#?}"
    );
}

#[test]
fn library_crates_do_not_print() {
    let mut offenders = Vec::new();
    for source in SOURCES.iter().filter(|s| s.in_library) {
        if !MAY_PRINT.iter().any(|(path, _)| *path == source.path) {
            for (line, what) in tidy::prints(&source.text) {
                offenders.push(format!("{}:{line}: {what}", source.path));
            }
        }
        if !MAY_WRITE_STDOUT
            .iter()
            .any(|(path, _)| *path == source.path)
        {
            for (line, what) in tidy::writes_stdout(&source.text) {
                offenders.push(format!("{}:{line}: {what}", source.path));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "library code prints (return the text, or log with tracing): {offenders:#?}"
    );
}

#[test]
fn only_store_knows_sql() {
    let mut offenders = Vec::new();
    for source in SOURCES
        .iter()
        .filter(|s| !s.path.starts_with("crates/store/"))
    {
        for (line, literal) in tidy::sql_literals(&source.text) {
            let allowed = SQL_ALLOWED
                .iter()
                .any(|(path, start, _)| *path == source.path && literal.starts_with(start));
            if !allowed {
                offenders.push(format!("{}:{line}: {literal:?}", source.path));
            }
        }
    }
    assert!(offenders.is_empty(), "SQL outside store: {offenders:#?}");
}

#[test]
fn migrations_are_numbered_contiguously() {
    // SQLite's migrations, and Postgres's in `postgres/`, one per SQLite number.
    for dir in [
        "crates/store/migrations",
        "crates/store/migrations/postgres",
    ] {
        let dir = workspace_root().join(dir);
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.file_type().unwrap().is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(!names.is_empty(), "no migrations in {}", dir.display());
        let problems = tidy::migration_problems(&names);
        assert!(problems.is_empty(), "{}: {problems:#?}", dir.display());
    }
}

/// Findings of `check` in the files under `dir`, apart from `except`.
fn findings(dir: &str, except: &[&str], check: fn(&str) -> Vec<(usize, String)>) -> Vec<String> {
    SOURCES
        .iter()
        .filter(|s| s.path.starts_with(dir) && !except.contains(&s.path.as_str()))
        .flat_map(|s| {
            check(&s.text)
                .into_iter()
                .map(move |(line, what)| format!("{}:{line}: {what}", s.path))
        })
        .collect()
}

#[test]
fn model_does_no_io() {
    let offenders = findings("crates/model/src/", &[], tidy::does_io);
    assert!(
        offenders.is_empty(),
        "IO or a clock read in model (pass values in instead): {offenders:#?}"
    );
}

#[test]
fn request_bodies_are_read_only_through_the_capped_reader() {
    let offenders = findings(
        "crates/server/src/",
        &["crates/server/src/body.rs"],
        tidy::reads_bodies,
    );
    assert!(
        offenders.is_empty(),
        "a request body read outside body::read_capped: {offenders:#?}"
    );
}
