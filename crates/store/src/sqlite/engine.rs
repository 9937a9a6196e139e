//! The SQLite engine's own cost for the rows the store writes on ingest, without the server, the
//! queue or the decoding around it: the limit the store's write path is measured against.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use evalmint_model::{Step, TenantId, TraceId};
use rusqlite::{Connection, TransactionBehavior, params};

use super::rows::internal;
use super::schema;
use super::writer::StepRow;
use crate::Result;

/// Which layout of the `steps` table to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepsLayout {
    /// The schema the store uses now.
    Current,
    /// The schema before migration 0005: `steps` as a `WITHOUT ROWID` table keyed by
    /// (tenant, trace, span).
    WithoutRowid,
}

/// What one measurement did.
#[derive(Debug, Clone, Copy)]
pub struct EngineRun {
    pub rows: usize,
    pub commits: usize,
    /// Wall time of the inserts and commits only; rows are serialized before the clock starts.
    pub elapsed: Duration,
}

/// Creates a fresh database in `dir` with `layout`, configured as the store's writer is (WAL,
/// `synchronous=FULL`), and inserts `steps` for `tenant` as the store's ingest does: one step row
/// each (the tool result inline) and one investigation upsert per trace and commit, committing
/// every `rows_per_commit` rows.
pub fn measure_step_inserts(
    dir: &Path,
    layout: StepsLayout,
    tenant: &TenantId,
    steps: Vec<(TraceId, Step)>,
    rows_per_commit: usize,
) -> Result<EngineRun> {
    let mut conn = Connection::open(dir.join("engine.db"))?;
    schema::configure_writer(&conn)?;
    match layout {
        StepsLayout::Current => schema::migrate(&mut conn)?,
        StepsLayout::WithoutRowid => schema::migrate_before(&mut conn, 5)?,
    }
    let rows: Vec<(TraceId, [u8; 8], StepRow)> = steps
        .into_iter()
        .map(|(trace, step)| Ok((trace, *step.span_id.as_bytes(), StepRow::of(step)?)))
        .collect::<Result<_>>()?;
    let rows_per_commit = rows_per_commit.max(1);

    let started = Instant::now();
    let mut commits = 0;
    for group in rows.chunks(rows_per_commit) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut insert_step = tx.prepare_cached(
                "INSERT OR REPLACE INTO steps (tenant, trace_id, span_id, body, result_inline, result_blob)
                 VALUES (?1, ?2, ?3, ?4, ?5, NULL)",
            )?;
            let mut touch_investigation = tx.prepare_cached(
                "INSERT INTO investigations (tenant, trace_id, first_seen, last_seen) VALUES (?1, ?2, 0, 0)
                 ON CONFLICT (tenant, trace_id) DO UPDATE SET last_seen = excluded.last_seen",
            )?;
            let mut traces = HashSet::new();
            for (trace, span, row) in group {
                insert_step.execute(params![
                    tenant.as_str(),
                    &trace.as_bytes()[..],
                    &span[..],
                    row.body,
                    row.result
                ])?;
                if traces.insert(*trace) {
                    touch_investigation.execute(params![tenant.as_str(), &trace.as_bytes()[..]])?;
                }
            }
        }
        tx.commit().map_err(internal)?;
        commits += 1;
    }
    Ok(EngineRun {
        rows: rows.len(),
        commits,
        elapsed: started.elapsed(),
    })
}
