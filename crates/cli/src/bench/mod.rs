//! `evalmint bench ingest`: posts OTLP protobuf batches and feedback over loopback HTTP to a
//! server (by default a fresh `evalmint serve` child process with its own data directory) and
//! reports throughput, the server's CPU time per span, latency percentiles of writes and of
//! investigation reads, and the server's peak memory.

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};

use self::spans::{SpanShape, encode_batch, hex_trace_id};
use crate::table;

pub(crate) mod capture;
pub(crate) mod contention;
pub(crate) mod edge;
pub(crate) mod engine;
pub(crate) mod harness;
pub(crate) mod latency;
pub(crate) mod nezha;
pub(crate) mod openrca;
pub(crate) mod quality;
pub(crate) mod review;
mod spans;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum BenchCommand {
    /// OTLP span ingest and feedback acknowledgement throughput.
    Ingest(IngestArgs),
    /// Label quality on simulated incidents, scored against the simulator's truth file.
    Quality(crate::bench::quality::QualityArgs),
    /// The TTL race: deadlines missed under a burst, earliest-deadline-first against FIFO.
    Capture(crate::bench::capture::CaptureArgs),
    /// Real agent runs from the OpenRCA benchmark through the label pipeline.
    Openrca(crate::bench::openrca::OpenRcaArgs),
    /// Label quality on real recorded telemetry (the Nezha faults), over loopback HTTP.
    Nezha(crate::bench::nezha::NezhaArgs),
    /// Feedback-to-routed-candidate latency at a steady feedback rate.
    Latency(crate::bench::latency::LatencyArgs),
    /// The SQLite engine alone inserting the rows the store writes for benchmark spans.
    Sqlite(crate::bench::engine::EngineArgs),
    /// Feedback latency while large trace exports saturate the writer.
    Contention(crate::bench::contention::ContentionArgs),
    /// Slow clients: /healthz latency while many connections send half a request.
    Slowloris(crate::bench::edge::SlowlorisArgs),
    /// Concurrent gzip bombs: the server's peak memory and how the bombs were refused.
    Bombs(crate::bench::edge::BombsArgs),
    /// The review UI's pages over many candidates, and a release of many labels.
    Review(crate::bench::review::ReviewArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct IngestArgs {
    /// Running servers to measure (repeat, or separate with commas; requests go round-robin);
    /// without it fresh `evalmint serve` processes are started and their CPU time and peak
    /// memory are reported too.
    #[arg(long = "server", env = "EVALMINT_URL", value_delimiter = ',')]
    servers: Vec<String>,
    /// Start the benchmark's own servers on this Postgres database instead of a temporary
    /// SQLite data directory (use an empty database: the run's rows stay there).
    #[arg(long, env = "EVALMINT_DATABASE_URL", hide_env_values = true)]
    database: Option<String>,
    /// How many server processes to start on --database, side by side (requests go
    /// round-robin).
    #[arg(long = "processes", default_value_t = 1)]
    server_count: usize,
    /// API key for --server (needs the ingest and feedback scopes).
    #[arg(long, env = "EVALMINT_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Spans to send in total.
    #[arg(long, default_value_t = 200_000)]
    spans: usize,
    /// Send the light spans of earlier runs (ten short spans a trace) instead of agent spans
    /// (six spans a trace, about 880 bytes each with GenAI attributes and tool results).
    #[arg(long)]
    light: bool,
    /// Spans per OTLP request [default: 600 (100 traces) for agent spans, 500 with --light].
    #[arg(long)]
    batch_spans: Option<usize>,
    /// Concurrent trace export requests.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Feedback records to send.
    #[arg(long, default_value_t = 20_000)]
    feedback: usize,
    /// Concurrent feedback requests (feedback comes from many browsers at once).
    #[arg(long, default_value_t = 64)]
    feedback_concurrency: usize,
    /// Investigation reads (`GET /api/v1/investigations/{id}` of random stored traces) sampled
    /// after the spans are in.
    #[arg(long, default_value_t = 2_000)]
    reads: usize,
    /// Concurrent investigation reads.
    #[arg(long, default_value_t = 4)]
    read_concurrency: usize,
}

pub(crate) async fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Ingest(args) => ingest(args).await,
        BenchCommand::Quality(args) => crate::bench::quality::run(args).await,
        BenchCommand::Capture(args) => crate::bench::capture::run(args).await,
        BenchCommand::Openrca(args) => crate::bench::openrca::run(args).await,
        BenchCommand::Nezha(args) => crate::bench::nezha::run(args).await,
        BenchCommand::Latency(args) => crate::bench::latency::run(args).await,
        BenchCommand::Sqlite(args) => crate::bench::engine::run(args).await,
        BenchCommand::Contention(args) => crate::bench::contention::run(args).await,
        BenchCommand::Slowloris(args) => crate::bench::edge::slowloris(args).await,
        BenchCommand::Bombs(args) => crate::bench::edge::bombs(args).await,
        BenchCommand::Review(args) => crate::bench::review::run(args).await,
    }
}

/// A server started for the benchmark, killed when dropped.
struct ChildServer {
    child: std::process::Child,
    _data: tempfile::TempDir,
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ChildServer {
    /// Starts `evalmint serve` with `extra_args` on a free loopback port.
    fn start(admin_key: &str, extra_args: &[&str]) -> anyhow::Result<(Self, String)> {
        let extra: Vec<String> = extra_args.iter().map(|a| (*a).to_owned()).collect();
        Self::start_with(admin_key, &extra, None)
    }

    /// With extra `serve` arguments and, optionally, a descriptor limit (`ulimit -n`) for the
    /// server alone.
    fn start_with(
        admin_key: &str,
        serve_args: &[String],
        descriptor_limit: Option<u64>,
    ) -> anyhow::Result<(Self, String)> {
        let data = tempfile::tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let exe = std::env::current_exe()?;
        let mut command = match descriptor_limit {
            Some(limit) => {
                let mut shell = std::process::Command::new("sh");
                shell
                    .arg("-c")
                    .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
                    .arg(exe);
                shell
            }
            None => std::process::Command::new(exe),
        };
        let child = command
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data"])
            .arg(data.path())
            .args(serve_args)
            .env("EVALMINT_ADMIN_KEY", admin_key)
            .env("EVALMINT_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .context("starting evalmint serve")?;
        Ok((
            ChildServer { child, _data: data },
            format!("http://127.0.0.1:{port}"),
        ))
    }

    fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Peak resident set size, from /proc (Linux).
    fn peak_rss_bytes(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }

    /// CPU time (user plus system) the server has used so far, from /proc (Linux).
    fn cpu_time(&self) -> Option<Duration> {
        process_cpu_time(&format!("/proc/{}/stat", self.child.id()))
    }

    /// CPU time of all `servers` together; `None` without any, or when one cannot be read.
    fn total_cpu_time(servers: &[ChildServer]) -> Option<Duration> {
        if servers.is_empty() {
            return None;
        }
        servers.iter().map(ChildServer::cpu_time).sum()
    }
}

/// User plus system CPU time from a `/proc/.../stat` file. The kernel reports it in clock ticks
/// of `USER_HZ`, which is 100 on every Linux architecture evalmint runs on.
fn process_cpu_time(stat_path: &str) -> Option<Duration> {
    const USER_HZ: u64 = 100;
    let stat = std::fs::read_to_string(stat_path).ok()?;
    // The command name may contain spaces; the fields after it are space-separated.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 1000 / USER_HZ))
}

/// Microseconds of CPU per item, as text.
fn micros_per(cpu: Option<Duration>, items: u64) -> String {
    match cpu {
        Some(cpu) if items > 0 => format!("{:.1} µs", cpu.as_secs_f64() * 1e6 / items as f64),
        _ => "n/a".to_owned(),
    }
}

/// A fresh admin key for a benchmark's own server.
fn bench_admin_key() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("em_bench_{nanos:032x}_{:08x}", std::process::id())
}

async fn wait_until_healthy(client: &reqwest::Client, server: &str) -> anyhow::Result<()> {
    for _ in 0..200 {
        if let Ok(response) = client.get(format!("{server}/healthz")).send().await
            && response.status().is_success()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("the server at {server} did not become healthy within 10 s")
}

async fn ingest(args: IngestArgs) -> anyhow::Result<()> {
    let shape = if args.light {
        SpanShape::Light
    } else {
        SpanShape::Agent
    };
    let batch_spans = args
        .batch_spans
        .unwrap_or_else(|| shape.default_batch_spans());
    if batch_spans == 0
        || args.concurrency == 0
        || args.feedback_concurrency == 0
        || args.read_concurrency == 0
    {
        bail!("--batch-spans and the concurrency options must be positive");
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    if args.server_count == 0 {
        bail!("--processes must be at least 1");
    }
    if args.server_count > 1 && args.database.is_none() {
        bail!("--processes N needs --database: an embedded data directory belongs to one process");
    }
    let (children, servers, key) = if args.servers.is_empty() {
        let key = bench_admin_key();
        let mut children = Vec::new();
        let mut servers = Vec::new();
        let serve_args: Vec<String> = match &args.database {
            Some(url) => vec!["--database".into(), url.clone(), "--no-pipeline".into()],
            None => Vec::new(),
        };
        for _ in 0..args.server_count {
            let (child, server) = ChildServer::start_with(&key, &serve_args, None)?;
            children.push(child);
            servers.push(server);
        }
        (children, servers, key)
    } else {
        let key = args
            .api_key
            .clone()
            .context("--api-key (or EVALMINT_API_KEY) is required with --server")?;
        let servers = args
            .servers
            .iter()
            .map(|s| s.trim_end_matches('/').to_owned())
            .collect();
        (Vec::new(), servers, key)
    };
    for server in &servers {
        wait_until_healthy(&client, server).await?;
    }
    let servers = Arc::new(servers);
    let server_of = move |index: usize| -> String { servers[index % servers.len()].clone() };

    let batches = args.spans.div_ceil(batch_spans);
    eprintln!("encoding {batches} OTLP batches of {batch_spans} spans…");
    // A run id keeps repeated runs against one --server from overwriting each other's traces.
    let run = (std::process::id() % 251) as u8;
    let bodies: Vec<Vec<u8>> = (0..batches)
        .map(|b| encode_batch(shape, run, b * batch_spans, batch_spans))
        .collect();
    let wire_bytes: usize = bodies.iter().map(Vec::len).sum();
    let trace_count = (batches * batch_spans / shape.spans_per_trace()).max(1);

    let cpu_before = ChildServer::total_cpu_time(&children);
    let spans_phase = run_phase(
        "spans",
        &client,
        batches,
        args.concurrency,
        batch_spans as u64,
        {
            let server_of = server_of.clone();
            let key = key.clone();
            let bodies = Arc::new(bodies);
            move |client: &reqwest::Client, index: usize| {
                client
                    .post(format!("{}/v1/traces", server_of(index)))
                    .bearer_auth(&key)
                    .header("content-type", "application/x-protobuf")
                    .body(bodies[index].clone())
            }
        },
    )
    .await?;
    let span_cpu = ChildServer::total_cpu_time(&children)
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));

    let feedback_phase = run_phase(
        "feedback",
        &client,
        args.feedback,
        args.feedback_concurrency,
        1,
        {
            let server_of = server_of.clone();
            let key = key.clone();
            move |client: &reqwest::Client, index: usize| {
                let verdict = ["up", "not_quite", "down"][index % 3];
                let body = serde_json::json!({
                    "investigation_id": hex_trace_id(run, index % trace_count),
                    "verdict": verdict,
                    "rating": 1 + index % 5,
                    "correction": "payments-db connection pool exhausted after the 14:02 deploy",
                    "user_id": format!("u-{}", index % 100),
                    "idempotency_key": format!("bench-{run}-{index}"),
                });
                client
                    .post(format!("{}/api/v1/feedback", server_of(index)))
                    .bearer_auth(&key)
                    .json(&body)
            }
        },
    )
    .await?;

    let read_phase = run_phase("reads", &client, args.reads, args.read_concurrency, 1, {
        let server_of = server_of.clone();
        let key = key.clone();
        move |client: &reqwest::Client, index: usize| {
            // A multiplicative hash spreads the sampled traces over the whole store.
            let trace = index.wrapping_mul(2_654_435_761) % trace_count;
            client
                .get(format!(
                    "{}/api/v1/investigations/{}",
                    server_of(index),
                    hex_trace_id(run, trace)
                ))
                .bearer_auth(&key)
        }
    })
    .await?;

    let peak_rss = children
        .iter()
        .map(ChildServer::peak_rss_bytes)
        .collect::<Option<Vec<u64>>>()
        .and_then(|each| each.into_iter().max());
    let store = match (&args.database, children.len()) {
        (_, 0) => "external server".to_owned(),
        (Some(_), n) => format!("Postgres, {n} server(s)"),
        (None, _) => "SQLite (embedded), 1 server".to_owned(),
    };
    let rows = vec![
        row("store", store),
        row(
            "span shape",
            format!(
                "{} ({} spans a trace, {batch_spans} a request, {} B a span on the wire)",
                if args.light { "light" } else { "agent" },
                shape.spans_per_trace(),
                wire_bytes / (batches * batch_spans).max(1)
            ),
        ),
        row("spans sent", spans_phase.items.to_string()),
        row(
            "span throughput",
            format!("{:.0} spans/s", spans_phase.rate()),
        ),
        row(
            "server CPU per span (all servers)",
            micros_per(span_cpu, spans_phase.items),
        ),
        row("export request p50", ms(spans_phase.percentile(0.50))),
        row("export request p99", ms(spans_phase.percentile(0.99))),
        row("export 429 retries", spans_phase.retries.to_string()),
        row("feedback sent", feedback_phase.items.to_string()),
        row(
            "feedback throughput",
            format!("{:.0} acknowledged/s", feedback_phase.rate()),
        ),
        row("feedback request p50", ms(feedback_phase.percentile(0.50))),
        row("feedback request p99", ms(feedback_phase.percentile(0.99))),
        row("feedback 429 retries", feedback_phase.retries.to_string()),
        row("investigation reads", read_phase.items.to_string()),
        row("investigation read p50", ms(read_phase.percentile(0.50))),
        row("investigation read p99", ms(read_phase.percentile(0.99))),
        row(
            "server peak RSS (largest)",
            peak_rss.map_or("n/a (external server)".to_owned(), |b| {
                format!("{:.1} MiB", b as f64 / 1_048_576.0)
            }),
        ),
    ];
    print!("{}", table::render(&["measure", "value"], &rows));
    drop(children);
    Ok(())
}

/// CPU the child server used since `before`.
fn cpu_used(child: Option<&ChildServer>, before: Option<Duration>) -> Option<Duration> {
    Some(child?.cpu_time()?.saturating_sub(before?))
}

fn row(name: &str, value: String) -> Vec<String> {
    vec![name.to_owned(), value]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

struct PhaseResult {
    items: u64,
    elapsed: Duration,
    latencies: Vec<Duration>,
    retries: u64,
}

impl PhaseResult {
    fn rate(&self) -> f64 {
        self.items as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, q: f64) -> Duration {
        Self::quantile_of(&self.latencies, q)
    }

    /// The `q` quantile of sorted latencies (zero when there are none).
    fn quantile_of(sorted: &[Duration], q: f64) -> Duration {
        if sorted.is_empty() {
            return Duration::ZERO;
        }
        sorted[((sorted.len() - 1) as f64 * q).round() as usize]
    }
}

/// Sends `requests` requests with `concurrency` workers; a 429 waits for `Retry-After` and is
/// retried (at most 100 times per request), and so is a request whose connection the server
/// closed while its body was still being sent: that is how a refusal (429, 413) reaches a client
/// that streams a large body, and OTLP exporters retry it too. Any other failure aborts the
/// benchmark.
async fn run_phase<F>(
    name: &str,
    client: &reqwest::Client,
    requests: usize,
    concurrency: usize,
    items_per_request: u64,
    build: F,
) -> anyhow::Result<PhaseResult>
where
    F: Fn(&reqwest::Client, usize) -> reqwest::RequestBuilder + Send + Sync + 'static,
{
    let progress = ProgressBar::new(requests as u64 * items_per_request);
    progress.set_style(
        ProgressStyle::with_template("{msg:>8} [{bar:40}] {human_pos}/{human_len} {per_sec}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    progress.set_message(name.to_owned());
    let next = Arc::new(AtomicUsize::new(0));
    let build = Arc::new(build);
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (client, next, build, progress) = (
            client.clone(),
            next.clone(),
            build.clone(),
            progress.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut retries = 0u64;
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= requests {
                    return Ok::<_, anyhow::Error>((latencies, retries));
                }
                let sent = Instant::now();
                let mut attempts = 0;
                loop {
                    let response = match build(&client, index).send().await {
                        Ok(response) => response,
                        Err(e) if e.is_request() && attempts < 100 => {
                            attempts += 1;
                            retries += 1;
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            continue;
                        }
                        Err(e) => return Err(e.into()),
                    };
                    let status = response.status();
                    if status == reqwest::StatusCode::TOO_MANY_REQUESTS && attempts < 100 {
                        attempts += 1;
                        retries += 1;
                        let wait = response
                            .headers()
                            .get("retry-after")
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.parse::<u64>().ok())
                            .unwrap_or(1);
                        tokio::time::sleep(Duration::from_millis(wait * 100)).await;
                        continue;
                    }
                    if !status.is_success() {
                        let text = response.text().await.unwrap_or_default();
                        bail!("request {index} failed with {status}: {text}");
                    }
                    break;
                }
                latencies.push(sent.elapsed());
                progress.inc(items_per_request);
            }
        }));
    }
    let mut latencies = Vec::with_capacity(requests);
    let mut retries = 0;
    for worker in workers {
        let (mut l, r) = worker.await??;
        latencies.append(&mut l);
        retries += r;
    }
    let elapsed = started.elapsed();
    progress.finish_and_clear();
    latencies.sort();
    Ok(PhaseResult {
        items: requests as u64 * items_per_request,
        elapsed,
        latencies,
        retries,
    })
}
