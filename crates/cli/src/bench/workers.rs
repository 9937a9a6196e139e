//! `evalmint bench workers`: label pipeline throughput with 1, 2, 4… `evalmint worker` processes
//! sharing one Postgres database. Each round stores fresh investigations whose metric queries
//! must be captured from the simulator's telemetry API, queues their feedback, then starts the
//! workers and times them until every feedback is routed; the workers' own claim-latency
//! histograms are read from their `/metrics`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use evalmint_model::{FeedbackOrigin, FeedbackSubmission, TenantId, Timestamp};
use evalmint_store::{BlobStore, FullStore, PostgresOptions, PostgresStore};
use indicatif::{ProgressBar, ProgressStyle};
use tokio_util::sync::CancellationToken;

use crate::table;

#[derive(Debug, clap::Args)]
pub(crate) struct WorkersArgs {
    /// The Postgres database the workers share (use an empty one: each round's rows stay).
    #[arg(long, env = "EVALMINT_DATABASE_URL", hide_env_values = true)]
    database: String,
    /// Worker counts to measure, one round each.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
    workers: Vec<usize>,
    /// Investigations with feedback per round.
    #[arg(long, default_value_t = 600)]
    investigations: usize,
    /// Metric queries per investigation, each captured from the simulator.
    #[arg(long, default_value_t = 4)]
    queries: usize,
}

/// An `evalmint worker` child process, killed when dropped.
struct WorkerProcess {
    child: Child,
    metrics_url: String,
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl WorkerProcess {
    fn start(database: &str, blobs: &Path, config: &Path, data: &Path) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new(std::env::current_exe()?)
            .args(["worker", "--database", database, "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--blobs")
            .arg(format!("file://{}", blobs.display()))
            .arg("--config")
            .arg(config)
            .arg("--data")
            .arg(data)
            .env("EVALMINT_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting evalmint worker")?;
        Ok(WorkerProcess {
            child,
            metrics_url: format!("http://127.0.0.1:{port}/metrics"),
        })
    }
}

/// A Prometheus-style histogram read back from OpenMetrics text: cumulative counts per bucket
/// upper bound.
#[derive(Debug, Default)]
struct Buckets(Vec<(f64, u64)>);

impl Buckets {
    /// Adds the `metric` buckets with `label` from one `/metrics` page.
    fn add_from(&mut self, text: &str, metric: &str, label: &str) {
        let prefix = format!("{metric}_bucket{{");
        for line in text.lines().filter(|l| l.starts_with(&prefix)) {
            if !line.contains(label) {
                continue;
            }
            let Some(le) = line
                .split("le=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
            else {
                continue;
            };
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap_or(f64::INFINITY)
            };
            let count: u64 = line
                .rsplit(' ')
                .next()
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            match self.0.iter_mut().find(|(b, _)| *b == bound) {
                Some((_, total)) => *total += count,
                None => self.0.push((bound, count)),
            }
        }
        self.0.sort_by(|a, b| a.0.total_cmp(&b.0));
    }

    fn count(&self) -> u64 {
        self.0.last().map_or(0, |(_, c)| *c)
    }

    /// The upper bound of the bucket holding the `q` quantile, as text.
    fn quantile(&self, q: f64) -> String {
        let total = self.count();
        if total == 0 {
            return "n/a".to_owned();
        }
        let rank = (total as f64 * q).ceil() as u64;
        let bound = self
            .0
            .iter()
            .find(|(_, c)| *c >= rank)
            .map_or(f64::INFINITY, |(b, _)| *b);
        if bound.is_infinite() {
            "> 6.5 s".to_owned()
        } else {
            format!("≤ {:.2} ms", bound * 1000.0)
        }
    }
}

fn write_config(dir: &Path, telemetry_url: &str) -> anyhow::Result<std::path::PathBuf> {
    let path = dir.join("evalmint.toml");
    std::fs::write(
        &path,
        format!(
            "[[sources]]\nname = \"sim-metrics\"\nsignal = \"metrics\"\nconnector = \"prometheus\"\n\
             endpoint = \"{telemetry_url}\"\nttl = \"15d\"\ntools = [\"query_metrics\"]\n\
             concurrency = 8\n"
        ),
    )?;
    Ok(path)
}

pub(crate) async fn run(args: WorkersArgs) -> anyhow::Result<()> {
    if args.workers.is_empty() || args.workers.contains(&0) || args.investigations == 0 {
        bail!("--workers takes positive counts (e.g. 1,2,4) and --investigations must be positive");
    }
    let shutdown = CancellationToken::new();
    let (telemetry_url, services) = super::latency::start_small_world(17, &shutdown).await?;
    let dir = tempfile::tempdir()?;
    let blobs = dir.path().join("blobs");
    let config = write_config(dir.path(), &telemetry_url)?;
    let store: Arc<dyn FullStore> = Arc::new(
        PostgresStore::connect(
            &args.database,
            PostgresOptions::new(BlobStore::open(&blobs)?),
        )
        .await
        .with_context(|| "connecting to --database")?,
    );
    let tenant = TenantId::default_tenant();
    // Fresh trace ids per run and per round, so rounds on one database never meet.
    let run = u64::from(std::process::id()) << 32;

    let mut rows = Vec::new();
    for (round, &workers) in args.workers.iter().enumerate() {
        let first = run + (round as u64) * 10_000_000;
        let now = Timestamp::now();
        eprintln!(
            "round {}: {workers} worker(s), storing {} investigations and their feedback…",
            round + 1,
            args.investigations
        );
        let indices: Vec<usize> = (0..args.investigations)
            .map(|i| (first + i as u64) as usize)
            .collect();
        super::latency::ingest_investigations(
            &*store,
            &tenant,
            &indices,
            &services,
            args.queries,
            now,
        )
        .await?;
        for index in &indices {
            let service = &services[index % services.len()];
            let submission: FeedbackSubmission = serde_json::from_value(serde_json::json!({
                "investigation_id": format!("{:032x}", *index as u128 + 1),
                "verdict": "not_quite",
                "correction": format!("{service} ran out of CPU"),
            }))?;
            let feedback = submission
                .validate(FeedbackOrigin::Api)
                .map_err(|e| anyhow::anyhow!("benchmark feedback is invalid: {e:?}"))?;
            store.submit_feedback(&tenant, feedback).await?;
        }
        let before = store.pipeline_stats(&tenant).await?;
        let routed_before = before.feedback_candidate + before.feedback_not_candidate;
        let captured_before = before.queries_captured;

        let started = Instant::now();
        let processes = (0..workers)
            .map(|n| {
                WorkerProcess::start(
                    &args.database,
                    &blobs,
                    &config,
                    &dir.path().join(format!("round-{round}-worker-{n}")),
                )
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let progress = ProgressBar::new(args.investigations as u64);
        progress.set_style(
            ProgressStyle::with_template("routed [{bar:40}] {pos}/{len} {elapsed}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        let after = loop {
            let stats = store.pipeline_stats(&tenant).await?;
            let routed = stats.feedback_candidate + stats.feedback_not_candidate - routed_before;
            progress.set_position(routed);
            if routed >= args.investigations as u64 {
                break stats;
            }
            if started.elapsed() > Duration::from_secs(900) {
                bail!(
                    "the workers routed {routed} of {} in 15 minutes",
                    args.investigations
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let elapsed = started.elapsed();
        progress.finish_and_clear();

        let client = reqwest::Client::new();
        let (mut jobs, mut captures) = (Buckets::default(), Buckets::default());
        for process in &processes {
            let text = client
                .get(&process.metrics_url)
                .send()
                .await?
                .text()
                .await?;
            let metric = "evalmint_pipeline_claim_seconds";
            jobs.add_from(&text, metric, "queue=\"label_jobs\"");
            captures.add_from(&text, metric, "queue=\"captures\"");
        }
        drop(processes);
        rows.push(vec![
            workers.to_string(),
            args.investigations.to_string(),
            (after.queries_captured - captured_before).to_string(),
            format!("{:.1} s", elapsed.as_secs_f64()),
            format!(
                "{:.0}",
                args.investigations as f64 * 60.0 / elapsed.as_secs_f64()
            ),
            format!("{} / {}", jobs.quantile(0.5), jobs.quantile(0.99)),
            format!("{} / {}", captures.quantile(0.5), captures.quantile(0.99)),
        ]);
    }
    shutdown.cancel();
    print!(
        "{}",
        table::render(
            &[
                "workers",
                "feedback",
                "queries captured",
                "time",
                "routed / min",
                "job claim p50 / p99",
                "capture claim p50 / p99",
            ],
            &rows
        )
    );
    Ok(())
}
