//! Many processes on one Postgres database: two `evalmint serve --no-pipeline` and three
//! `evalmint worker`, feedback sent through both servers while workers, and once a server, are
//! killed with SIGKILL and restarted. Every acknowledged feedback must end in exactly one label
//! state, no label job may run twice to completion, no capture may be lost, and a feedback
//! retried through the other server must be recognised as the same one.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod support;
use support::{KEY, free_port};

/// A fresh database on the test server, dropped at the end; `None` when no server answers.
struct Database {
    admin_url: String,
    name: String,
}

impl Database {
    fn create() -> Option<Database> {
        let admin_url = std::env::var("EVALMINT_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let name = format!("evalmint_scaleout_{}", std::process::id());
        let created = Command::new("createdb")
            .arg(format!("--maintenance-db={admin_url}"))
            .arg(&name)
            .stderr(Stdio::piped())
            .output();
        match created {
            Ok(out) if out.status.success() => Some(Database { admin_url, name }),
            Ok(out) => {
                let why = String::from_utf8_lossy(&out.stderr).into_owned();
                evalmint_testkit::skip(&format!("createdb failed: {why}"));
                None
            }
            Err(e) => {
                evalmint_testkit::skip(&format!(
                    "createdb (the PostgreSQL client) is not installed: {e}"
                ));
                None
            }
        }
    }

    /// The admin URL with its database name replaced by this database's.
    fn url(&self) -> String {
        let (base, query) = match self.admin_url.split_once('?') {
            Some((base, query)) => (base, format!("?{query}")),
            None => (self.admin_url.as_str(), String::new()),
        };
        let server = match base.rsplit_once('/') {
            Some((server, _)) if server.ends_with('/') => base,
            Some((server, _)) => server,
            None => base,
        };
        format!("{}/{}{query}", server.trim_end_matches('/'), self.name)
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = Command::new("dropdb")
            .arg(format!("--maintenance-db={}", self.admin_url))
            .args(["--force", &self.name])
            .status();
    }
}

/// A child `evalmint` process, killed when dropped.
struct Process {
    child: Child,
    args: Vec<String>,
}

impl Process {
    fn spawn(args: &[String]) -> Process {
        let child = Command::new(env!("CARGO_BIN_EXE_evalmint"))
            .args(args)
            .env("EVALMINT_ADMIN_KEY", KEY)
            .env("EVALMINT_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        Process {
            child,
            args: args.to_vec(),
        }
    }

    /// SIGKILL, then the same command again.
    fn kill_and_restart(&mut self) {
        self.kill();
        *self = Process::spawn(&self.args.clone());
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn wait_ready(client: &reqwest::Client, url: &str) {
    for _ in 0..400 {
        if let Ok(response) = client.get(format!("{url}/readyz")).send().await
            && response.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{url} did not become ready");
}

fn trace_hex(i: usize) -> String {
    format!("{:032x}", 0x5ca1_e000_0000_0000_u128 + i as u128)
}

fn investigation(i: usize) -> serde_json::Value {
    serde_json::json!({
        "id": trace_hex(i),
        "trigger": {"kind": "alert", "text": "checkout p99 latency above 2s"},
        "conclusion": "Root cause: checkout connection pool exhaustion after the 14:02 deploy",
        "started_at": "2026-03-01T12:00:00Z",
        "steps": [{
            "kind": "tool", "name": "query_metrics", "started_at": "2026-03-01T12:00:01Z",
            "tool_call": {"tool_name": "query_metrics", "source": "metrics",
                          "query": format!("rate(http_requests_total{{service=\"checkout\",shard=\"{}\"}}[5m])", i % 7),
                          "window": {"start": "2026-03-01T11:30:00Z", "end": "2026-03-01T12:00:00Z"},
                          "entities": ["checkout"],
                          "result": "checkout error rate 40%"}
        }]
    })
}

fn feedback(i: usize) -> serde_json::Value {
    let verdicts = ["down", "not_quite", "up"];
    serde_json::json!({
        "investigation_id": trace_hex(i),
        "verdict": verdicts[i % 3],
        "correction": "it was payments-db connection pool, not checkout",
        "idempotency_key": format!("scaleout-{i}"),
    })
}

/// The pipeline configuration every worker reads: short leases, so a killed worker's claims
/// come back within the test, and one live metrics source to capture from.
fn write_config(dir: &Path, telemetry_port: u16) -> PathBuf {
    let path = dir.join("evalmint.toml");
    std::fs::write(
        &path,
        format!(
            "[[sources]]\nname = \"metrics\"\nsignal = \"metrics\"\nconnector = \"prometheus\"\n\
             endpoint = \"http://127.0.0.1:{telemetry_port}\"\nttl = \"3650d\"\n\n\
             [pipeline]\njob_lease = \"3s\"\ncapture_lease = \"3s\"\n"
        ),
    )
    .unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_and_three_workers_survive_sigkill_on_one_database() {
    let Some(database) = Database::create() else {
        return;
    };
    let url = database.url();
    let dir = tempfile::tempdir().unwrap();
    let blobs = format!("file://{}", dir.path().join("blobs").display());
    let client = reqwest::Client::new();

    let telemetry_port = free_port();
    let _telemetry = Process::spawn(&[
        "sim".into(),
        "telemetry".into(),
        "--listen".into(),
        format!("127.0.0.1:{telemetry_port}"),
    ]);
    let config = write_config(dir.path(), telemetry_port);

    let mut servers: Vec<(Process, String)> = (0..2)
        .map(|n| {
            let port = free_port();
            let data = dir.path().join(format!("server-{n}"));
            let process = Process::spawn(&[
                "serve".into(),
                "--no-pipeline".into(),
                "--database".into(),
                url.clone(),
                "--blobs".into(),
                blobs.clone(),
                "--data".into(),
                data.display().to_string(),
                "--listen".into(),
                format!("127.0.0.1:{port}"),
            ]);
            (process, format!("http://127.0.0.1:{port}"))
        })
        .collect();
    for (_, server_url) in &servers {
        wait_ready(&client, server_url).await;
    }
    let mut workers: Vec<Process> = (0..3)
        .map(|n| {
            Process::spawn(&[
                "worker".into(),
                "--database".into(),
                url.clone(),
                "--blobs".into(),
                blobs.clone(),
                "--data".into(),
                dir.path().join(format!("worker-{n}")).display().to_string(),
                "--config".into(),
                config.display().to_string(),
            ])
        })
        .collect();

    // Load through both servers, while a chaos loop kills workers (and once a server).
    let investigations = 240;
    let mut acknowledged: Vec<(usize, String)> = Vec::new();
    let mut replays_checked = 0;
    let started = Instant::now();
    let mut next_kill = Instant::now() + Duration::from_millis(400);
    let mut kills = 0;
    let mut server_killed = false;
    let mut rng = 0x2545_f491_u64;
    for i in 0..investigations {
        if Instant::now() >= next_kill {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            workers[(rng % 3) as usize].kill_and_restart();
            kills += 1;
            next_kill = Instant::now() + Duration::from_millis(300 + rng % 500);
        }
        if i == investigations / 2 && !server_killed {
            servers[1].0.kill_and_restart();
            server_killed = true;
        }
        let (through, other) = (i % 2, (i + 1) % 2);
        let through_url = servers[through].1.clone();
        let sent = client
            .post(format!("{through_url}/api/v1/investigations"))
            .bearer_auth(KEY)
            .json(&investigation(i))
            .send()
            .await;
        if !matches!(&sent, Ok(r) if r.status() == 201) {
            continue; // a server that was just killed acknowledges nothing
        }
        let Ok(response) = client
            .post(format!("{through_url}/api/v1/feedback"))
            .bearer_auth(KEY)
            .json(&feedback(i))
            .send()
            .await
        else {
            continue;
        };
        if response.status() != 201 {
            continue;
        }
        let body: serde_json::Value = response.json().await.unwrap();
        let id = body["id"].as_str().unwrap().to_owned();
        // The same feedback retried through the other server is the same feedback.
        let other_url = servers[other].1.clone();
        if let Ok(retry) = client
            .post(format!("{other_url}/api/v1/feedback"))
            .bearer_auth(KEY)
            .json(&feedback(i))
            .send()
            .await
            && retry.status().is_success()
        {
            assert_eq!(
                retry.status(),
                200,
                "a retry is a replay, not a new feedback"
            );
            let replayed: serde_json::Value = retry.json().await.unwrap();
            assert_eq!(replayed["id"], id.as_str());
            replays_checked += 1;
        }
        acknowledged.push((i, id));
    }
    assert!(
        kills >= 3,
        "the chaos loop must have killed workers ({kills})"
    );
    assert!(
        acknowledged.len() > investigations / 2,
        "most feedback must be acknowledged ({} of {investigations})",
        acknowledged.len()
    );
    assert!(replays_checked > investigations / 4);
    wait_ready(&client, &servers[1].1).await;

    // Every acknowledged feedback reaches exactly one terminal state.
    let reader = servers[0].1.clone();
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut candidates = Vec::new();
    for (i, id) in &acknowledged {
        let state = loop {
            let feedback: serde_json::Value = client
                .get(format!("{reader}/api/v1/feedback/{id}"))
                .bearer_auth(KEY)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let state = feedback["label"].clone();
            if state["state"] != "pending" {
                break state;
            }
            assert!(
                Instant::now() < deadline,
                "feedback {id} (investigation {i}) is still pending after the workers settled"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        match state["state"].as_str() {
            Some("candidate") => candidates.push(state["detail"].as_str().unwrap().to_owned()),
            Some("not_candidate") => {}
            other => panic!("feedback {id} ended in {other:?}"),
        }
    }
    assert!(
        !candidates.is_empty(),
        "some feedback must have become candidates"
    );

    // One feedback per investigation means one completed job each: a job finished twice would
    // have written a second version of its candidate.
    for candidate in &candidates {
        assert!(
            candidate.ends_with("-v1"),
            "{candidate}: a label job ran to completion more than once"
        );
        let label: serde_json::Value = client
            .get(format!("{reader}/api/v1/labels/{candidate}"))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let snapshot = label["snapshot"].as_array().unwrap_or_else(|| {
            panic!("{candidate} has no snapshot: {label}");
        });
        for query in snapshot {
            assert_ne!(
                query["status"], "pending",
                "{candidate}: a capture was lost: {query}"
            );
        }
    }
    eprintln!(
        "scale-out: {} acknowledged, {} candidates, {replays_checked} cross-server replays, \
         {kills} worker kills, 1 server kill, {:.1} s",
        acknowledged.len(),
        candidates.len(),
        started.elapsed().as_secs_f64()
    );
    drop(workers);
    drop(servers);
}
