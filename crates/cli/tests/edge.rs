//! A real `evalmint serve` under a tiny descriptor limit (`ulimit -n`), flooded with idle
//! connections until accepting fails: it must neither exit nor stop answering, and a weak
//! operator key must keep it from starting at all.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

const KEY: &str = "em_edge_test_admin_key_0123456789";

struct Server {
    child: Child,
    url: String,
    _data: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(descriptor_limit: u32, args: &[&str], key: &str) -> (Child, u16, tempfile::TempDir) {
    let data = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n {descriptor_limit} && exec \"$0\" \"$@\""
        ))
        .arg(env!("CARGO_BIN_EXE_evalmint"))
        .args([
            "serve",
            "--no-pipeline",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data",
        ])
        .arg(data.path())
        .args(args)
        .env("EVALMINT_ADMIN_KEY", key)
        .env("EVALMINT_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (child, port, data)
}

/// GET /healthz on a new connection, retried for a while: "still answers", not "answers fast".
async fn healthz_answers(url: &str) -> bool {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    for _ in 0..60 {
        if let Ok(response) = client.get(format!("{url}/healthz")).send().await
            && response.status().is_success()
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_keeps_answering_after_running_out_of_descriptors() {
    // A connection cap far above the descriptor limit, so that accepting runs out of
    // descriptors instead of reaching the cap.
    let (child, port, data) = spawn(
        64,
        &["--max-connections", "10000", "--header-read-timeout", "10m"],
        KEY,
    );
    let mut server = Server {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _data: data,
    };
    assert!(
        healthz_answers(&server.url).await,
        "the server did not start"
    );

    let mut idle = Vec::new();
    for _ in 0..200 {
        if let Ok(stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            idle.push(stream);
        }
    }
    assert!(
        healthz_answers(&server.url).await,
        "no answer once the descriptors were exhausted"
    );
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the server exited"
    );
    drop(idle);
    assert!(healthz_answers(&server.url).await);
}

#[tokio::test]
async fn a_weak_admin_key_stops_the_server_with_the_reason() {
    let (child, _, _data) = spawn(1024, &[], "x");
    let output = child.wait_with_output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("at least 24"), "{stderr}");
}
