//! One label pipeline per data directory: the pipeline takes every lease of the embedded store
//! for a dead worker's when it starts, so a second `worker` or `serve` on the same directory must
//! refuse to start while the first runs, and start once it is gone (even killed with SIGKILL).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command};

/// A running `evalmint` process, killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `evalmint ARGS --data DATA` and returns it with the first line it writes to stdout or
/// stderr: a started command says so, a refused one says why and exits.
fn start(args: &[&str], data: &Path) -> (Running, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    let child = {
        let mut command = Command::new(env!("CARGO_BIN_EXE_evalmint"));
        command
            .args(args)
            .arg("--data")
            .arg(data)
            .env("EVALMINT_ADMIN_KEY", "em_one_pipeline_admin_key_0123456789")
            .env("EVALMINT_LOG", "warn")
            .stdout(writer.try_clone().unwrap())
            .stderr(writer);
        command.spawn().unwrap()
    };
    let line = BufReader::new(reader)
        .lines()
        .next()
        .expect("the command wrote nothing")
        .unwrap();
    (Running(child), line)
}

fn assert_started(args: &[&str], data: &Path, says: &str) -> Running {
    let (running, line) = start(args, data);
    assert!(line.starts_with(says), "{args:?}: {line}");
    running
}

fn assert_refused(args: &[&str], data: &Path) {
    let (mut running, line) = start(args, data);
    assert!(
        line.contains("another evalmint process runs the label pipeline"),
        "{args:?} started anyway: {line}"
    );
    assert!(!running.0.wait().unwrap().success());
}

#[test]
fn a_second_pipeline_on_one_data_directory_refuses_to_start() {
    let data = tempfile::tempdir().unwrap();
    let listen = ["--listen", "127.0.0.1:0"];
    let first = assert_started(&["worker"], data.path(), "evalmint worker running");

    assert_refused(&["worker"], data.path());
    assert_refused(&["serve", listen[0], listen[1]], data.path());
    // The API alone runs beside the worker: that is the supported split.
    let api = assert_started(
        &["serve", "--no-pipeline", listen[0], listen[1]],
        data.path(),
        "evalmint listening",
    );
    drop(api);

    drop(first);
    assert_started(&["worker"], data.path(), "evalmint worker running");
}
