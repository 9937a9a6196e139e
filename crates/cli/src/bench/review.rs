//! `evalmint bench review`: the review UI and releases at scale. Fills a fresh store with
//! candidates awaiting review and admitted labels (through the store's own pipeline methods),
//! serves the API and UI on loopback, signs in like a browser and times the queue page and the
//! candidate page, then a release of every label: its creation and its JSONL export.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use evalmint_model::{
    CandidateLabel, CaptureStatus, Category, GroundTruth, Provenance, Route, Score, Scores,
    Segment, SignalSource, SnapshotQuery, TenantId, Timestamp, TraceId,
};
use evalmint_server::{AppState, ServerConfig};
use evalmint_store::{
    BlobStore, CaptureOrder, CaptureOutcome, FullStore, LabelOutcome, PostgresOptions,
    PostgresStore, SqliteOptions, SqliteStore,
};
use tokio_util::sync::CancellationToken;

#[derive(Debug, clap::Args)]
pub(crate) struct ReviewArgs {
    /// Candidates waiting for review (routed to review, insufficient or sampled for audit).
    #[arg(long, default_value_t = 10_000)]
    candidates: usize,
    /// Admitted labels (each one label version), all of which go into the release.
    #[arg(long, default_value_t = 10_000)]
    labels: usize,
    /// Candidates whose snapshot gets three queries with frozen results (a metric series, log
    /// rows, a failed capture); the candidate page is timed on these.
    #[arg(long, default_value_t = 1_000)]
    with_snapshot: usize,
    /// Requests timed per page.
    #[arg(long, default_value_t = 500)]
    requests: usize,
    /// Measure on Postgres (postgres://user@host:5432/dbname) instead of the embedded store: the
    /// run works in a new schema of that database, which it leaves behind for inspection.
    #[arg(long, value_name = "URL")]
    database: Option<String>,
}

const KEY: &str = "em_bench_review_key_0123456789abcdef";

fn trace(n: usize) -> TraceId {
    let mut bytes = [0u8; 16];
    bytes[0] = 0x5e;
    bytes[8..].copy_from_slice(&(n as u64 + 1).to_be_bytes());
    TraceId::from_bytes(&bytes).expect("16 bytes")
}

fn draft(n: usize, route: Route, audit: bool) -> CandidateLabel {
    let service = format!("svc-{}", n % 37);
    let score = |v: f64| Score {
        value: v,
        reasons: vec![format!("{v:+.2} bench reason for {service}")],
    };
    let level = ((n * 7919) % 100) as f64 / 100.0;
    CandidateLabel {
        id: String::new(),
        investigation_id: trace(n),
        version: 0,
        trigger: None,
        ground_truth: (route != Route::Insufficient).then(|| GroundTruth {
            statement: format!("{service}: connection pool exhausted after a deploy (case {n})"),
            components: vec![service.clone()],
            category: Some(Category::BUILTIN[n % Category::BUILTIN.len()].clone()),
            onset: None,
            causal_chain: vec![
                "checkout error rate above 5%".into(),
                format!("{service} pool"),
            ],
            evidence: vec!["q-metric".into()],
            reason: None,
            entities: vec![],
        }),
        snapshot: vec![],
        segments: vec![
            Segment {
                facet: "service".into(),
                value: service.clone(),
            },
            Segment {
                facet: "polarity".into(),
                value: if n.is_multiple_of(5) {
                    "positive"
                } else {
                    "negative"
                }
                .into(),
            },
            Segment {
                facet: "agent_version".into(),
                value: format!("v{}", n % 3),
            },
        ],
        scores: Scores {
            specificity: score(level),
            accuracy: score(1.0 - level / 2.0),
            thoroughness: score(0.7),
        },
        route,
        audit,
        provenance: Provenance {
            feedback_ids: vec![],
            drafter: "bench".into(),
            drafter_version: "1".into(),
            basis: "correction".into(),
        },
        created_at: Timestamp::UNIX_EPOCH,
    }
}

fn queries(now: Timestamp) -> Vec<SnapshotQuery> {
    ["q-metric", "q-logs", "q-failed"]
        .iter()
        .map(|id| {
            SnapshotQuery::pending(
                (*id).to_owned(),
                "prom".into(),
                SignalSource::Metrics,
                "query_metrics".into(),
                format!("rate(errors_total[{id}])"),
                now + jiff::SignedDuration::from_hours(1),
                now,
            )
        })
        .collect()
}

fn result_of(id: &str) -> Option<Vec<u8>> {
    match id {
        "q-metric" => {
            let values: Vec<serde_json::Value> = (0..120)
                .map(|i| {
                    serde_json::json!([
                        1_700_000_000 + i * 15,
                        format!("{}", (i % 17) as f64 * 0.3)
                    ])
                })
                .collect();
            Some(
                serde_json::json!({"status": "success", "data": {"resultType": "matrix",
                    "result": [{"metric": {"service": "checkout"}, "values": values}]}})
                .to_string()
                .into_bytes(),
            )
        }
        "q-logs" => {
            let rows: Vec<serde_json::Value> = (0..40)
                .map(|i| {
                    serde_json::json!({"time": i, "service": "checkout", "level": "error",
                    "message": format!("pool timeout after 30s <conn {i}>")})
                })
                .collect();
            Some(serde_json::Value::from(rows).to_string().into_bytes())
        }
        _ => None,
    }
}

/// Writes `plan` (trace n → route, audit) as feedback plus a finished label job each.
async fn fill(
    store: &Arc<dyn FullStore>,
    tenant: &TenantId,
    plan: Vec<(usize, Route, bool)>,
) -> anyhow::Result<()> {
    for chunk in plan.chunks(512) {
        let mut tasks = tokio::task::JoinSet::new();
        for &(n, _, _) in chunk {
            let (store, tenant) = (store.clone(), tenant.clone());
            tasks.spawn(async move {
                let body = serde_json::json!({"investigation_id": trace(n).to_string(),
                    "verdict": "down", "correction": "the pool, not the frontend"});
                let submission: evalmint_model::FeedbackSubmission = serde_json::from_value(body)?;
                let valid = submission
                    .validate(evalmint_model::FeedbackOrigin::Api)
                    .map_err(|e| anyhow::anyhow!("{e:?}"))?;
                store.submit_feedback(&tenant, valid).await?;
                anyhow::Ok(())
            });
        }
        while let Some(done) = tasks.join_next().await {
            done??;
        }
        let by_trace: std::collections::HashMap<TraceId, (usize, Route, bool)> =
            chunk.iter().map(|p| (trace(p.0), *p)).collect();
        let mut finished = 0;
        while finished < chunk.len() {
            let jobs = store
                .claim_label_jobs(jiff::SignedDuration::from_mins(10), 1024)
                .await?;
            if jobs.is_empty() {
                bail!("label jobs went missing");
            }
            let mut tasks = tokio::task::JoinSet::new();
            for job in jobs {
                let Some(&(n, route, audit)) = by_trace.get(&job.trace_id) else {
                    continue;
                };
                let store = store.clone();
                tasks.spawn(async move {
                    let label = draft(n, route, audit);
                    store
                        .finish_label_job(
                            &job,
                            LabelOutcome {
                                result: Ok(Box::new(label)),
                                excluded: vec![],
                            },
                        )
                        .await
                });
                finished += 1;
            }
            while let Some(done) = tasks.join_next().await {
                done??;
            }
        }
    }
    Ok(())
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted
        .get(((sorted.len().max(1) - 1) as f64 * q).round() as usize)
        .copied()
        .unwrap_or_default()
}

fn hidden(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    html[start..].split('"').next().map(str::to_owned)
}

async fn timed_pages(
    client: &reqwest::Client,
    cookie: &str,
    urls: &[String],
) -> anyhow::Result<Vec<Duration>> {
    let mut times = Vec::with_capacity(urls.len());
    for url in urls {
        let started = Instant::now();
        let response = client
            .get(url)
            .header(reqwest::header::COOKIE, cookie)
            .send()
            .await?;
        let status = response.status();
        let _ = response.bytes().await?;
        times.push(started.elapsed());
        if !status.is_success() {
            bail!("{url} answered {status}");
        }
    }
    times.sort();
    Ok(times)
}

pub(crate) async fn run(args: ReviewArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn FullStore> = match &args.database {
        None => Arc::new(SqliteStore::open(dir.path(), SqliteOptions::default())?),
        Some(url) => {
            let schema = format!(
                "bench_review_{}_{}",
                std::process::id(),
                Timestamp::now().as_second()
            );
            // Filling sends hundreds of writes at once: they wait for a connection, not fail.
            let options = PostgresOptions {
                schema: Some(schema.clone()),
                pool_wait: Duration::from_secs(60),
                ..PostgresOptions::new(BlobStore::open(dir.path().join("blobs"))?)
            };
            let store = PostgresStore::connect(url, options)
                .await
                .context("connecting to --database")?;
            println!(
                "measuring on Postgres, in schema {schema} (DROP SCHEMA {schema} CASCADE removes it)"
            );
            Arc::new(store)
        }
    };
    let tenant = TenantId::default_tenant();
    store
        .replace_named_api_key(
            &tenant,
            "bench reviewer",
            evalmint_model::ScopeSet::default().with(evalmint_model::Scope::Admin),
            KEY,
        )
        .await?;
    let started = Instant::now();
    let mut plan = Vec::with_capacity(args.candidates + args.labels);
    for n in 0..args.candidates {
        let (route, audit) = match n % 20 {
            0 => (Route::Insufficient, false),
            1 | 2 => (Route::Admit, true),
            _ => (Route::Review, false),
        };
        plan.push((n, route, audit));
    }
    for n in args.candidates..args.candidates + args.labels {
        plan.push((n, Route::Admit, false));
    }
    fill(&store, &tenant, plan).await?;
    // Snapshots with frozen results for the first candidates of the queue.
    let now = Timestamp::now();
    for n in 0..args.with_snapshot.min(args.candidates) {
        store.plan_snapshot(&tenant, trace(n), queries(now)).await?;
    }
    loop {
        let tasks = store
            .claim_captures(
                CaptureOrder::EarliestDeadline,
                jiff::SignedDuration::from_mins(10),
                1024,
            )
            .await?;
        if tasks.is_empty() {
            break;
        }
        let mut writes = tokio::task::JoinSet::new();
        for task in tasks {
            let store = store.clone();
            writes.spawn(async move {
                let result = result_of(&task.query.id);
                let outcome = CaptureOutcome {
                    status: if result.is_some() {
                        CaptureStatus::Captured
                    } else {
                        CaptureStatus::Failed
                    },
                    result,
                    truncated: false,
                    error: Some("source unreachable".into())
                        .filter(|_| task.query.id == "q-failed"),
                    retry_at: None,
                };
                store.record_capture(task, outcome).await
            });
        }
        while let Some(done) = writes.join_next().await {
            done??;
        }
    }
    println!(
        "filled the store: {} candidates awaiting review, {} admitted labels, {} with snapshots ({:.1} s)",
        args.candidates,
        args.labels,
        args.with_snapshot.min(args.candidates),
        started.elapsed().as_secs_f64()
    );

    let shutdown = CancellationToken::new();
    let state = AppState::new(store.clone(), ServerConfig::default());
    let url =
        super::harness::serve_on_loopback(evalmint_server::app(state), shutdown.clone()).await?;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    // Sign in like a browser: the sign-in cookie and its token, then the key.
    let signin = client.get(format!("{url}/signin")).send().await?;
    let signin_cookie = signin
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .context("no sign-in cookie")?
        .to_owned();
    let token = hidden(&signin.text().await?, "csrf").context("no sign-in token")?;
    let answer = client
        .post(format!("{url}/signin"))
        .header(reqwest::header::COOKIE, &signin_cookie)
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(format!("csrf={token}&api_key={KEY}"))
        .send()
        .await?;
    let cookie = answer
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("evalmint_session="))
        .and_then(|v| v.split(';').next())
        .context("sign-in made no session")?
        .to_owned();

    let queue_urls: Vec<String> = (0..args.requests)
        .map(|i| match i % 4 {
            0 => format!("{url}/review"),
            1 => format!(
                "{url}/review?route=review&offset={}",
                (i * 50) % args.candidates.max(1)
            ),
            2 => format!("{url}/review?segment=service%3Dsvc-{}", i % 37),
            _ => format!("{url}/review?min_score=0.3&max_score=0.8"),
        })
        .collect();
    let queue = timed_pages(&client, &cookie, &queue_urls).await?;
    let candidate_urls: Vec<String> = (0..args.requests)
        .map(|i| {
            let n = (i * 7) % args.with_snapshot.min(args.candidates).max(1);
            format!("{url}/review/cand-{}-v1", trace(n))
        })
        .collect();
    let candidate = timed_pages(&client, &cookie, &candidate_urls).await?;
    println!(
        "queue page ({} requests over {} candidates, 50 rows, with and without filters): p50 {:.1} ms, p99 {:.1} ms",
        queue.len(),
        args.candidates,
        quantile(&queue, 0.5).as_secs_f64() * 1000.0,
        quantile(&queue, 0.99).as_secs_f64() * 1000.0
    );
    println!(
        "candidate page ({} requests, 3 snapshot queries each: chart, log table, failed): p50 {:.1} ms, p99 {:.1} ms",
        candidate.len(),
        quantile(&candidate, 0.5).as_secs_f64() * 1000.0,
        quantile(&candidate, 0.99).as_secs_f64() * 1000.0
    );

    let started = Instant::now();
    let release: serde_json::Value = client
        .post(format!("{url}/api/v1/releases"))
        .bearer_auth(KEY)
        .json(&serde_json::json!({"name": "bench"}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let created = started.elapsed();
    let id = release["id"].as_str().context("no release id")?;
    let started = Instant::now();
    let export = client
        .get(format!("{url}/api/v1/releases/{id}/export"))
        .bearer_auth(KEY)
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    let exported = started.elapsed();
    println!(
        "release of {} labels: created in {:.2} s (selection, content hash, coverage); export {:.1} MB JSONL in {:.2} s ({} bytes per label)",
        release["labels"],
        created.as_secs_f64(),
        export.len() as f64 / 1e6,
        exported.as_secs_f64(),
        export.len() / release["labels"].as_u64().unwrap_or(1).max(1) as usize
    );
    shutdown.cancel();
    Ok(())
}
