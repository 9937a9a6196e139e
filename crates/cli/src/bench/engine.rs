//! `evalmint bench sqlite`: the SQLite engine alone inserting the rows the store writes for the
//! benchmark's spans, in the current `steps` layout and the previous one, so the server's cost per
//! span can be read beside the engine's limit.

use std::time::Duration;

use anyhow::Context;
use evalmint_model::TenantId;
use evalmint_store::engine::{EngineRun, StepsLayout, measure_step_inserts};

use super::spans::{SpanShape, encode_batch};
use super::{micros_per, process_cpu_time, row};
use crate::table;

#[derive(Debug, clap::Args)]
pub(crate) struct EngineArgs {
    /// Rows (spans) to insert.
    #[arg(long, default_value_t = 60_000)]
    rows: usize,
    /// Rows per transaction; repeat the option to measure several sizes.
    #[arg(long, default_values_t = [600, 4_096, 6_000])]
    rows_per_commit: Vec<usize>,
    /// Insert the light spans' rows instead of agent spans' rows.
    #[arg(long)]
    light: bool,
}

pub(crate) async fn run(args: EngineArgs) -> anyhow::Result<()> {
    let shape = if args.light {
        SpanShape::Light
    } else {
        SpanShape::Agent
    };
    let body = encode_batch(shape, 0, 0, args.rows);
    let request = evalmint_otlp::decode_request(&body, evalmint_otlp::Encoding::Protobuf)
        .context("decoding the benchmark's own spans")?;
    let steps: Vec<_> = evalmint_otlp::map_request(&request)
        .steps
        .into_iter()
        .map(|m| (m.trace_id, m.step))
        .collect();
    let tenant = TenantId::new("bench").context("a valid tenant")?;

    let mut rows = Vec::new();
    for layout in [StepsLayout::WithoutRowid, StepsLayout::Current] {
        for &per_commit in &args.rows_per_commit {
            let dir = tempfile::tempdir()?;
            let (steps, tenant, path) = (steps.clone(), tenant.clone(), dir.path().to_owned());
            let (run, cpu) = tokio::task::spawn_blocking(move || {
                let cpu_before = process_cpu_time("/proc/self/stat");
                let run = measure_step_inserts(&path, layout, &tenant, steps, per_commit);
                let cpu = cpu_before.and_then(|before| {
                    Some(process_cpu_time("/proc/self/stat")?.saturating_sub(before))
                });
                (run, cpu)
            })
            .await?;
            let run = run?;
            rows.push(describe(layout, per_commit, &run, cpu));
        }
    }
    print!(
        "{}",
        table::render(
            &[
                "steps layout",
                "rows/commit",
                "rows",
                "rows/s",
                "CPU/row",
                "wall/row"
            ],
            &rows
        )
    );
    Ok(())
}

fn describe(
    layout: StepsLayout,
    per_commit: usize,
    run: &EngineRun,
    cpu: Option<Duration>,
) -> Vec<String> {
    let mut cells = row(
        match layout {
            StepsLayout::Current => "rowid + unique index (current)",
            StepsLayout::WithoutRowid => "WITHOUT ROWID (before 0005)",
        },
        per_commit.to_string(),
    );
    cells.push(run.rows.to_string());
    cells.push(format!(
        "{:.0}",
        run.rows as f64 / run.elapsed.as_secs_f64()
    ));
    cells.push(micros_per(cpu, run.rows as u64));
    cells.push(format!(
        "{:.1} µs",
        run.elapsed.as_secs_f64() * 1e6 / run.rows.max(1) as f64
    ));
    cells
}
