//! What the tests against a real Prometheus share: the child process, killed when dropped, and a
//! free loopback port for it.

use std::process::Child;

/// A running `prometheus` process, killed and reaped when dropped.
pub struct Prometheus(pub Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
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
