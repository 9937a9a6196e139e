//! `evalmint bench slowloris` and `evalmint bench bombs`: attacks on the HTTP edge against a fresh
//! `evalmint serve` child process. Slowloris opens many connections that send half a request
//! under a small descriptor limit and probes `/healthz` meanwhile; bombs posts concurrent gzip
//! bombs and reads the server's peak memory from `/proc`.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{ChildServer, bench_admin_key, ms, row, wait_until_healthy};
use crate::serve::parse_size;
use crate::table;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum SlowMode {
    /// Half a request head, never finished.
    Header,
    /// A complete head (with a valid key) and half of the announced body.
    Body,
}

#[derive(Debug, clap::Args)]
pub(crate) struct SlowlorisArgs {
    /// Slow connections to open.
    #[arg(long, default_value_t = 1000)]
    connections: usize,
    /// What each slow connection sends.
    #[arg(long, value_enum, default_value = "header")]
    mode: SlowMode,
    /// The server's descriptor limit (ulimit -n).
    #[arg(long, default_value_t = 1024)]
    descriptor_limit: u64,
    /// How long to keep probing /healthz once the slow connections are open.
    #[arg(long, default_value = "20s", value_parser = crate::positive_duration)]
    hold: jiff::SignedDuration,
    /// Pause between /healthz probes (each on a new connection), in milliseconds.
    #[arg(long, default_value_t = 50)]
    probe_every_ms: u64,
    /// An extra `evalmint serve` argument, repeatable (e.g. --serve-arg=--header-read-timeout=5s).
    #[arg(long = "serve-arg", allow_hyphen_values = true)]
    serve_args: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct BombsArgs {
    /// Bombs posted at once.
    #[arg(long, default_value_t = 32)]
    bombs: usize,
    /// Compressed size of each bomb; it inflates about a thousandfold.
    #[arg(long, default_value = "1MiB", value_parser = parse_size)]
    size: usize,
    /// Waves of concurrent bombs.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// An extra `evalmint serve` argument, repeatable.
    #[arg(long = "serve-arg", allow_hyphen_values = true)]
    serve_args: Vec<String>,
}

/// When each slow connection was closed by the server, if it was.
#[derive(Default)]
struct SlowTally {
    opened: usize,
    refused: usize,
    closed_after: Vec<Duration>,
}

pub(crate) async fn slowloris(args: SlowlorisArgs) -> anyhow::Result<()> {
    let key = bench_admin_key();
    let (mut child, server) =
        ChildServer::start_with(&key, &args.serve_args, Some(args.descriptor_limit))?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        .build()?;
    wait_until_healthy(&client, &server).await?;
    let address = server.trim_start_matches("http://").to_owned();
    let hold = Duration::try_from(args.hold)?;
    let probe_every = Duration::from_millis(args.probe_every_ms.max(1));

    let probing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let prober = tokio::spawn(probe_healthz(
        client.clone(),
        server.clone(),
        probe_every,
        probing.clone(),
    ));

    let tally = Arc::new(Mutex::new(SlowTally::default()));
    let request = match args.mode {
        SlowMode::Header => {
            "POST /v1/traces HTTP/1.1\r\nHost: evalmint\r\nUser-Agent: slow\r\nX-Padding: "
                .to_owned()
        }
        SlowMode::Body => format!(
            "POST /v1/traces HTTP/1.1\r\nHost: evalmint\r\nAuthorization: Bearer {key}\r\n\
             Content-Type: application/x-protobuf\r\nContent-Length: 1048576\r\n\r\n{}",
            "x".repeat(512)
        ),
    };
    eprintln!(
        "opening {} slow connections ({:?}) against a server limited to {} descriptors…",
        args.connections, args.mode, args.descriptor_limit
    );
    let started = Instant::now();
    let mut watchers = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        let mut stream = match tokio::net::TcpStream::connect(&address).await {
            Ok(stream) => stream,
            Err(_) => {
                lock(&tally).refused += 1;
                continue;
            }
        };
        if stream.write_all(request.as_bytes()).await.is_err() {
            lock(&tally).refused += 1;
            continue;
        }
        lock(&tally).opened += 1;
        let tally = tally.clone();
        watchers.push(tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            lock(&tally).closed_after.push(started.elapsed());
        }));
    }
    let opened_in = started.elapsed();
    tokio::time::sleep(hold).await;
    probing.store(false, std::sync::atomic::Ordering::Relaxed);
    let probes = prober.await?;
    let alive = child.is_running();
    let peak_rss = child.peak_rss_bytes();
    drop(child);
    for watcher in watchers {
        watcher.abort();
    }

    let tally = lock(&tally);
    let mut closed = tally.closed_after.clone();
    closed.sort();
    let mut latencies = probes.latencies.clone();
    latencies.sort();
    let rows = vec![
        row(
            "slow connections opened",
            format!("{} in {:.1} s", tally.opened, opened_in.as_secs_f64()),
        ),
        row("slow connections refused", tally.refused.to_string()),
        row(
            "closed by the server",
            format!(
                "{} of {} within {:.0} s",
                closed.len(),
                tally.opened,
                (opened_in + hold).as_secs_f64()
            ),
        ),
        row(
            "time to close p50 / max",
            format!(
                "{} / {}",
                percentile(&closed, 0.5).map_or("n/a".into(), secs),
                closed.last().copied().map_or("n/a".into(), secs)
            ),
        ),
        row("/healthz probes", latencies.len().to_string()),
        row("/healthz failures", probes.failures.to_string()),
        row(
            "/healthz p50",
            percentile(&latencies, 0.5).map_or("n/a".into(), ms),
        ),
        row(
            "/healthz p99",
            percentile(&latencies, 0.99).map_or("n/a".into(), ms),
        ),
        row(
            "/healthz max",
            latencies.last().copied().map_or("n/a".into(), ms),
        ),
        row("server alive", if alive { "yes" } else { "no" }.to_owned()),
        row("server peak RSS", mib(peak_rss)),
    ];
    print!("{}", table::render(&["measure", "value"], &rows));
    Ok(())
}

struct Probes {
    latencies: Vec<Duration>,
    failures: usize,
}

/// Probes `/healthz` on a new connection every `every` until told to stop.
async fn probe_healthz(
    client: reqwest::Client,
    server: String,
    every: Duration,
    running: Arc<std::sync::atomic::AtomicBool>,
) -> Probes {
    let mut probes = Probes {
        latencies: Vec::new(),
        failures: 0,
    };
    while running.load(std::sync::atomic::Ordering::Relaxed) {
        let started = Instant::now();
        match client.get(format!("{server}/healthz")).send().await {
            Ok(response) if response.status().is_success() => {
                probes.latencies.push(started.elapsed());
            }
            _ => probes.failures += 1,
        }
        tokio::time::sleep(every).await;
    }
    probes
}

pub(crate) async fn bombs(args: BombsArgs) -> anyhow::Result<()> {
    let key = bench_admin_key();
    let (child, server) = ChildServer::start_with(&key, &args.serve_args, None)?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()?;
    wait_until_healthy(&client, &server).await?;
    let (bomb, inflated) = gzip_bomb(args.size)?;
    let bomb = Arc::new(bomb);
    let baseline_rss = child.peak_rss_bytes();
    eprintln!(
        "posting {} waves of {} concurrent gzip bombs of {} KiB…",
        args.rounds,
        args.bombs,
        bomb.len() / 1024
    );

    let mut statuses: std::collections::BTreeMap<String, usize> = Default::default();
    let mut latencies = Vec::new();
    for _ in 0..args.rounds {
        let mut requests = tokio::task::JoinSet::new();
        for _ in 0..args.bombs {
            let request = client
                .post(format!("{server}/v1/traces"))
                .bearer_auth(&key)
                .header("content-type", "application/x-protobuf")
                .header("content-encoding", "gzip")
                .body(bomb.as_ref().clone());
            requests.spawn(async move {
                let started = Instant::now();
                let outcome = request.send().await;
                let status = match outcome {
                    Ok(response) => response.status().as_u16().to_string(),
                    Err(e) if e.is_timeout() => "timeout".to_owned(),
                    Err(_) => "connection error".to_owned(),
                };
                (status, started.elapsed())
            });
        }
        while let Some(joined) = requests.join_next().await {
            let (status, latency) = joined?;
            *statuses.entry(status).or_default() += 1;
            latencies.push(latency);
        }
    }
    latencies.sort();
    let healthz_started = Instant::now();
    let healthy = client
        .get(format!("{server}/healthz"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success());
    let healthz = healthz_started.elapsed();
    let peak_rss = child.peak_rss_bytes();
    drop(child);

    let mut rows = vec![
        row(
            "bombs sent",
            format!(
                "{} ({} KiB each, {} MiB inflated)",
                args.bombs * args.rounds,
                bomb.len() / 1024,
                inflated / 1_048_576
            ),
        ),
        row("server RSS before", mib(baseline_rss)),
        row("server peak RSS (VmHWM)", mib(peak_rss)),
        row(
            "bomb response p50",
            percentile(&latencies, 0.5).map_or("n/a".into(), ms),
        ),
        row(
            "bomb response max",
            latencies.last().copied().map_or("n/a".into(), ms),
        ),
        row(
            "/healthz afterwards",
            if healthy {
                ms(healthz)
            } else {
                "failed".into()
            },
        ),
    ];
    for (status, count) in statuses {
        rows.push(row(&format!("answered {status}"), count.to_string()));
    }
    print!("{}", table::render(&["measure", "value"], &rows));
    Ok(())
}

/// Each gzip member inflates to this many zero bytes.
const MEMBER_INFLATED: usize = 64 * 1024 * 1024;

/// Concatenated gzip members of zeros, about `size` bytes compressed, and their inflated size.
fn gzip_bomb(size: usize) -> anyhow::Result<(Vec<u8>, usize)> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1024 * 1024];
    for _ in 0..MEMBER_INFLATED / zeros.len() {
        encoder.write_all(&zeros)?;
    }
    let member = encoder.finish().context("compressing a gzip bomb")?;
    let members = size.div_ceil(member.len()).max(1);
    Ok((member.repeat(members), members * MEMBER_INFLATED))
}

fn percentile(sorted: &[Duration], q: f64) -> Option<Duration> {
    sorted
        .get(((sorted.len().max(1) - 1) as f64 * q).round() as usize)
        .copied()
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn mib(bytes: Option<u64>) -> String {
    bytes.map_or("n/a".to_owned(), |b| {
        format!("{:.1} MiB", b as f64 / 1_048_576.0)
    })
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
