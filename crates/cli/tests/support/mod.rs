//! A real `evalmint serve` child process for end-to-end tests of the binary.

#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const KEY: &str = "em_crash_test_admin_key_0123456789";

pub struct Server {
    pub child: Child,
    pub url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub async fn start(data: &std::path::Path) -> Server {
    start_with(data, None).await
}

/// Starts `evalmint serve`, optionally with a pipeline configuration file.
pub async fn start_with(data: &std::path::Path, config: Option<&std::path::Path>) -> Server {
    let config = config.map(|c| ("EVALMINT_CONFIG".to_owned(), c.display().to_string()));
    start_with_env(data, config.into_iter().collect()).await
}

/// Starts `evalmint serve` with these environment variables on top of the test's.
pub async fn start_with_env(data: &std::path::Path, env: Vec<(String, String)>) -> Server {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_evalmint"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data"])
        .arg(data)
        .env("EVALMINT_ADMIN_KEY", KEY)
        .env("EVALMINT_LOG", "warn")
        .envs(env)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if client
            .get(format!("{}/healthz", server.url))
            .send()
            .await
            .is_ok()
        {
            return server;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server did not start");
}
