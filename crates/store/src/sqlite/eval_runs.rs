//! The evaluation runs' tables: one row per run, its body in the versioned encoding, and one
//! row per (run, label) for the labels' histories.

use evalmint_model::{EvalRun, LabelRun, RunStatus, TenantId};
use rusqlite::{Connection, OptionalExtension, params};

use super::rows::nanos;
use crate::Result;
use crate::encoding::{decode, encode};

pub(crate) fn store(conn: &Connection, tenant: &TenantId, run: &EvalRun) -> Result<()> {
    let status = match run.status {
        RunStatus::Completed => "completed",
        RunStatus::Failed => "failed",
    };
    conn.prepare_cached(
        "INSERT INTO eval_runs (tenant, id, started_at, agent, status, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (tenant, id) DO UPDATE SET
             started_at = excluded.started_at, agent = excluded.agent,
             status = excluded.status, body = excluded.body",
    )?
    .execute(params![
        tenant.as_str(),
        run.id,
        nanos(run.started_at),
        run.agent,
        status,
        encode(run)?,
    ])?;
    conn.prepare_cached("DELETE FROM eval_label_runs WHERE tenant = ?1 AND run_id = ?2")?
        .execute(params![tenant.as_str(), run.id])?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO eval_label_runs
             (tenant, label_id, started_at, run_id, agent, label_source, label_version, attempts)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for (label_id, entry) in run.label_runs() {
        insert.execute(params![
            tenant.as_str(),
            label_id,
            nanos(entry.started_at),
            entry.run_id,
            entry.agent,
            entry.label_source,
            entry.label_version,
            crate::labels::encode_attempts(&entry.attempts)?,
        ])?;
    }
    Ok(())
}

pub(crate) fn label_history(
    conn: &Connection,
    tenant: &TenantId,
    label_id: &str,
    limit: usize,
) -> Result<Vec<LabelRun>> {
    let mut statement = conn.prepare_cached(
        "SELECT run_id, agent, label_source, started_at, label_version, attempts
         FROM eval_label_runs WHERE tenant = ?1 AND label_id = ?2
         ORDER BY started_at DESC, run_id DESC LIMIT ?3",
    )?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = statement
        .query_map(params![tenant.as_str(), label_id, limit], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, u32>(4)?,
                r.get::<_, String>(5)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(
            |(run_id, agent, label_source, started_at, label_version, attempts)| {
                Ok(LabelRun {
                    run_id,
                    agent,
                    label_source,
                    started_at: crate::convert::timestamp(started_at),
                    label_version,
                    attempts: crate::labels::decode_attempts(&attempts)?,
                })
            },
        )
        .collect()
}

pub(crate) fn one(conn: &Connection, tenant: &TenantId, id: &str) -> Result<Option<EvalRun>> {
    let body: Option<String> = conn
        .prepare_cached("SELECT body FROM eval_runs WHERE tenant = ?1 AND id = ?2")?
        .query_row(params![tenant.as_str(), id], |r| r.get(0))
        .optional()?;
    body.map(|b| decode(&b)).transpose()
}

pub(crate) fn newest(conn: &Connection, tenant: &TenantId, limit: usize) -> Result<Vec<EvalRun>> {
    let mut statement = conn.prepare_cached(
        "SELECT body FROM eval_runs WHERE tenant = ?1 ORDER BY started_at DESC, id DESC LIMIT ?2",
    )?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let bodies = statement
        .query_map(params![tenant.as_str(), limit], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    bodies.iter().map(|b| decode(b)).collect()
}
