//! The server on a real socket against clients that misbehave at the connection level: half-sent
//! request heads, trickled bodies, idle kept-alive connections and more connections than the
//! cap. Timeouts are configured short; the tests wait for the server to act, never measure it.

use std::sync::Arc;
use std::time::Duration;

use evalmint_model::{ScopeSet, TenantId};
use evalmint_server::{AppState, ServerConfig};
use evalmint_store::{SqliteOptions, SqliteStore, Store, SystemClock};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// How long a test waits for the server to do something before it fails instead of hanging.
const PATIENCE: Duration = Duration::from_secs(30);

struct Running {
    address: std::net::SocketAddr,
    key: String,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Running {
    async fn start(config: ServerConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap());
        let key = store
            .create_api_key(
                &TenantId::default_tenant(),
                "edge test",
                ScopeSet::parse_list("admin").unwrap(),
            )
            .await
            .unwrap()
            .secret;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let state = AppState::new(store, config);
        let server = tokio::spawn({
            let shutdown = shutdown.clone();
            async move {
                evalmint_server::serve(listener, state, Arc::new(SystemClock), shutdown)
                    .await
                    .unwrap();
            }
        });
        Running {
            address,
            key,
            shutdown,
            server,
            _dir: dir,
        }
    }

    async fn connect(&self) -> TcpStream {
        TcpStream::connect(self.address).await.unwrap()
    }

    /// One request on a fresh connection; the whole response as text.
    async fn request(&self, raw: &str) -> String {
        let mut stream = self.connect().await;
        stream.write_all(raw.as_bytes()).await.unwrap();
        read_until_closed(&mut stream).await
    }

    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(PATIENCE, self.server)
            .await
            .expect("the server drains and stops")
            .unwrap();
    }
}

fn config() -> ServerConfig {
    ServerConfig {
        header_read_timeout: Duration::from_millis(300),
        body_read_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(300),
        ..ServerConfig::default()
    }
}

const HEALTHZ: &str = "GET /healthz HTTP/1.1\r\nHost: evalmint\r\nConnection: close\r\n\r\n";

/// Reads until the server closes the connection; fails the test if it never does.
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let outcome = tokio::time::timeout(PATIENCE, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(outcome.is_ok(), "the server never closed the connection");
    String::from_utf8_lossy(&received).into_owned()
}

#[tokio::test]
async fn a_half_sent_request_head_is_closed_and_the_server_keeps_answering() {
    let server = Running::start(config()).await;
    let mut slow = server.connect().await;
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: evalmint\r\nX-Slow: ")
        .await
        .unwrap();
    let answer = read_until_closed(&mut slow).await;
    assert!(
        !answer.contains("200 OK"),
        "a request whose head never completed is not answered: {answer}"
    );

    // A connection that sends nothing at all is closed the same way.
    let mut silent = server.connect().await;
    assert_eq!(read_until_closed(&mut silent).await, "");

    let healthy = server.request(HEALTHZ).await;
    assert!(healthy.starts_with("HTTP/1.1 200"), "{healthy}");
    server.stop().await;
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_its_response() {
    let server = Running::start(config()).await;
    let mut stream = server.connect().await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: evalmint\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(
        answer.matches("HTTP/1.1").count(),
        1,
        "one response, then the idle connection is closed"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_trickled_body_gets_408_as_json() {
    let server = Running::start(config()).await;
    let mut stream = server.connect().await;
    let head = format!(
        "POST /api/v1/feedback HTTP/1.1\r\nHost: evalmint\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"verdict\":",
        server.key
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let answer = read_until_closed(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""code":"request_timeout""#), "{answer}");
    server.stop().await;
}

#[tokio::test]
async fn beyond_the_cap_the_oldest_idle_connection_makes_room() {
    let server = Running::start(ServerConfig {
        header_read_timeout: Duration::from_secs(600),
        max_connections: 3,
        ..ServerConfig::default()
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(server.connect().await);
    }
    // Give the server the chance to accept all three before the newcomer arrives.
    for stream in &mut idle {
        stream.write_all(b"GET /heal").await.unwrap();
    }
    let answer = server.request(HEALTHZ).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(
        read_until_closed(&mut idle[0]).await,
        "",
        "the oldest idle connection was closed without an answer"
    );
    server.stop().await;
}
