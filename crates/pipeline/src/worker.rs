//! The durable label job runner. A job per investigation with feedback; each run looks at what is
//! stored and does the next step — plan the snapshot, wait for captures, add noise, then draft,
//! score and route — so a crash at any point just means the next run picks up where the last one
//! stopped. Every feedback ends in exactly one candidate or one explicit non-candidate state.

use std::sync::Arc;
use std::time::Duration;

use evalmint_model::{
    CandidateLabel, Feedback, Investigation, Provenance, QueryOrigin, Route, Segment,
    SnapshotQuery, Timestamp, Verdict,
};
use evalmint_store::{Clock, FullStore, LabelJob, LabelOutcome};
use jiff::SignedDuration;
use tokio_util::sync::CancellationToken;

use crate::capture::{plan_agent_queries, redact_query};
use crate::config::Config;
use crate::draft::{self, Draft};
use crate::evidence::Evidence;
use crate::metrics::PipelineMetrics;
use crate::{noise, redact, score};

const CLAIM_BATCH: usize = 8;
/// How long a job waiting for captures sleeps unless a finished capture wakes it first.
/// How long before an alert the trouble may have begun: errors earlier than that are the
/// baseline they are compared with.
pub const CHANGE_LEAD: jiff::SignedDuration = jiff::SignedDuration::from_mins(15);
const CAPTURE_WAIT: SignedDuration = SignedDuration::from_secs(30);
/// How often feedback waiting for its trace is checked against its deadline.
const UNJOINED_SWEEP: Duration = Duration::from_secs(30);

/// The metadata key with which a user opts one feedback out of label creation.
pub const OPT_OUT_KEY: &str = "label_opt_out";

/// Runs label jobs until shutdown.
pub struct LabelWorker {
    store: Arc<dyn FullStore>,
    config: Arc<Config>,
    /// The optional LLM drafter; the deterministic drafter stands in when it fails.
    llm: Option<crate::llm::LlmClient>,
    clock: Arc<dyn Clock>,
    metrics: Arc<PipelineMetrics>,
    poll: Duration,
}

/// What one run of a job decided.
enum Step {
    Wait(Timestamp, Option<String>),
    Finish(LabelOutcome),
}

impl LabelWorker {
    pub fn new(
        store: Arc<dyn FullStore>,
        config: Arc<Config>,
        clock: Arc<dyn Clock>,
        metrics: Arc<PipelineMetrics>,
    ) -> Self {
        let llm = config.llm.as_ref().and_then(|llm| {
            crate::llm::LlmClient::new(llm)
                .map(|client| client.with_taxonomy(config.taxonomy.clone()))
                .inspect_err(|e| tracing::warn!(error = %e, "the LLM drafter is off"))
                .ok()
        });
        LabelWorker {
            store,
            config,
            llm,
            clock,
            metrics,
            poll: Duration::from_millis(100),
        }
    }

    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut last_sweep: Option<tokio::time::Instant> = None;
        while !shutdown.is_cancelled() {
            if last_sweep.is_none_or(|at| at.elapsed() >= UNJOINED_SWEEP) {
                last_sweep = Some(tokio::time::Instant::now());
                if let Err(e) = self.end_unjoined_feedback().await {
                    tracing::warn!(error = %e, "ending feedback whose trace never arrived failed");
                }
            }
            let claiming = std::time::Instant::now();
            let claimed = self
                .store
                .claim_label_jobs(self.config.job_lease, CLAIM_BATCH)
                .await;
            self.metrics
                .claimed(crate::metrics::Queue::LabelJobs, claiming.elapsed());
            let jobs = match claimed {
                Ok(jobs) => jobs,
                Err(e) => {
                    tracing::warn!(error = %e, "claiming label jobs failed");
                    Vec::new()
                }
            };
            if jobs.is_empty() {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(self.poll) => {}
                }
                continue;
            }
            // Jobs of one claim are independent investigations: run them side by side.
            let mut running = tokio::task::JoinSet::new();
            for job in jobs {
                let worker = self.clone();
                running.spawn(async move { worker.run_job(&job).await });
            }
            while running.join_next().await.is_some() {}
        }
    }

    /// Ends feedback that named only a span whose trace has not arrived within `trace_wait`: a
    /// label job exists only once feedback is joined to its trace, so without this deadline such
    /// feedback would stay pending forever. Returns how many ended.
    pub async fn end_unjoined_feedback(&self) -> evalmint_store::Result<u64> {
        let wait = self.config.trace_wait;
        let Ok(cutoff) = self.clock.now().checked_sub(wait) else {
            return Ok(0);
        };
        let reason = format!("its trace never arrived within {wait:#}");
        let ended = self.store.end_unjoined_feedback(cutoff, &reason).await?;
        if ended > 0 {
            tracing::info!(
                ended,
                "feedback whose trace never arrived ended as not_candidate"
            );
        }
        Ok(ended)
    }

    /// Runs one job once and stores its decision; failures are retried with backoff.
    pub async fn run_job(&self, job: &LabelJob) {
        let result = match self.step(job).await {
            Ok(Step::Finish(outcome)) => {
                if let Ok(candidate) = &outcome.result {
                    self.metrics.candidate(candidate.route);
                }
                self.store.finish_label_job(job, outcome).await
            }
            Ok(Step::Wait(until, note)) => self.store.defer_label_job(job, until, note).await,
            Err(e) => {
                let backoff = SignedDuration::from_secs(1 << job.attempts.min(6));
                tracing::warn!(error = %e, trace = %job.trace_id, "label job failed; will retry");
                self.store
                    .defer_label_job(job, self.clock.now() + backoff, Some(e.to_string()))
                    .await
            }
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, trace = %job.trace_id, "could not store a label job's outcome");
        }
    }

    async fn step(&self, job: &LabelJob) -> evalmint_store::Result<Step> {
        let now = self.clock.now();
        let not_candidate = |reason: &str| {
            Step::Finish(LabelOutcome {
                result: Err(reason.to_owned()),
                excluded: Vec::new(),
            })
        };
        if !self.config.labelling.allows(&job.tenant) {
            return Ok(not_candidate(
                "the tenant has not opted in to label creation",
            ));
        }
        let Some(investigation) = self.store.investigation(&job.tenant, job.trace_id).await? else {
            if now.duration_since(job.first_queued_at) > self.config.trace_wait {
                return Ok(not_candidate(&format!(
                    "its trace never arrived within {:#}",
                    self.config.trace_wait
                )));
            }
            let backoff = SignedDuration::from_millis(250 * (1 << job.attempts.min(7)));
            return Ok(Step::Wait(
                now + backoff,
                Some("waiting for the trace".to_owned()),
            ));
        };
        let (consenting, excluded): (Vec<&Feedback>, Vec<&Feedback>) =
            investigation.feedback.iter().partition(|f| {
                f.body.metadata.get(OPT_OUT_KEY) != Some(&serde_json::Value::Bool(true))
            });
        let excluded: Vec<_> = excluded
            .into_iter()
            .map(|f| (f.id, "the user opted out of label creation".to_owned()))
            .collect();
        if consenting.is_empty() {
            return Ok(Step::Finish(LabelOutcome {
                result: Err("every feedback opted out of label creation".to_owned()),
                excluded,
            }));
        }

        let snapshot = self.store.snapshot(&job.tenant, job.trace_id).await?;
        if snapshot.is_empty() {
            let planned = plan_agent_queries(&self.config, &investigation, now);
            if !planned.is_empty() {
                self.store
                    .plan_snapshot(&job.tenant, job.trace_id, planned)
                    .await?;
                return Ok(Step::Wait(now + CAPTURE_WAIT, Some("capturing".to_owned())));
            }
        }
        if snapshot.iter().any(|q| !q.status.is_terminal()) {
            return Ok(Step::Wait(now + CAPTURE_WAIT, Some("capturing".to_owned())));
        }
        let results = self.results(job, &snapshot).await?;
        let entities: Vec<String> = investigation
            .tool_calls()
            .flat_map(|c| c.entities.iter().cloned())
            .collect();
        let mut evidence = Evidence::extract(&results, &entities);
        if let Some(fired_at) = investigation.trigger.as_ref().and_then(|t| t.fired_at) {
            evidence.weigh_change(fired_at - CHANGE_LEAD);
        }

        let has_noise = snapshot
            .iter()
            .any(|q| matches!(q.origin, QueryOrigin::Noise { .. }));
        if !has_noise && self.config.noise_queries > 0 {
            let added = noise::expand(&snapshot, &evidence, self.config.noise_queries, now);
            if !added.is_empty() {
                self.store
                    .plan_snapshot(&job.tenant, job.trace_id, added)
                    .await?;
                return Ok(Step::Wait(
                    now + CAPTURE_WAIT,
                    Some("capturing noise".to_owned()),
                ));
            }
        }

        let catalog =
            crate::catalog::catalog_for(&*self.store, &job.tenant, &investigation, &evidence)
                .await?;
        let mut draft = draft::draft(
            &investigation,
            &consenting,
            &evidence,
            &catalog,
            &self.config.taxonomy,
        );
        let mut drafter = (draft::DRAFTER.to_owned(), draft::DRAFTER_VERSION.to_owned());
        if let Some(llm) = &self.llm {
            match crate::llm::draft_with_llm(llm, &investigation, &consenting, &evidence, &draft)
                .await
            {
                Ok(from_llm) => {
                    draft = from_llm;
                    drafter = (llm.drafter_name(), crate::llm::PROMPT_VERSION.to_owned());
                }
                Err(e) => {
                    tracing::info!(error = %e, "LLM draft unusable; keeping the deterministic one")
                }
            }
        }
        let mut scores = score::score(&draft, &evidence, &self.config.taxonomy);
        let deterministic = drafter.0 == draft::DRAFTER;
        if let Some(llm) = self
            .llm
            .as_ref()
            .filter(|_| deterministic && self.validates())
            && draft.ground_truth.is_some()
        {
            match crate::llm::validate_with_llm(llm, &investigation, &consenting, &evidence, &draft)
                .await
            {
                Ok(opinion) => crate::llm::weigh_accuracy(&mut scores.accuracy, &opinion),
                Err(e) => tracing::info!(error = %e, "no second opinion from the LLM"),
            }
        }
        let route = score::route(&draft, &scores, &self.config.thresholds);
        // Reasons quote the draft, which quotes the user's words.
        for score in [
            &mut scores.specificity,
            &mut scores.accuracy,
            &mut scores.thoroughness,
        ] {
            for reason in &mut score.reasons {
                *reason = redact::redact(reason).text;
            }
        }
        let audit = route == Route::Admit
            && score::sampled_for_audit(
                &format!("{}/{}", job.tenant, job.trace_id),
                self.config.audit_fraction,
            );
        let candidate = CandidateLabel {
            id: String::new(),
            investigation_id: job.trace_id,
            version: 0,
            trigger: investigation.trigger.clone().map(|mut t| {
                t.text = redact::redact(&t.text).text;
                t.monitor = t.monitor.map(|m| redact::redact(&m).text);
                t
            }),
            ground_truth: draft.ground_truth.clone().map(|mut truth| {
                truth.statement = redact::redact(&truth.statement).text;
                for text in truth.causal_chain.iter_mut().chain(&mut truth.components) {
                    *text = redact::redact(text).text;
                }
                truth
            }),
            segments: segments(&job.tenant, &investigation, &consenting, &draft),
            snapshot: snapshot
                .into_iter()
                .map(|mut query| {
                    redact_query(&mut query);
                    query
                })
                .collect(),
            scores,
            route,
            audit,
            provenance: Provenance {
                feedback_ids: consenting.iter().map(|f| f.id).collect(),
                drafter: drafter.0,
                drafter_version: drafter.1,
                basis: draft.basis.as_str().to_owned(),
            },
            created_at: now,
        };
        Ok(Step::Finish(LabelOutcome {
            result: Ok(Box::new(candidate)),
            excluded,
        }))
    }

    /// Whether the LLM also gives second opinions on deterministic drafts.
    fn validates(&self) -> bool {
        self.config.llm.as_ref().is_some_and(|llm| llm.validate)
    }

    async fn results(
        &self,
        job: &LabelJob,
        snapshot: &[SnapshotQuery],
    ) -> evalmint_store::Result<Vec<(SnapshotQuery, Option<Vec<u8>>)>> {
        let mut results = Vec::with_capacity(snapshot.len());
        for query in snapshot {
            let bytes = if query.status.has_result() {
                self.store
                    .snapshot_result(&job.tenant, job.trace_id, &query.id)
                    .await?
            } else {
                None
            };
            results.push((query.clone(), bytes));
        }
        Ok(results)
    }
}

fn segments(
    tenant: &evalmint_model::TenantId,
    investigation: &Investigation,
    feedback: &[&Feedback],
    draft: &Draft,
) -> Vec<Segment> {
    let mut segments = vec![Segment {
        facet: "tenant".into(),
        value: tenant.to_string(),
    }];
    let mut push = |facet: &str, value: String| {
        segments.push(Segment {
            facet: facet.to_owned(),
            value: redact::redact(&value).text,
        })
    };
    if let Some(truth) = &draft.ground_truth {
        for component in &truth.components {
            push("service", component.clone());
        }
        if let Some(category) = &truth.category {
            push("category", category.as_str().to_owned());
        }
    }
    if let Some(monitor) = investigation
        .trigger
        .as_ref()
        .and_then(|t| t.monitor.clone())
    {
        push("monitor", monitor);
    }
    if let Some(version) = &investigation.agent.version {
        push("agent_version", version.clone());
    }
    let positive = feedback
        .iter()
        .filter(|f| f.body.verdict == Some(Verdict::Up) || f.body.rating.is_some_and(|r| r >= 4))
        .count();
    let polarity = match positive {
        0 => "negative",
        n if n == feedback.len() => "positive",
        _ => "mixed",
    };
    push("polarity", polarity.to_owned());
    let mut origins: Vec<&str> = feedback.iter().map(|f| f.body.origin.as_str()).collect();
    origins.sort();
    origins.dedup();
    for origin in origins {
        push("origin", origin.to_owned());
    }
    if let Some(recognition) = draft.recognition() {
        push("recognition", recognition.to_owned());
    }
    push(
        "difficulty",
        match draft.method {
            draft::Method::Named => "named",
            draft::Method::Resolved => "resolved",
        }
        .to_owned(),
    );
    segments
}

/// Starts the capturer, the catalog feeder and the label worker as background tasks that stop with `shutdown`. Work
/// a previous (crashed) worker had claimed is released first, so it resumes at once.
pub fn start(
    store: Arc<dyn FullStore>,
    config: Arc<Config>,
    clock: Arc<dyn Clock>,
    metrics: Arc<PipelineMetrics>,
    order: evalmint_store::CaptureOrder,
    shutdown: CancellationToken,
) -> tokio::task::JoinSet<()> {
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(async move {
        match store.release_leases().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(released = n, "resuming work a stopped worker had claimed"),
            Err(e) => tracing::warn!(error = %e, "could not release stale leases"),
        }
        let capturer = Arc::new(crate::capture::Capturer::new(
            store.clone(),
            config.clone(),
            clock.clone(),
            order,
            metrics.clone(),
        ));
        let feeder = crate::catalog::CatalogFeeder::new(store.clone(), config.clone());
        let worker = Arc::new(LabelWorker::new(store, config, clock, metrics));
        tokio::join!(
            capturer.run(shutdown.clone()),
            feeder.run(shutdown.clone()),
            worker.run(shutdown)
        );
    });
    tasks
}
