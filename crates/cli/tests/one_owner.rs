//! One process owns a data directory: while `evalmint serve` runs, a second `serve`, a `worker`
//! or `keys` on the same directory exits at once with a message naming the owner, and the first
//! keeps serving; keys are managed through its API instead, where a revocation takes effect at
//! once. Once the owner is gone (even killed with SIGKILL), the directory can be opened again.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output};

const ADMIN_KEY: &str = "em_one_owner_admin_key_0123456789";

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
            .env("EVALMINT_ADMIN_KEY", ADMIN_KEY)
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

fn assert_started(args: &[&str], data: &Path, says: &str) -> (Running, String) {
    let (running, line) = start(args, data);
    assert!(line.starts_with(says), "{args:?}: {line}");
    (running, line)
}

fn assert_refused(args: &[&str], data: &Path, owner: &str) {
    let (mut running, line) = start(args, data);
    assert!(
        line.contains(&format!("is in use by {owner}")),
        "{args:?} started anyway or did not name the owner: {line}"
    );
    assert!(line.contains("one process owns a data directory"), "{line}");
    assert!(!running.0.wait().unwrap().success(), "{args:?}");
}

fn keys(args: &[&str], server: &str, key: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_evalmint"))
        .arg("keys")
        .args(args)
        .args(["--server", server, "--api-key", key])
        .env("EVALMINT_LOG", "warn")
        .output()
        .unwrap()
}

async fn status(server: &str, key: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{server}/api/v1/keys"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_on_one_data_directory_is_refused_while_the_first_keeps_serving() {
    let data = tempfile::tempdir().unwrap();
    let listen = ["--listen", "127.0.0.1:0"];
    let (first, line) = assert_started(
        &["serve", listen[0], listen[1]],
        data.path(),
        "evalmint listening on ",
    );
    let server = line
        .trim_start_matches("evalmint listening on ")
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let owner = format!("pid {} (evalmint serve)", first.0.id());

    assert_refused(&["serve", listen[0], listen[1]], data.path(), &owner);
    assert_refused(
        &["serve", "--no-pipeline", listen[0], listen[1]],
        data.path(),
        &owner,
    );
    assert_refused(&["worker"], data.path(), &owner);
    assert_refused(&["keys", "list"], data.path(), &owner);
    assert_eq!(
        status(&server, ADMIN_KEY).await,
        200,
        "the first keeps serving"
    );

    // Keys go through the owner's API; a revoked key stops working at once.
    let created = keys(
        &["create", "--scope", "review", "--name", "ci"],
        &server,
        ADMIN_KEY,
    );
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let secret = String::from_utf8(created.stdout).unwrap().trim().to_owned();
    let listed = keys(&["list"], &server, ADMIN_KEY);
    let table = String::from_utf8(listed.stdout).unwrap();
    let id = table
        .lines()
        .find(|line| line.contains(" ci "))
        .and_then(|line| line.split_whitespace().next())
        .unwrap_or_else(|| panic!("the new key is not listed: {table}"))
        .to_owned();
    assert_eq!(
        status(&server, &secret).await,
        403,
        "a review key is known but not admin"
    );
    let revoked = keys(&["revoke", &id], &server, ADMIN_KEY);
    assert!(
        revoked.status.success(),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    assert_eq!(
        status(&server, &secret).await,
        401,
        "revoked through the API: gone at once"
    );

    drop(first);
    assert_started(&["worker"], data.path(), "evalmint worker running");
}
