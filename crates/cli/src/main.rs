//! The `evalmint` binary: parses arguments, sets up logging, runs one command and decides the
//! exit code in one place.

#[cfg(feature = "sim")]
mod bench;
mod catalog;
mod client;
#[cfg(feature = "sim")]
mod demo;
mod eval;
mod feedback;
mod keys;
mod labels;
mod replay;
mod review;
mod serve;
mod store_args;
mod table;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// evalmint turns user feedback on an AI agent's investigations into evaluation labels.
#[derive(Debug, Parser)]
#[command(name = "evalmint", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP API (OTLP trace ingest, feedback, investigations, labels) and the label
    /// pipeline.
    Serve(serve::ServeArgs),
    /// The whole story on the embedded store: the server, simulated telemetry, a few hundred
    /// incidents investigated by agent v1 with simulated feedback, labels; then a tour.
    #[cfg(feature = "sim")]
    Demo(demo::DemoArgs),
    /// Run only the label pipeline: capture snapshots, draft, score and route candidates.
    Worker(serve::WorkerArgs),
    /// Apply the schema migrations a store lacks (`serve` and `worker` also do on start).
    Migrate(store_args::MigrateArgs),
    /// Candidate labels on a server: the label set, one label.
    Labels {
        #[command(subcommand)]
        command: labels::LabelsCommand,
    },
    /// The review queue on a server: list, show, approve, edit, reject.
    Review {
        #[command(subcommand)]
        command: review::ReviewCommand,
    },
    /// Releases on a server: create, list, show, diff, export, import.
    Release {
        #[command(subcommand)]
        command: review::ReleaseCommand,
    },
    /// Calibrate the validator against the reviewers' decisions and propose thresholds.
    Calibrate(review::CalibrateArgs),
    /// Feedback on a server: erase one user's feedback on request.
    Feedback {
        #[command(subcommand)]
        command: feedback::FeedbackCommand,
    },
    /// The entity catalog on a server: list it, import a static catalog file.
    Catalog {
        #[command(subcommand)]
        command: catalog::CatalogCommand,
    },
    /// Evaluation runs: replay the label set against a candidate agent, compare runs, gate CI.
    Eval {
        #[command(subcommand)]
        command: eval::EvalCommand,
    },
    /// Replay sessions: serve one's tools as MCP on stdio.
    Replay {
        #[command(subcommand)]
        command: replay::ReplayCommand,
    },
    /// Manage API keys in a data directory (works with the server stopped or running).
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
    /// The world simulator: incidents, telemetry, reference agents and users.
    #[cfg(feature = "sim")]
    Sim {
        #[command(subcommand)]
        command: evalmint_sim::SimCommand,
    },
    /// Measure throughput and latency.
    #[cfg(feature = "sim")]
    Bench {
        #[command(subcommand)]
        command: bench::BenchCommand,
    },
}

/// Where the data lives, shared by commands that open the store.
#[derive(Debug, clap::Args)]
struct DataArgs {
    /// Data directory (SQLite database and blobs).
    #[arg(
        long = "data",
        env = "EVALMINT_DATA",
        default_value = "./evalmint-data"
    )]
    dir: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(&anyhow::anyhow!("cannot start the async runtime: {e}")),
    };
    let outcome = runtime.block_on(async move {
        match cli.command {
            // The eval gate decides its own exit codes: 1 regression, 2 the run failed.
            Command::Eval { command } => Ok(Some(eval::run(command).await)),
            other => run_command(other).await.map(|()| None),
        }
    });
    match outcome {
        Ok(Some(code)) => ExitCode::from(code),
        Ok(None) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

async fn run_command(command: Command) -> anyhow::Result<()> {
    {
        match command {
            Command::Eval { .. } => unreachable!("handled by main"),
            Command::Serve(args) => serve::run(args).await,
            Command::Worker(args) => serve::worker(args).await,
            Command::Migrate(args) => store_args::migrate(args).await,
            #[cfg(feature = "sim")]
            Command::Demo(args) => demo::run(args).await,
            Command::Labels { command } => labels::run(command).await,
            Command::Review { command } => review::review(command).await,
            Command::Release { command } => review::release(command).await,
            Command::Calibrate(args) => review::calibrate(args).await,
            Command::Feedback { command } => feedback::run(command).await,
            Command::Catalog { command } => catalog::run(command).await,
            Command::Keys { command } => keys::run(command).await,
            Command::Replay { command } => replay::run(command).await,
            #[cfg(feature = "sim")]
            Command::Sim { command } => evalmint_sim::run(command).await,
            #[cfg(feature = "sim")]
            Command::Bench { command } => bench::run(command).await,
        }
    }
}

/// A positive duration argument such as `30s`, `15m`, `12h` or `14d`.
pub(crate) fn positive_duration(text: &str) -> Result<jiff::SignedDuration, String> {
    evalmint_model::parse_duration(text)
        .filter(|d| d.is_positive())
        .ok_or_else(|| format!("{text:?} is not a positive duration like 30s, 15m, 12h or 14d"))
}

fn fail(error: &anyhow::Error) -> ExitCode {
    eprintln!("error: {error:#}");
    ExitCode::FAILURE
}

/// Whether the command failed writing its own output to a closed pipe (`evalmint … | head`).
/// Only an error that is itself an IO error counts: a broken pipe deeper in the chain is a
/// connection that failed (a server hanging up on a request), which must be reported.
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .downcast_ref::<std::io::Error>()
        .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("EVALMINT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

#[cfg(test)]
mod tests {
    /// Every place that reads a duration — CLI flags, `evalmint.toml`, the simulator's API —
    /// accepts and refuses the same forms, with the same values.
    #[test]
    fn durations_read_alike_everywhere() {
        let forms = [
            "30s",
            "15m",
            "2h",
            "7d",
            "1w",
            "1h30m",
            "1h 30m",
            "90min",
            "15",
            "",
            "abc",
            "0s",
            "-5m",
            "3 parsecs",
        ];
        for text in forms {
            let cli = super::positive_duration(text).ok();
            // The simulator is linked only with the `sim` feature.
            #[cfg(feature = "sim")]
            {
                let sim = evalmint_sim::telemetry::parse_duration_secs(text)
                    .ok()
                    .map(jiff::SignedDuration::from_secs);
                assert_eq!(cli, sim, "{text:?}: CLI and simulator disagree");
            }
            let config = evalmint_pipeline::config::Config::parse(&format!(
                "[pipeline]\ntrace_wait = {text:?}\n"
            ))
            .ok()
            .map(|c| c.trace_wait);
            assert_eq!(cli, config, "{text:?}: CLI and configuration disagree");
        }
        assert_eq!(
            super::positive_duration("1h30m"),
            Ok(jiff::SignedDuration::from_mins(90))
        );
    }
}
