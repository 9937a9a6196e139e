//! A seedable synthetic production world for demos, tests and benchmarks.

/// `evalmint sim …` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum SimCommand {
    /// Drive incidents, agent traces and user feedback against a running server.
    Run,
}

/// Runs one `evalmint sim` subcommand.
pub async fn run(command: SimCommand) -> anyhow::Result<()> {
    match command {
        SimCommand::Run => anyhow::bail!("the simulator is not built yet"),
    }
}
