//! `cargo run --release -p evalmint-sim --example generate -- --incidents 10000 --seed 1 --out DIR`:
//! the same as `evalmint sim generate`, without building the rest of the workspace.

use clap::Parser;

#[derive(Debug, Parser)]
struct Args {
    #[command(flatten)]
    generate: evalmint_sim::GenerateArgs,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    evalmint_sim::run(evalmint_sim::SimCommand::Generate(args.generate)).await
}
