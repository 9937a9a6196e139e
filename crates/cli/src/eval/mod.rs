//! `evalmint eval`: run a candidate agent on the admitted labels of a data directory, or on a
//! release's pinned label versions (sessions
//! served in-process on a loopback port), list and show stored runs, compare two runs, and gate
//! CI on regressions. Exit codes: 0 fine, 1 a regression or a pass rate under the minimum, 2 the
//! run itself failed.

#[cfg(feature = "sim")]
mod sim_agent;

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use evalmint_eval::agent::AgentFactory;
use evalmint_eval::report;
use evalmint_eval::run::RunConfig;
use evalmint_model::{EvalRun, TenantId};
use evalmint_server::{AppState, ServerConfig};
use evalmint_store::{PipelineStore, ReviewStore, SqliteOptions, SqliteStore, SystemClock};
use tokio_util::sync::CancellationToken;

use crate::DataArgs;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum EvalCommand {
    /// Replay the admitted labels (or a release's) against a candidate agent, grade, store and
    /// report the run.
    Run(RunArgs),
    /// Stored runs, newest first.
    List {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long, default_value = "default")]
        tenant: TenantId,
    },
    /// One stored run's summary, compared with the baseline it was run against (`--json` for
    /// the whole run).
    Show {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long, default_value = "default")]
        tenant: TenantId,
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// One label's history across runs, newest first: agent, version graded, each attempt's
    /// outcome and the graders' reasons.
    History {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long, default_value = "default")]
        tenant: TenantId,
        /// `lbl-<trace id>` (a candidate id or the trace id also name it).
        label: String,
        /// At most this many runs.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Compare run B with baseline run A: per-segment McNemar tests and flipped labels.
    Compare {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long, default_value = "default")]
        tenant: TenantId,
        baseline: String,
        candidate: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    data: DataArgs,
    #[arg(long, default_value = "default")]
    tenant: TenantId,
    /// `http://…`, `cmd:…`, `sim:v1` or `sim:v2`. The reference agents call the session's plain
    /// HTTP tools; `sim:v1+mcp` / `sim:v2+mcp` make the same agent call them through the
    /// session's MCP face (streamable HTTP) instead, with the same tools and arguments.
    #[arg(long)]
    agent: String,
    /// Evaluate on this release's label versions instead of the current admitted labels.
    #[arg(long)]
    release: Option<String>,
    /// Attempts per label.
    #[arg(long, default_value_t = 1)]
    k: u32,
    /// Attempts running at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Time an agent has for one attempt.
    #[arg(long, default_value = "60s", value_parser = crate::positive_duration)]
    timeout: jiff::SignedDuration,
    /// Tool calls one attempt may make.
    #[arg(long, default_value_t = evalmint_eval::session::DEFAULT_CALL_LIMIT)]
    call_limit: u32,
    /// Tolerance of the onset grader.
    #[arg(long, default_value = "15m", value_parser = crate::positive_duration)]
    onset_tolerance: jiff::SignedDuration,
    /// A stored run to compare with.
    #[arg(long)]
    baseline: Option<String>,
    /// Exit 1 when a segment regresses against the baseline (McNemar p < 0.05).
    #[arg(long)]
    fail_on_regression: bool,
    /// Exit 1 when the overall pass rate is below this (0-1).
    #[arg(long)]
    min_pass_rate: Option<f64>,
    /// Print the summary as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Write JUnit XML here (one test case per label).
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Write a self-contained HTML report here.
    #[arg(long)]
    html: Option<PathBuf>,
    /// Also grade each answer with an LLM judge (the `[llm]` section of the configuration: any
    /// OpenAI-compatible chat-completions endpoint; every text sent is redacted). Its verdict is
    /// an extra grade, `judge`, recorded with `llm:<model>/<prompt version>` and shown in every
    /// report; it is advisory: the deterministic graders alone decide pass or fail.
    #[arg(long)]
    judge: bool,
    #[command(flatten)]
    config: crate::serve::PipelineArgs,
}

fn open(data: &DataArgs) -> anyhow::Result<Arc<SqliteStore>> {
    let store = SqliteStore::open(&data.dir, SqliteOptions::default())
        .with_context(|| format!("opening the store in {}", data.dir.display()))?;
    Ok(Arc::new(store))
}

/// Runs one `eval` command and returns its exit code.
pub(crate) async fn run(command: EvalCommand) -> u8 {
    let outcome = match command {
        EvalCommand::Run(args) => {
            return run_eval(args).await.unwrap_or_else(|e| {
                eprintln!("error: the run failed: {e:#}");
                2
            });
        }
        EvalCommand::List { data, tenant } => list(&data, &tenant).await,
        EvalCommand::Show {
            data,
            tenant,
            id,
            json,
        } => show(&data, &tenant, &id, json).await,
        EvalCommand::History {
            data,
            tenant,
            label,
            limit,
            json,
        } => history(&data, &tenant, &label, limit, json).await,
        EvalCommand::Compare {
            data,
            tenant,
            baseline,
            candidate,
            json,
        } => compare(&data, &tenant, &baseline, &candidate, json).await,
    };
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            2
        }
    }
}

async fn load(store: &dyn PipelineStore, tenant: &TenantId, id: &str) -> anyhow::Result<EvalRun> {
    store
        .eval_run(tenant, id)
        .await?
        .with_context(|| format!("no run {id:?} for tenant {:?}", tenant.as_str()))
}

/// Round-trip times of the tool calls of the agents the binary brings, as they saw them.
pub(crate) type ToolTimings = std::sync::Mutex<Vec<Duration>>;

fn agents(client: reqwest::Client, timings: Arc<ToolTimings>) -> Option<AgentFactory> {
    #[cfg(feature = "sim")]
    {
        let factory: AgentFactory =
            Arc::new(move |spec: &str| sim_agent::from_spec(spec, client.clone(), timings.clone()));
        Some(factory)
    }
    #[cfg(not(feature = "sim"))]
    {
        let _ = (client, timings);
        None
    }
}

/// The labels a run reads, and the source it records: the release's pinned label versions, or
/// the tenant's current admitted labels.
pub(crate) async fn labels_for(
    store: &dyn ReviewStore,
    tenant: &TenantId,
    release: Option<&str>,
) -> anyhow::Result<(Vec<evalmint_eval::labels::LabelVersion>, String)> {
    match release {
        Some(id) => {
            let labels = evalmint_eval::labels::release(store, tenant, id)
                .await?
                .with_context(|| {
                    format!(
                        "no release {id:?} for tenant {:?} (see `evalmint release list`)",
                        tenant.as_str()
                    )
                })?;
            if labels.is_empty() {
                bail!("release {id:?} has no labels");
            }
            Ok((labels, id.to_owned()))
        }
        None => {
            let labels = evalmint_eval::labels::admitted(store, tenant).await?;
            if labels.is_empty() {
                bail!("tenant {:?} has no admitted labels", tenant.as_str());
            }
            Ok((labels, evalmint_eval::labels::ADMITTED.to_owned()))
        }
    }
}

/// How a run replays its labels, besides where their sessions are served.
pub(crate) struct Replay {
    pub agent: String,
    pub k: u32,
    pub concurrency: usize,
    pub timeout: Duration,
    pub call_limit: u32,
    pub onset_tolerance: jiff::SignedDuration,
    /// Grades each answer once more, advisorily (`--judge`).
    pub judge: Option<Arc<evalmint_eval::judge::Judge>>,
    /// Where the reference agents record each tool call's round-trip time.
    pub tool_timings: Arc<ToolTimings>,
    /// The stored run the new one is compared with, recorded with it.
    pub baseline: Option<String>,
}

/// Runs `replay.agent` on `labels` (read by [`labels_for`], which also names their source), its
/// sessions served by the router that holds `sessions` at `base_url`; `eval run` and the demo
/// share it.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn replay(
    store: &SqliteStore,
    tenant: &TenantId,
    replay: &Replay,
    labels: Vec<evalmint_eval::labels::LabelVersion>,
    label_source: String,
    sessions: Arc<evalmint_eval::Sessions>,
    base_url: String,
    progress: Arc<dyn Fn(&evalmint_model::EvalResult) + Send + Sync>,
) -> anyhow::Result<EvalRun> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(replay.concurrency.max(1) * 2)
        .build()?;
    let agent = evalmint_eval::agent::from_spec(
        &replay.agent,
        agents(client, replay.tool_timings.clone()).as_ref(),
    )
    .map_err(anyhow::Error::msg)?;
    let catalog = Arc::new(store.catalog(tenant).await?);
    let config = RunConfig {
        k: replay.k.max(1),
        concurrency: replay.concurrency.max(1),
        timeout: replay.timeout,
        call_limit: replay.call_limit,
        grade: evalmint_eval::grade::GradeConfig {
            onset_tolerance: replay.onset_tolerance,
            ..Default::default()
        },
        base_url,
        label_source,
        judge: replay.judge.clone(),
        baseline: replay.baseline.clone(),
    };
    Ok(evalmint_eval::run::execute(
        sessions,
        tenant.clone(),
        replay.agent.clone(),
        agent,
        labels,
        catalog,
        config,
        progress,
    )
    .await)
}

async fn run_eval(args: RunArgs) -> anyhow::Result<u8> {
    if let Some(min) = args.min_pass_rate
        && !(0.0..=1.0).contains(&min)
    {
        bail!("--min-pass-rate {min} is outside 0-1");
    }
    let judge = if args.judge {
        Some(Arc::new(judge(&args.config)?))
    } else {
        None
    };
    let store = open(&args.data)?;
    let baseline = match &args.baseline {
        Some(id) => Some(load(&*store, &args.tenant, id).await?),
        None => None,
    };
    // The labels are read before anything is served, so a wrong release id fails at once.
    let (labels, label_source) = labels_for(&*store, &args.tenant, args.release.as_deref()).await?;

    // The sessions are served by the API's own router on a loopback port.
    let state = AppState::new(store.clone(), ServerConfig::default());
    let sessions = state.sessions.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the replay port")?;
    let base_url = format!("http://{}", listener.local_addr()?);
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(evalmint_server::serve(
        listener,
        state,
        Arc::new(SystemClock),
        shutdown.clone(),
    ));

    let total = labels.len() as u64 * u64::from(args.k.max(1));
    let done = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let show_progress = !args.json && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let counter = done.clone();
    let progress: Arc<dyn Fn(&evalmint_model::EvalResult) + Send + Sync> = Arc::new(move |_| {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if show_progress {
            let width = 30;
            let filled = (n * width / total.max(1)) as usize;
            eprint!(
                "\r[{}{}] {n}/{total}",
                "#".repeat(filled),
                " ".repeat(width as usize - filled)
            );
            if n == total {
                eprintln!();
            }
        }
    });
    let setup = Replay {
        agent: args.agent.clone(),
        k: args.k,
        concurrency: args.concurrency,
        timeout: Duration::try_from(args.timeout).unwrap_or(Duration::from_secs(60)),
        call_limit: args.call_limit,
        onset_tolerance: args.onset_tolerance,
        judge,
        tool_timings: Arc::default(),
        baseline: baseline.as_ref().map(|run| run.id.clone()),
    };
    let run = replay(
        &store,
        &args.tenant,
        &setup,
        labels,
        label_source,
        sessions,
        base_url,
        progress,
    )
    .await;
    shutdown.cancel();
    let _ = server.await;
    let run = run?;
    store
        .store_eval_run(&args.tenant, run.clone())
        .await
        .context("storing the run")?;

    let mut summary = report::summarise(&run, baseline.as_ref());
    summary.tool_latency =
        report::ToolLatency::of(&setup.tool_timings.lock().expect("timings lock"));
    if let Some(path) = &args.junit {
        std::fs::write(path, report::junit(&run))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.html {
        std::fs::write(path, report::html(&summary))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    print_summary(&summary, args.json)?;
    let mut code = 0;
    if args.fail_on_regression && baseline.is_some() {
        for row in summary.regressions() {
            eprintln!(
                "regression: {} fell from {:.1}% to {:.1}% (McNemar p = {:.4})",
                row.segment,
                row.baseline.map_or(0.0, |b| b.rate) * 100.0,
                row.rate.rate * 100.0,
                row.p_value.unwrap_or(1.0)
            );
            code = 1;
        }
    }
    if let Some(min) = args.min_pass_rate
        && summary.overall().rate.rate < min
    {
        eprintln!(
            "the pass rate {:.1}% is below the minimum {:.1}%",
            summary.overall().rate.rate * 100.0,
            min * 100.0
        );
        code = 1;
    }
    Ok(code)
}

/// The judge `--judge` asks for: the configuration's `[llm]` model.
fn judge(config: &crate::serve::PipelineArgs) -> anyhow::Result<evalmint_eval::judge::Judge> {
    let llm = config.load()?.llm.context(
        "--judge needs an enabled [llm] section (enabled = true, endpoint, model) in the configuration (--config or ./evalmint.toml)",
    )?;
    let client = evalmint_pipeline::llm::LlmClient::new(&llm).context("the judge's LLM client")?;
    Ok(evalmint_eval::judge::Judge::new(client))
}

fn print_summary(summary: &report::Summary, json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, summary)?;
        writeln!(out)?;
    } else {
        write!(out, "{}", report::table(summary))?;
    }
    Ok(())
}

async fn list(data: &DataArgs, tenant: &TenantId) -> anyhow::Result<u8> {
    let store = open(data)?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<32} {:<12} {:>7} {:>9}  {:<28} started",
        "run", "agent", "labels", "pass", "labels from"
    )?;
    for run in store.eval_runs(tenant, 100).await? {
        let summary = report::summarise(&run, None);
        writeln!(
            out,
            "{:<32} {:<12} {:>7} {:>8.1}%  {:<28} {}",
            run.id,
            run.agent,
            summary.labels,
            summary.overall().rate.rate * 100.0,
            run.label_source,
            run.started_at
        )?;
    }
    Ok(0)
}

async fn show(data: &DataArgs, tenant: &TenantId, id: &str, json: bool) -> anyhow::Result<u8> {
    let store = open(data)?;
    let run = load(&*store, tenant, id).await?;
    if json {
        let mut out = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, &run)?;
        writeln!(out)?;
        return Ok(0);
    }
    let baseline = evalmint_eval::run::stored_baseline(&*store, tenant, &run).await?;
    if let (Some(id), None) = (&run.baseline, &baseline) {
        eprintln!("its baseline run {id:?} is no longer stored; showing the run alone");
    }
    print_summary(&report::summarise(&run, baseline.as_ref()), false)?;
    Ok(0)
}

/// The label id `id` names: `lbl-<trace id>`, a candidate id `cand-<trace id>-v<n>` or the
/// trace id itself.
fn label_id_of(id: &str) -> anyhow::Result<String> {
    let hex = id
        .strip_prefix("lbl-")
        .or_else(|| {
            id.strip_prefix("cand-")
                .and_then(|rest| rest.rsplit_once("-v").map(|(trace, _)| trace))
        })
        .unwrap_or(id);
    let trace: evalmint_model::TraceId = hex
        .parse()
        .map_err(|_| anyhow::anyhow!("{id:?} names no label (expected lbl-<32 hex digits>)"))?;
    Ok(evalmint_model::label_id(trace))
}

async fn history(
    data: &DataArgs,
    tenant: &TenantId,
    id: &str,
    limit: usize,
    json: bool,
) -> anyhow::Result<u8> {
    if limit == 0 {
        bail!("--limit must be at least 1");
    }
    let label_id = label_id_of(id)?;
    let store = open(data)?;
    let runs = store.label_history(tenant, &label_id, limit).await?;
    let mut out = std::io::stdout().lock();
    let flaky = evalmint_model::is_flaky(&runs);
    if json {
        let value = serde_json::json!({ "label_id": label_id, "flaky": flaky, "runs": runs });
        serde_json::to_writer_pretty(&mut out, &value)?;
        writeln!(out)?;
        return Ok(0);
    }
    write!(out, "{}", history_table(&label_id, &runs))?;
    Ok(0)
}

/// A label's history as a terminal table: one line per run, then one per attempt that did not
/// pass with its graders' reasons.
fn history_table(label_id: &str, runs: &[evalmint_model::LabelRun]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    if runs.is_empty() {
        let _ = writeln!(out, "no run has graded {label_id}");
        return out;
    }
    let passed = runs.iter().filter(|r| r.passed()).count();
    let verdict = if evalmint_model::is_flaky(runs) {
        format!("FLAKY: passed in {passed} of {} runs", runs.len())
    } else if passed == runs.len() {
        format!("passed in all {} runs", runs.len())
    } else {
        format!("failed in all {} runs", runs.len())
    };
    let _ = writeln!(out, "label {label_id}  {verdict}");
    let _ = writeln!(
        out,
        "{:<32} {:<12} {:<20} {:>7}  {:<7} {:<12} labels from",
        "run", "agent", "started", "version", "verdict", "attempts"
    );
    for run in runs {
        let attempts: Vec<&str> = run.attempts.iter().map(|a| a.outcome.as_str()).collect();
        let _ = writeln!(
            out,
            "{:<32} {:<12} {:<20} {:>7}  {:<7} {:<12} {}",
            run.run_id,
            run.agent,
            run.started_at.strftime("%Y-%m-%d %H:%M:%S").to_string(),
            format!("v{}", run.label_version),
            if run.passed() { "pass" } else { "fail" },
            attempts.join(","),
            run.label_source
        );
        for attempt in &run.attempts {
            if attempt.outcome == evalmint_model::Outcome::Pass {
                continue;
            }
            let _ = writeln!(
                out,
                "    attempt {} {}: {}",
                attempt.attempt,
                attempt.outcome.as_str(),
                attempt.reason
            );
            for grade in attempt.grades.iter().filter(|g| !g.passed) {
                let _ = writeln!(out, "      {}: {}", grade.grader, grade.reason);
            }
        }
    }
    out
}

async fn compare(
    data: &DataArgs,
    tenant: &TenantId,
    baseline: &str,
    candidate: &str,
    json: bool,
) -> anyhow::Result<u8> {
    let store = open(data)?;
    let base = load(&*store, tenant, baseline).await?;
    let run = load(&*store, tenant, candidate).await?;
    print_summary(&report::summarise(&run, Some(&base)), json)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use evalmint_model::{AttemptOutcome, Grade, LabelRun, Outcome};

    use super::*;

    fn entry(run: &str, outcome: Outcome) -> LabelRun {
        LabelRun {
            run_id: run.into(),
            agent: "sim:v1".into(),
            label_source: "admitted".into(),
            started_at: jiff::Timestamp::UNIX_EPOCH,
            label_version: 2,
            attempts: vec![AttemptOutcome {
                attempt: 0,
                outcome,
                reason: format!("{} reason", outcome.as_str()),
                grades: vec![Grade {
                    grader: "component".into(),
                    passed: outcome == Outcome::Pass,
                    score: 0.0,
                    reason: "answered checkout, expected payments-db".into(),
                    errored: false,
                }],
            }],
        }
    }

    #[test]
    fn a_label_is_named_by_its_label_id_candidate_id_or_trace_id() {
        let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
        let label = format!("lbl-{trace}");
        for id in [label.clone(), format!("cand-{trace}-v3"), trace.to_owned()] {
            assert_eq!(label_id_of(&id).unwrap(), label);
        }
        assert!(label_id_of("lbl-nope").is_err());
    }

    #[test]
    fn the_history_table_flags_a_flaky_label_and_gives_the_failing_graders_reasons() {
        let runs = [entry("run-2", Outcome::Fail), entry("run-1", Outcome::Pass)];
        let table = history_table("lbl-x", &runs);
        assert!(
            table.starts_with("label lbl-x  FLAKY: passed in 1 of 2 runs"),
            "{table}"
        );
        let run2 = table.find("run-2").unwrap();
        assert!(run2 < table.find("run-1").unwrap(), "newest first: {table}");
        assert!(table.contains("attempt 0 fail: fail reason"), "{table}");
        assert!(
            table.contains("component: answered checkout, expected payments-db"),
            "{table}"
        );
        let steady = history_table("lbl-x", &runs[1..]);
        assert!(steady.contains("passed in all 1 runs"), "{steady}");
        assert!(history_table("lbl-x", &[]).contains("no run has graded lbl-x"));
    }
}
