//! Serving TCP connections within limits, so that slow or idle clients cannot exhaust the server:
//! a request head must arrive within the header timeout, a kept-alive connection may stay idle
//! only for the idle timeout, live connections are capped (the oldest idle one makes room for a
//! newcomer), and running out of file descriptors makes the accept loop free one and back off
//! instead of failing or spinning.

use std::collections::BTreeMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// The limits the accept loop and each connection enforce.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectionLimits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

/// Back-off after a failed accept (out of descriptors or memory): doubled each time, reset by
/// the next success.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_millis(200);

/// Accept failures come in bursts; one warning per this period is enough.
const ACCEPT_WARNING_EVERY: Duration = Duration::from_secs(10);

/// At shutdown, a connection still sending its request head gets this long to finish it.
const DRAIN_GRACE: Duration = Duration::from_secs(1);

/// Descriptors left for the store, blobs and logs when the connection cap is derived from the
/// process's descriptor limit.
const RESERVED_DESCRIPTORS: u64 = 128;

/// A connection cap that leaves room for the store's own files under the process's descriptor
/// limit (`ulimit -n`).
pub fn default_max_connections() -> usize {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX);
    let usable = limit.saturating_sub(RESERVED_DESCRIPTORS).clamp(16, 65_536);
    usize::try_from(usable).unwrap_or(65_536)
}

/// Accepts connections on `listener` and serves `router` on each until `shutdown`, then waits
/// for open connections to finish their requests.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) {
    let live = Arc::new(Live::default());
    let tasks = TaskTracker::new();
    let mut backoff = Duration::ZERO;
    let mut last_warning: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _)) => {
                backoff = Duration::ZERO;
                if live.len() >= limits.max_connections && !live.evict_oldest_idle() {
                    tracing::debug!("connection refused: every connection has a request in flight");
                    continue;
                }
                let _ = stream.set_nodelay(true);
                let connection = live.register();
                tasks.spawn(serve_connection(
                    stream,
                    connection,
                    live.clone(),
                    router.clone(),
                    limits,
                    shutdown.clone(),
                ));
            }
            Err(e) if is_connection_error(&e) => {}
            Err(e) => {
                // Usually out of descriptors: close the oldest idle connection to free one and
                // retry shortly; the pending connection waits in the listen backlog meanwhile.
                let evicted = live.evict_oldest_idle();
                if last_warning.is_none_or(|at| at.elapsed() >= ACCEPT_WARNING_EVERY) {
                    tracing::warn!(error = %e, evicted, "accept failed; backing off");
                    last_warning = Some(Instant::now());
                }
                backoff = (backoff * 2).clamp(ACCEPT_BACKOFF_MIN, ACCEPT_BACKOFF_MAX);
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(backoff) => {}
                }
            }
        }
    }
    drop(listener);
    tasks.close();
    tasks.wait().await;
}

/// Errors that concern only the connection being accepted, not the listener.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

/// The live connections, oldest first.
#[derive(Default)]
struct Live {
    connections: Mutex<BTreeMap<u64, Arc<Connection>>>,
    next_id: AtomicU64,
}

impl Live {
    fn register(&self) -> Arc<Connection> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let connection = Arc::new(Connection::new(id));
        self.lock().insert(id, connection.clone());
        connection
    }

    fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    fn len(&self) -> usize {
        self.lock().len()
    }

    /// Asks the oldest connection without a request in flight to close; false if every
    /// connection is busy.
    fn evict_oldest_idle(&self) -> bool {
        let connections = self.lock();
        let victim = connections.values().find(|c| {
            c.in_flight.load(Ordering::Acquire) == 0 && !c.evicted.load(Ordering::Acquire)
        });
        match victim {
            Some(connection) => {
                connection.evicted.store(true, Ordering::Release);
                connection.changed.notify_one();
                true
            }
            None => false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<Connection>>> {
        self.connections.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What the watchdog of one connection needs to know. Times are `Instant`s stored as
/// milliseconds since the connection was accepted.
struct Connection {
    id: u64,
    accepted_at: Instant,
    /// Requests whose handler is running.
    in_flight: AtomicUsize,
    /// Requests answered so far.
    served: AtomicU64,
    /// When the last response was handed over (the connection became idle).
    idle_since_ms: AtomicU64,
    /// When the first byte of the next request head arrived, plus one; zero when none has.
    head_started_ms: AtomicU64,
    evicted: AtomicBool,
    changed: Notify,
}

impl Connection {
    fn new(id: u64) -> Self {
        Connection {
            id,
            accepted_at: Instant::now(),
            in_flight: AtomicUsize::new(0),
            served: AtomicU64::new(0),
            idle_since_ms: AtomicU64::new(0),
            head_started_ms: AtomicU64::new(0),
            evicted: AtomicBool::new(false),
            changed: Notify::new(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.accepted_at.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn at(&self, ms: u64) -> Instant {
        self.accepted_at + Duration::from_millis(ms)
    }

    /// When the connection must be closed if nothing changes; `None` while a request is in
    /// flight (its body has its own deadline).
    fn deadline(&self, limits: &ConnectionLimits) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        if self.served.load(Ordering::Acquire) == 0 {
            return Some(self.accepted_at + limits.header_read_timeout);
        }
        match self.head_started_ms.load(Ordering::Acquire) {
            0 => Some(self.at(self.idle_since_ms.load(Ordering::Acquire)) + limits.idle_timeout),
            started => Some(self.at(started - 1) + limits.header_read_timeout),
        }
    }

    fn bytes_arrived(&self) {
        if self.in_flight.load(Ordering::Acquire) == 0
            && self.head_started_ms.load(Ordering::Acquire) == 0
        {
            let now = self.now_ms().saturating_add(1);
            let _ =
                self.head_started_ms
                    .compare_exchange(0, now, Ordering::AcqRel, Ordering::Acquire);
        }
    }

    fn request_started(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_started_ms.store(0, Ordering::Release);
        InFlight(self.clone())
    }
}

/// A request being handled on a connection; dropping it makes the connection idle again.
struct InFlight(Arc<Connection>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let connection = &self.0;
        connection.served.fetch_add(1, Ordering::AcqRel);
        connection
            .idle_since_ms
            .store(connection.now_ms(), Ordering::Release);
        connection.head_started_ms.store(0, Ordering::Release);
        connection.in_flight.fetch_sub(1, Ordering::AcqRel);
        connection.changed.notify_one();
    }
}

/// Serves one connection until the client closes it, it breaks a timeout, it is evicted, or the
/// server shuts down.
async fn serve_connection(
    stream: TcpStream,
    connection: Arc<Connection>,
    live: Arc<Live>,
    router: Router,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) {
    let io = TokioIo::new(Watched {
        stream,
        connection: connection.clone(),
    });
    let service = {
        let connection = connection.clone();
        hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let in_flight = connection.request_started();
            let router = router.clone();
            async move {
                let response = router.oneshot(request.map(axum::body::Body::new)).await;
                drop(in_flight);
                response
            }
        })
    };
    let http = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(io, service);
    tokio::pin!(http);
    // Once shutdown began: when a connection without a request in flight is closed anyway.
    let mut drain_deadline: Option<Instant> = None;
    loop {
        let deadline = connection
            .deadline(&limits)
            .map(|d| drain_deadline.map_or(d, |drain| d.min(drain)));
        // With a request in flight there is no deadline; its end wakes the loop.
        let wake_at = deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            outcome = http.as_mut() => {
                if let Err(e) = outcome {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                break;
            }
            () = tokio::time::sleep_until(wake_at) => {
                let now = Instant::now();
                let draining_over = drain_deadline.is_some_and(|d| d <= now);
                if connection.deadline(&limits).is_some_and(|d| d <= now || draining_over) {
                    tracing::debug!("closing a connection that was idle or slow to send its request");
                    break;
                }
            }
            () = connection.changed.notified() => {}
            () = shutdown.cancelled(), if drain_deadline.is_none() => {
                drain_deadline = Some(Instant::now() + DRAIN_GRACE);
                http.as_mut().graceful_shutdown();
            }
        }
        if connection.evicted.load(Ordering::Acquire)
            && connection.in_flight.load(Ordering::Acquire) == 0
        {
            tracing::debug!("closing an idle connection to make room");
            break;
        }
    }
    live.remove(connection.id);
}

/// A TCP stream that tells its connection's watchdog when request bytes arrive.
struct Watched {
    stream: TcpStream,
    connection: Arc<Connection>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.connection.bytes_arrived();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
