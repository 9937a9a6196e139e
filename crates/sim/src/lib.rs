//! A seedable synthetic production world for demos, tests and benchmarks: a topology with a call
//! graph, faults whose symptoms climb it, telemetry with retention served over HTTP, reference SRE
//! agents that investigate and emit OTLP traces, and simulated users who give feedback. The true
//! root causes go to a truth file and never to evalmint.

pub mod agent;
mod cli;
pub mod faults;
pub mod generate;
pub mod otlp;
mod output;
pub mod promql;
pub mod recorded;
mod rng;
pub mod run;
pub mod scenario;
pub mod signals;
pub mod telemetry;
pub mod tools;
pub mod topology;
pub mod users;
pub mod world;

pub use cli::{FeedbackRateArgs, GenerateArgs, RunArgs, TelemetryArgs};

/// `evalmint sim …` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum SimCommand {
    /// Drive incidents, agent traces and user feedback against a running server.
    Run(RunArgs),
    /// Serve the simulated world's telemetry API (metrics, logs, events, traces, topology).
    Telemetry(TelemetryArgs),
    /// Generate incidents, agent traces, feedback and truth to disk, without any server.
    Generate(GenerateArgs),
}

/// Runs one `evalmint sim` subcommand.
pub async fn run(command: SimCommand) -> anyhow::Result<()> {
    match command {
        SimCommand::Run(args) => cli::run(args).await,
        SimCommand::Telemetry(args) => cli::telemetry(args).await,
        SimCommand::Generate(args) => cli::generate(args).await,
    }
}
