//! Conventions that matter, checked like any other behaviour: every module says why it exists,
//! and library crates never print to the terminal.

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn sources() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for krate in std::fs::read_dir(workspace().join("crates")).unwrap() {
        let krate = krate.unwrap().path();
        for sub in ["src", "tests"] {
            if krate.join(sub).is_dir() {
                rust_files(&krate.join(sub), &mut files);
            }
        }
    }
    files
}

#[test]
fn every_module_opens_with_a_doc_comment() {
    let missing: Vec<_> = sources()
        .into_iter()
        .filter(|path| {
            let text = std::fs::read_to_string(path).unwrap();
            !text.trim_start().starts_with("//!")
        })
        .collect();
    assert!(
        missing.is_empty(),
        "modules without a `//!` line: {missing:#?}"
    );
}

#[test]
fn library_crates_do_not_print() {
    let printing_allowed = |path: &Path| {
        let text = path.to_string_lossy();
        text.contains("/crates/cli/")
            || text.contains("/tests/")
            || text.contains("/crates/sim/src/cli")
    };
    let offenders: Vec<_> = sources()
        .into_iter()
        .filter(|path| !printing_allowed(path))
        .filter(|path| {
            let text = std::fs::read_to_string(path).unwrap();
            text.contains("println!(") || text.contains("eprintln!(") || text.contains("dbg!(")
        })
        .collect();
    assert!(
        offenders.is_empty(),
        "print in library code: {offenders:#?}"
    );
}
