//! A real S3-compatible server for the blob store's tests: `moto_server` (PyPI `moto[server]`,
//! installed by `.ci/run`) on a free local port, killed when the guard is dropped.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `moto_server`.
#[derive(Debug)]
pub struct MotoServer {
    child: Child,
    port: u16,
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl MotoServer {
    /// Starts `moto_server` and waits until it answers; `None` when it is not installed (the
    /// caller then skips with [`crate::skip`]). Panics when it starts but never answers.
    pub fn start() -> Option<MotoServer> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free local port")
            .port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let mut server = MotoServer { child, port };
        let deadline = Instant::now() + Duration::from_secs(60);
        while request(port, "GET", "/").is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("moto_server exited at start ({status})");
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not answer on port {port} within a minute"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // The port was answered by this child, not by a process that took it meanwhile.
        assert!(
            matches!(server.child.try_wait(), Ok(None)),
            "moto_server exited"
        );
        Some(server)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates a bucket with a plain unsigned `PUT /bucket`, which moto accepts (the blob store
    /// cannot create buckets).
    pub fn create_bucket(&self, bucket: &str) {
        let status = request(self.port, "PUT", &format!("/{bucket}"))
            .unwrap_or_else(|e| panic!("creating bucket {bucket}: {e}"));
        assert_eq!(status, 200, "creating bucket {bucket}");
    }

    /// The `AWS_*` variables that point an S3 client at this server.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_ENDPOINT_URL", self.endpoint()),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
    }
}

/// Sends a body-less HTTP/1.1 request and returns the response's status code.
fn request(port: u16, method: &str, path: &str) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\n\
         Connection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .filter(|_| response.starts_with("HTTP/1."))
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {response:.80}")))
}
