//! The evaluation runs' table: one row per run, its body in the versioned encoding.

use evalmint_model::{EvalRun, RunStatus, TenantId};
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
    Ok(())
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
