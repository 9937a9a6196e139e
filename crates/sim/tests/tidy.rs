//! House conventions for this crate, checked like any behaviour: every module says why it exists,
//! and nothing prints to standard output outside the CLI output module.

use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_module_starts_with_a_doc_comment() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["src", "tests", "examples"] {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(files.len() > 10);
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.starts_with("//!"),
            "{} does not start with a //! line",
            file.display()
        );
    }
}

#[test]
fn only_the_output_module_prints() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let printing = ["println!(", "print!(", "eprintln!(", "dbg!("]
            .iter()
            .any(|m| text.contains(m));
        let stdout = text.contains("std::io::stdout()");
        let is_output = file.ends_with("output.rs");
        assert!(!printing, "{} prints with a macro", file.display());
        assert!(!stdout || is_output, "{} writes to stdout", file.display());
    }
}
