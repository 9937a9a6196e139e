//! One evaluation run: every label version, k attempts each, each attempt in its own session
//! with a timeout, at most `concurrency` at a time. An agent that crashes, hangs, floods the
//! tools or answers garbage gives an `error` result and the run goes on.

use std::sync::Arc;
use std::time::{Duration, Instant};

use evalmint_model::{AgentAnswer, Catalog, EvalResult, EvalRun, Outcome, RunStatus, TenantId};
use tokio::sync::Semaphore;

use crate::agent::{Agent, AgentInput, SessionUrls};
use crate::grade::{GradeConfig, grade_answer};
use crate::judge::Judge;
use crate::labels::LabelVersion;
use crate::session::Sessions;

/// How a run goes.
#[derive(Clone)]
pub struct RunConfig {
    pub k: u32,
    pub concurrency: usize,
    pub timeout: Duration,
    pub call_limit: u32,
    pub grade: GradeConfig,
    /// Where the sessions are served, e.g. `http://127.0.0.1:4318`.
    pub base_url: String,
    /// Where the labels came from, recorded with the run: [`crate::labels::ADMITTED`] or a
    /// release id.
    pub label_source: String,
    /// An LLM judge whose verdict joins each graded attempt's grades (advisory: it does not
    /// change the outcome).
    pub judge: Option<Arc<Judge>>,
    /// The stored run this one is compared with, recorded with the run.
    pub baseline: Option<String>,
}

impl std::fmt::Debug for RunConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunConfig")
            .field("k", &self.k)
            .field("concurrency", &self.concurrency)
            .field("timeout", &self.timeout)
            .field("judge", &self.judge.as_ref().map(|j| j.name()))
            .finish_non_exhaustive()
    }
}

/// The URLs of session `sid` under `base`.
pub fn session_urls(base: &str, sid: &str) -> SessionUrls {
    let base = base.trim_end_matches('/');
    SessionUrls {
        mcp: format!("{base}/replay/sessions/{sid}/mcp"),
        http: format!("{base}/replay/sessions/{sid}/tools"),
        prometheus: format!("{base}/replay/sessions/{sid}/prometheus"),
    }
}

/// A new run id: time-ordered and random.
pub fn new_run_id(now: jiff::Timestamp) -> String {
    let mut bytes = [0u8; 4];
    getrandom::fill(&mut bytes).expect("the system's random source");
    format!(
        "run-{}-{}",
        now.strftime("%Y%m%dT%H%M%S"),
        hex::encode(bytes)
    )
}

/// The baseline `run` remembers, when it has one and the tenant still has that run.
pub async fn stored_baseline(
    store: &dyn evalmint_store::PipelineStore,
    tenant: &TenantId,
    run: &EvalRun,
) -> evalmint_store::Result<Option<EvalRun>> {
    match &run.baseline {
        Some(id) => store.eval_run(tenant, id).await,
        None => Ok(None),
    }
}

/// Runs `agent` on `labels`; `progress` is told after every attempt.
#[allow(clippy::too_many_arguments)]
pub async fn execute(
    sessions: Arc<Sessions>,
    tenant: TenantId,
    agent_spec: String,
    agent: Arc<dyn Agent>,
    labels: Vec<LabelVersion>,
    catalog: Arc<Catalog>,
    config: RunConfig,
    progress: Arc<dyn Fn(&EvalResult) + Send + Sync>,
) -> EvalRun {
    let started_at = jiff::Timestamp::now();
    let run_id = new_run_id(started_at);
    let limit = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for label in labels {
        let label = Arc::new(label);
        for attempt in 0..config.k.max(1) {
            let (sessions, tenant, agent, catalog, config, limit, progress, run_id, label) = (
                sessions.clone(),
                tenant.clone(),
                agent.clone(),
                catalog.clone(),
                config.clone(),
                limit.clone(),
                progress.clone(),
                run_id.clone(),
                label.clone(),
            );
            tasks.spawn(async move {
                let _permit = limit.acquire_owned().await.expect("never closed");
                let result = attempt_one(
                    &sessions, tenant, run_id, &*agent, &label, attempt, &catalog, &config,
                )
                .await;
                progress(&result);
                result
            });
        }
    }
    let mut results = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(result) => results.push(result),
            Err(e) => tracing::warn!(error = %e, "an attempt's task failed"),
        }
    }
    results.sort_by(|a, b| (&a.label_id, a.attempt).cmp(&(&b.label_id, b.attempt)));
    EvalRun {
        id: run_id,
        agent: agent_spec,
        label_source: config.label_source.clone(),
        k: config.k.max(1),
        status: RunStatus::Completed,
        error: None,
        started_at,
        finished_at: jiff::Timestamp::now(),
        baseline: config.baseline.clone(),
        results,
    }
}

#[allow(clippy::too_many_arguments)]
async fn attempt_one(
    sessions: &Sessions,
    tenant: TenantId,
    run_id: String,
    agent: &dyn Agent,
    label: &LabelVersion,
    attempt: u32,
    catalog: &Catalog,
    config: &RunConfig,
) -> EvalResult {
    let clock = Instant::now();
    let session = sessions.open(
        tenant,
        Some(run_id),
        label.label_id.clone(),
        label.world.clone(),
        config.call_limit,
    );
    let deadline = jiff::Timestamp::now()
        + jiff::SignedDuration::try_from(config.timeout)
            .unwrap_or(jiff::SignedDuration::from_secs(60));
    let input = AgentInput {
        session: session.id.clone(),
        trigger: label.world.trigger.clone(),
        urls: session_urls(&config.base_url, &session.id),
        deadline,
        attempt,
        label_id: label.label_id.clone(),
    };
    let answered = tokio::time::timeout(config.timeout, agent.investigate(&input)).await;
    let record = sessions.close(&session.id).unwrap_or_default();
    let answer: Result<AgentAnswer, String> = match answered {
        Err(_) => Err(format!(
            "the agent did not answer within {} s",
            config.timeout.as_secs()
        )),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(mut answer)) => {
            // A root cause submitted through the tools fills what the final answer left out.
            if answer.rca.is_none()
                && let Some(submitted) = &record.submitted
            {
                answer.rca = submitted.rca.clone();
            }
            Ok(answer)
        }
    };
    let flooded = record.calls >= config.call_limit
        && record
            .trace
            .iter()
            .any(|s| s.status == evalmint_model::StepStatus::Error);
    let (outcome, reason, grades, answer) = match answer {
        Err(reason) => (Outcome::Error, reason, Vec::new(), None),
        Ok(_) if flooded => (
            Outcome::Error,
            format!(
                "the agent reached the limit of {} tool calls",
                config.call_limit
            ),
            Vec::new(),
            None,
        ),
        Ok(answer) => {
            let (outcome, reason, mut grades) = grade_answer(
                &answer,
                label.ground_truth.as_ref(),
                &record.hits,
                catalog,
                &config.grade,
            );
            if let (Some(judge), Some(truth)) = (&config.judge, label.ground_truth.as_ref()) {
                grades.push(judge.grade(&answer, truth).await);
            }
            (outcome, reason, grades, Some(answer))
        }
    };
    EvalResult {
        label_id: label.label_id.clone(),
        label_version: label.version,
        attempt,
        outcome,
        reason,
        grades,
        segments: label.segments.clone(),
        answer,
        trace: record.trace,
        duration_ms: clock.elapsed().as_millis() as u64,
    }
}
