//! Command-line arguments of `evalmint sim …` and their translation into options.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;

use crate::agent::AgentVersion;
use crate::generate::{GenerateOptions, generate as generate_world};
use crate::run::RunOptions;
use crate::telemetry::{Retention, SimClock, TelemetryService, app, parse_duration_secs};
use crate::users::FeedbackRates;
use crate::world::{DEFAULT_TIMELINE_END, World, WorldConfig};

/// How simulated users give feedback (probabilities in [0, 1]; style values are weights).
#[derive(Debug, Clone, clap::Args)]
pub struct FeedbackRateArgs {
    /// Probability that a user says nothing when the agent was right.
    #[arg(long, default_value_t = FeedbackRates::default().silence_when_right)]
    pub silence_when_right: f64,
    /// Probability that a user says nothing when the agent was wrong.
    #[arg(long, default_value_t = FeedbackRates::default().silence_when_wrong)]
    pub silence_when_wrong: f64,
    /// Probability that feedback is a rating without a verdict.
    #[arg(long, default_value_t = FeedbackRates::default().rating_only)]
    pub rating_only: f64,
    /// Probability that a user wrongly rejects a right answer.
    #[arg(long, default_value_t = FeedbackRates::default().mistaken_when_right)]
    pub mistaken_when_right: f64,
    /// Probability that feedback is sent before the agent's trace.
    #[arg(long, default_value_t = FeedbackRates::default().before_trace)]
    pub before_trace: f64,
    /// Weight of precise corrections when the agent was wrong.
    #[arg(long, default_value_t = FeedbackRates::default().precise)]
    pub style_precise: f64,
    /// Weight of vague, symptom-only corrections.
    #[arg(long, default_value_t = FeedbackRates::default().vague)]
    pub style_vague: f64,
    /// Weight of partial corrections ("not the frontend").
    #[arg(long, default_value_t = FeedbackRates::default().partial)]
    pub style_partial: f64,
    /// Weight of mistaken corrections (the user is wrong).
    #[arg(long, default_value_t = FeedbackRates::default().mistaken)]
    pub style_mistaken: f64,
    /// Weight of corrections with the wrong onset time.
    #[arg(long, default_value_t = FeedbackRates::default().wrong_time)]
    pub style_wrong_time: f64,
    /// Weight of corrections that name the root cause by a pod, a host, another spelling or a typo.
    #[arg(long, default_value_t = FeedbackRates::default().named)]
    pub style_named: f64,
    /// Weight of a verdict without any text.
    #[arg(long, default_value_t = FeedbackRates::default().no_text)]
    pub style_no_text: f64,
}

impl FeedbackRateArgs {
    fn rates(&self) -> anyhow::Result<FeedbackRates> {
        let rates = FeedbackRates {
            silence_when_right: self.silence_when_right,
            silence_when_wrong: self.silence_when_wrong,
            rating_only: self.rating_only,
            mistaken_when_right: self.mistaken_when_right,
            before_trace: self.before_trace,
            precise: self.style_precise,
            vague: self.style_vague,
            partial: self.style_partial,
            mistaken: self.style_mistaken,
            wrong_time: self.style_wrong_time,
            named: self.style_named,
            no_text: self.style_no_text,
        };
        let problems: Vec<String> = [
            ("silence-when-right", rates.silence_when_right),
            ("silence-when-wrong", rates.silence_when_wrong),
            ("rating-only", rates.rating_only),
            ("mistaken-when-right", rates.mistaken_when_right),
            ("before-trace", rates.before_trace),
            ("style-precise", rates.precise),
            ("style-vague", rates.vague),
            ("style-named", rates.named),
            ("style-partial", rates.partial),
            ("style-mistaken", rates.mistaken),
            ("style-wrong-time", rates.wrong_time),
            ("style-no-text", rates.no_text),
        ]
        .iter()
        .filter(|(_, v)| !(0.0..=1.0).contains(v))
        .map(|(k, v)| format!("--{k} {v} is outside [0, 1]"))
        .collect();
        if !problems.is_empty() {
            anyhow::bail!("{}", problems.join("; "));
        }
        Ok(rates)
    }
}

/// The world to simulate.
#[derive(Debug, Clone, clap::Args)]
pub struct WorldArgs {
    /// Seed of everything: topology, incidents, agent choices, feedback.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Number of incidents on the timeline.
    #[arg(long, default_value_t = 20)]
    pub incidents: u64,
    /// Number of services (10..=500); by default the seed chooses.
    #[arg(long)]
    pub services: Option<usize>,
    /// End of the simulated timeline (RFC 3339); default: now for `run`/`telemetry`, 2026-01-01 for `generate`.
    #[arg(long)]
    pub epoch: Option<String>,
}

impl WorldArgs {
    fn config(&self, default_end: i64) -> anyhow::Result<WorldConfig> {
        let timeline_end = match &self.epoch {
            Some(text) => text
                .parse::<jiff::Timestamp>()
                .with_context(|| format!("--epoch {text:?} is not RFC 3339"))?
                .as_second(),
            None => default_end,
        };
        if let Some(services) = self.services
            && !(10..=500).contains(&services)
        {
            anyhow::bail!("--services {services} is outside 10..=500");
        }
        Ok(WorldConfig {
            seed: self.seed,
            incidents: self.incidents,
            services: self.services,
            timeline_end,
        })
    }
}

fn now_minute() -> i64 {
    jiff::Timestamp::now().as_second() / 60 * 60
}

#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// The evalmint server.
    #[arg(long, env = "EVALMINT_URL", default_value = "http://127.0.0.1:4318")]
    pub server: String,
    /// API key sent as `Authorization: Bearer …`.
    #[arg(long, env = "EVALMINT_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    #[command(flatten)]
    pub world: WorldArgs,
    /// Which reference agent investigates.
    #[arg(long, value_enum, default_value_t = AgentVersion::V1)]
    pub agent: AgentVersion,
    /// Use a running `evalmint sim telemetry` instead of an in-process one.
    #[arg(long)]
    pub telemetry: Option<String>,
    /// Where to write the truth file.
    #[arg(long, default_value = "sim-truth.jsonl")]
    pub truth: PathBuf,
    /// Incidents played at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    #[command(flatten)]
    pub rates: FeedbackRateArgs,
}

#[derive(Debug, Clone, clap::Args)]
pub struct TelemetryArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9464")]
    pub listen: String,
    #[command(flatten)]
    pub world: WorldArgs,
    /// Serve a recorded data set (e.g. the Nezha data) instead of a simulated world; the clock
    /// starts at the end of its data.
    #[arg(long, value_name = "DIR")]
    pub recorded: Option<PathBuf>,
    /// Retention of metrics (e.g. 15m, 2h, 7d).
    #[arg(long, default_value = "15d")]
    pub ttl_metrics: String,
    /// Retention of logs.
    #[arg(long, default_value = "7d")]
    pub ttl_logs: String,
    /// Retention of events.
    #[arg(long, default_value = "30d")]
    pub ttl_events: String,
    /// Retention of traces.
    #[arg(long, default_value = "3d")]
    pub ttl_traces: String,
    /// Simulated seconds per wall-clock second.
    #[arg(long, default_value_t = 1.0)]
    pub time_factor: f64,
}

#[derive(Debug, Clone, clap::Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub world: WorldArgs,
    /// Output directory.
    #[arg(long)]
    pub out: PathBuf,
    /// Truth file; default `<out>/sim-truth.jsonl`.
    #[arg(long)]
    pub truth: Option<PathBuf>,
    /// Which reference agent investigates.
    #[arg(long, value_enum, default_value_t = AgentVersion::V1)]
    pub agent: AgentVersion,
    /// Worker threads; the output is the same for any number.
    #[arg(long, default_value_t = std::thread::available_parallelism().map_or(1, |n| n.get()))]
    pub threads: usize,
    #[command(flatten)]
    pub rates: FeedbackRateArgs,
}

pub(crate) async fn run(args: RunArgs) -> anyhow::Result<()> {
    let options = RunOptions {
        server: args.server,
        api_key: args.api_key,
        world: args.world.config(now_minute())?,
        agent: args.agent,
        telemetry: args.telemetry,
        truth: args.truth,
        rates: args.rates.rates()?,
        concurrency: args.concurrency,
        show_progress: true,
    };
    let truth = options.truth.clone();
    let summary = crate::run::run(options).await?;
    crate::output::print_run_summary(&summary, &truth);
    if summary.client_errors > 0 {
        anyhow::bail!(
            "{} requests were rejected by the server",
            summary.client_errors
        );
    }
    Ok(())
}

pub(crate) async fn telemetry(args: TelemetryArgs) -> anyhow::Result<()> {
    let ttl =
        |flag: &str, text: &str| parse_duration_secs(text).with_context(|| format!("--{flag}"));
    let retention = Retention {
        metrics: ttl("ttl-metrics", &args.ttl_metrics)?,
        logs: ttl("ttl-logs", &args.ttl_logs)?,
        events: ttl("ttl-events", &args.ttl_events)?,
        traces: ttl("ttl-traces", &args.ttl_traces)?,
    };
    if !(args.time_factor > 0.0 && args.time_factor.is_finite()) {
        anyhow::bail!("--time-factor must be a positive number");
    }
    let service = match &args.recorded {
        Some(dir) => {
            let dir = dir.clone();
            let world = tokio::task::spawn_blocking(move || crate::recorded::load(&dir))
                .await?
                .context("loading the recorded data")?;
            for note in &world.notes {
                tracing::info!(note = %note, "recorded data");
            }
            tracing::info!(
                format = world.format,
                services = world.services.len(),
                faults = world.faults.len(),
                "recorded world loaded"
            );
            let clock = SimClock::running(world.end * 1000, args.time_factor);
            TelemetryService::recorded(Arc::new(world), Arc::new(clock), retention)
        }
        None => {
            let config = args.world.config(now_minute())?;
            let world =
                Arc::new(tokio::task::spawn_blocking(move || World::generate(config)).await?);
            tracing::info!(
                seed = config.seed,
                incidents = config.incidents,
                "world generated"
            );
            let clock = SimClock::running(world.end * 1000, args.time_factor);
            TelemetryService::new(world, Arc::new(clock), retention)
        }
    };
    let service = Arc::new(service);
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let address = listener.local_addr()?;
    tracing::info!(%address, "telemetry API listening");
    axum::serve(listener, app(service))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("serving the telemetry API")
}

pub(crate) async fn generate(args: GenerateArgs) -> anyhow::Result<()> {
    let options = GenerateOptions {
        world: args.world.config(DEFAULT_TIMELINE_END)?,
        out: args.out,
        truth: args.truth,
        agent: args.agent,
        rates: args.rates.rates()?,
        threads: args.threads,
    };
    let summary =
        tokio::task::spawn_blocking(move || generate_world(&options).map(|s| (s, options)))
            .await??;
    crate::output::print_generate_summary(&summary.0, &summary.1.out);
    Ok(())
}
