//! `evalmint feedback erase --user ID | --id FEEDBACK_ID` against a real server: the user's (or
//! the one) feedback is gone, other feedback stays, the answer says what was erased, and a key
//! without the admin scope is refused.

use std::process::{Command, Output};

mod support;
use support::{KEY, start};

fn evalmint(args: &[&str], key: &str, url: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_evalmint"))
        .args(args)
        .args(["--server", url])
        .env("EVALMINT_API_KEY", key)
        .env("EVALMINT_LOG", "warn")
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_s_feedback_is_erased_from_the_command_line() {
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path()).await;
    let client = reqwest::Client::new();
    let mut ids = Vec::new();
    for (n, user) in ["u-5", "u-5", "u-6"].into_iter().enumerate() {
        let body = serde_json::json!({
            "investigation_id": format!("{:032x}", 0xfeed_u128 + n as u128),
            "verdict": "down",
            "correction": "the queue consumer stalled",
            "user_id": user,
        });
        let created: serde_json::Value = client
            .post(format!("{}/api/v1/feedback", server.url))
            .bearer_auth(KEY)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ids.push(created["id"].as_str().unwrap().to_owned());
    }

    // The server owns the data directory: keys are made through its API.
    let keys = evalmint(&["keys", "create", "--scope", "review"], KEY, &server.url);
    assert!(
        keys.status.success(),
        "{}",
        String::from_utf8_lossy(&keys.stderr)
    );
    let reviewer = String::from_utf8(keys.stdout).unwrap().trim().to_owned();
    let refused = evalmint(
        &["feedback", "erase", "--user", "u-5"],
        &reviewer,
        &server.url,
    );
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("403"), "{message}");

    let erased = evalmint(
        &["feedback", "erase", "--user", "u-5", "--json"],
        KEY,
        &server.url,
    );
    assert!(
        erased.status.success(),
        "{}",
        String::from_utf8_lossy(&erased.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&erased.stdout).unwrap();
    assert_eq!(answer["feedback_erased"], 2);
    for (id, expected) in ids.iter().zip([404, 404, 200]) {
        let status = client
            .get(format!("{}/api/v1/feedback/{id}", server.url))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status.as_u16(), expected, "{id}");
    }

    let again = evalmint(&["feedback", "erase", "--user", "u-5"], KEY, &server.url);
    assert!(again.status.success());
    let summary = String::from_utf8(again.stdout).unwrap();
    assert!(summary.starts_with("erased 0 feedback"), "{summary}");

    // One feedback by its id.
    let bad = evalmint(&["feedback", "erase", "--id", "../keys"], KEY, &server.url);
    assert!(!bad.status.success());
    let message = String::from_utf8_lossy(&bad.stderr);
    assert!(message.contains("--id must be a feedback id"), "{message}");
    let one = evalmint(
        &["feedback", "erase", "--id", &ids[2], "--json"],
        KEY,
        &server.url,
    );
    assert!(
        one.status.success(),
        "{}",
        String::from_utf8_lossy(&one.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&one.stdout).unwrap();
    assert_eq!(
        (
            &answer["subject"],
            &answer["feedback_id"],
            &answer["feedback_erased"]
        ),
        (
            &serde_json::json!("feedback"),
            &serde_json::json!(ids[2]),
            &serde_json::json!(1)
        )
    );
    let status = client
        .get(format!("{}/api/v1/feedback/{}", server.url, ids[2]))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 404);
    let missing = evalmint(&["feedback", "erase", "--id", &ids[2]], KEY, &server.url);
    assert!(!missing.status.success(), "already erased: 404");
}
