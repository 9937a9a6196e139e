//! What the UI's pages show, shaped for their templates: queue rows, the candidate page with
//! its snapshot results read into charts (metric series as SVG polylines) and tables (log rows),
//! release coverage bars, the calibration report, and evaluation runs (per-segment pass-rate
//! bars against a baseline). Text goes into templates unescaped here and
//! is escaped by askama there.

use askama::Template;
use evalmint_eval::report::summarise;
use evalmint_model::calibration::Calibration;
use evalmint_model::release::Release;
use evalmint_model::{
    CandidateLabel, CaptureStatus, Category, GroundTruth, Investigation, QueryOrigin, RejectReason,
    SnapshotQuery,
};
use evalmint_model::{EvalRun, LabelRun};
use evalmint_store::QueueItem;

use super::Frame;
use crate::error::ApiError;
use crate::routes::review::{QueueParams, ReviewItem};

#[derive(Template)]
#[template(path = "signin.html")]
pub(crate) struct SigninPage {
    pub frame: Frame,
    pub error: String,
}

#[derive(Template)]
#[template(path = "message.html")]
pub(crate) struct MessagePage {
    pub frame: Frame,
    pub title: String,
    pub message: String,
}

#[derive(Template)]
#[template(path = "decided_row.html")]
pub(crate) struct DecidedRow {
    pub id: String,
    pub action: String,
    pub version: u32,
}

pub(crate) struct Row {
    n: usize,
    id: String,
    short_id: String,
    route: String,
    component: String,
    category: String,
    scores: String,
    statement: String,
    version: u32,
    approvable: bool,
}

pub(crate) struct FilterView {
    route: String,
    segment: String,
    min_score: String,
    max_score: String,
}

#[derive(Template)]
#[template(path = "queue.html")]
pub(crate) struct QueuePage {
    frame: Frame,
    total: u64,
    routes: Vec<(&'static str, &'static str)>,
    filter: FilterView,
    rows: Vec<Row>,
}

fn route_of(c: &CandidateLabel) -> String {
    if c.audit {
        "audit".to_owned()
    } else {
        c.route.as_str().to_owned()
    }
}

fn short(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        format!("{}…", text.chars().take(max - 1).collect::<String>())
    }
}

pub(crate) fn queue(
    frame: Frame,
    params: &QueueParams,
    items: Vec<QueueItem>,
    total: u64,
) -> QueuePage {
    let rows = items
        .into_iter()
        .enumerate()
        .map(|(n, item)| {
            let c = item.candidate;
            let truth = c.ground_truth.as_ref();
            Row {
                n,
                short_id: short(&c.id, 22),
                route: route_of(&c),
                component: truth
                    .and_then(|t| t.components.first().cloned())
                    .unwrap_or_default(),
                category: truth
                    .and_then(|t| t.category.as_ref())
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                scores: format!(
                    "{:.2} / {:.2} / {:.2}",
                    c.scores.specificity.value,
                    c.scores.accuracy.value,
                    c.scores.thoroughness.value
                ),
                statement: truth.map(|t| short(&t.statement, 90)).unwrap_or_default(),
                version: item.label_version,
                approvable: truth.is_some(),
                id: c.id,
            }
        })
        .collect();
    let number = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    QueuePage {
        frame,
        total,
        routes: vec![
            ("", "all"),
            ("review", "review"),
            ("insufficient", "insufficient"),
            ("audit", "audit sample"),
        ],
        filter: FilterView {
            route: params.route.clone().unwrap_or_default(),
            segment: params.segment.clone().unwrap_or_default(),
            min_score: number(params.min_score),
            max_score: number(params.max_score),
        },
        rows,
    }
}

pub(crate) struct FeedbackView {
    verdict: String,
    origin: String,
    text: String,
}

pub(crate) struct ScoreView {
    name: &'static str,
    value: String,
    reasons: Vec<String>,
}

pub(crate) struct EditView {
    statement: String,
    components: String,
    category: String,
    onset: String,
    causal_chain: String,
}

pub(crate) struct Chart {
    label: String,
    points: String,
    min: String,
    max: String,
}

pub(crate) struct QueryView {
    n: usize,
    id: String,
    short: String,
    evidence: bool,
    origin: String,
    status: String,
    source: String,
    query: String,
    charts: Vec<Chart>,
    columns: Vec<String>,
    rows: Vec<Vec<String>>,
    text: String,
}

pub(crate) struct HistoryView {
    version: u32,
    what: String,
    when: String,
    changes: Vec<(String, String, String)>,
}

#[derive(Template)]
#[template(path = "candidate.html")]
pub(crate) struct CandidatePage {
    frame: Frame,
    c: CandidateLabel,
    route: String,
    version: u32,
    error: String,
    open: String,
    trigger: String,
    conclusion: String,
    feedback: Vec<FeedbackView>,
    truth: Option<GroundTruth>,
    scores: Vec<ScoreView>,
    edit: EditView,
    categories: Vec<String>,
    reasons: Vec<&'static str>,
    queries: Vec<QueryView>,
    history: Vec<HistoryView>,
}

fn value_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "-".to_owned(),
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(items) => {
            items.iter().map(value_text).collect::<Vec<_>>().join(", ")
        }
        other => other.to_string(),
    }
}

/// Metric series of a Prometheus-style answer (`data.result[].values`), at most four.
fn charts(json: &serde_json::Value) -> Vec<Chart> {
    let Some(series) = json.pointer("/data/result").and_then(|r| r.as_array()) else {
        return Vec::new();
    };
    series
        .iter()
        .filter_map(|s| {
            let values = s.get("values")?.as_array()?;
            let points: Vec<(f64, f64)> = values
                .iter()
                .filter_map(|p| {
                    let p = p.as_array()?;
                    let t = p.first()?.as_f64()?;
                    let v = match p.get(1)? {
                        serde_json::Value::String(s) => s.parse().ok()?,
                        other => other.as_f64()?,
                    };
                    v.is_finite().then_some((t, v))
                })
                .collect();
            if points.len() < 2 {
                return None;
            }
            let (t0, t1) = (points[0].0, points[points.len() - 1].0);
            let lo = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
            let hi = points.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
            let (tw, vh) = ((t1 - t0).max(1e-9), (hi - lo).max(1e-9));
            let polyline = points
                .iter()
                .map(|(t, v)| {
                    format!(
                        "{:.1},{:.1}",
                        (t - t0) / tw * 396.0 + 2.0,
                        116.0 - (v - lo) / vh * 112.0
                    )
                })
                .collect::<Vec<_>>()
                .join(" ");
            let label = s
                .get("metric")
                .and_then(|m| m.as_object())
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={}", value_text(v)))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            Some(Chart {
                label: short(&label, 120),
                points: polyline,
                min: format!("{lo:.3}"),
                max: format!("{hi:.3}"),
            })
        })
        .take(4)
        .collect()
}

/// Rows of a log-like answer: an array of objects, or one under `rows`, `logs`, `events` or
/// `data.result`.
fn table(json: &serde_json::Value) -> (Vec<String>, Vec<Vec<String>>) {
    let rows = ["/rows", "/logs", "/events", "/data/result", ""]
        .iter()
        .find_map(|p| json.pointer(p).and_then(|v| v.as_array()))
        .filter(|rows| {
            rows.iter()
                .all(|r| r.is_object() && r.get("values").is_none())
        });
    let Some(rows) = rows.filter(|r| !r.is_empty()) else {
        return (Vec::new(), Vec::new());
    };
    let mut columns: Vec<String> = Vec::new();
    for row in rows.iter().take(20) {
        for key in row.as_object().into_iter().flat_map(|o| o.keys()) {
            if !columns.contains(key) && columns.len() < 8 {
                columns.push(key.clone());
            }
        }
    }
    let cells = rows
        .iter()
        .take(50)
        .map(|row| {
            columns
                .iter()
                .map(|c| short(&row.get(c).map(value_text).unwrap_or_default(), 200))
                .collect()
        })
        .collect();
    (columns, cells)
}

fn origin_text(origin: &QueryOrigin) -> String {
    match origin {
        QueryOrigin::Agent => "agent".to_owned(),
        QueryOrigin::Reviewer => "reviewer".to_owned(),
        QueryOrigin::Noise { reason } => format!("noise: {reason}"),
    }
}

fn query_view(
    n: usize,
    query: SnapshotQuery,
    status: CaptureStatus,
    result: Option<Vec<u8>>,
    evidence: &[String],
) -> QueryView {
    let json = result
        .as_deref()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok());
    let charts = json.as_ref().map(charts).unwrap_or_default();
    let (columns, rows) = match &json {
        Some(j) if charts.is_empty() => table(j),
        _ => (Vec::new(), Vec::new()),
    };
    let text = match (&result, charts.is_empty() && columns.is_empty()) {
        (Some(bytes), true) => short(&String::from_utf8_lossy(bytes), 2000),
        _ => String::new(),
    };
    QueryView {
        n,
        evidence: evidence.contains(&query.id),
        short: short(&query.id, 24),
        origin: origin_text(&query.origin),
        status: match (&query.last_error, status) {
            (Some(e), CaptureStatus::Failed | CaptureStatus::Expired) => {
                format!("{} ({})", status.as_str(), short(e, 80))
            }
            _ => status.as_str().to_owned(),
        },
        source: format!("{} / {}", query.source_name, query.tool_name),
        query: query.query,
        id: query.id,
        charts,
        columns,
        rows,
        text,
    }
}

/// What the candidate page reads besides the review item.
/// The ground truth a new edit changes: that of the latest version of this candidate, if a
/// reviewer edited it, otherwise the candidate's own.
fn truth_to_edit(item: &ReviewItem) -> Option<GroundTruth> {
    item.versions
        .last()
        .filter(|v| v.version.candidate_id == item.candidate.id)
        .and_then(|v| v.version.ground_truth.clone())
        .or_else(|| item.candidate.ground_truth.clone())
}

fn edit_view(truth: Option<&GroundTruth>) -> EditView {
    EditView {
        statement: truth.map(|t| t.statement.clone()).unwrap_or_default(),
        components: truth.map(|t| t.components.join(", ")).unwrap_or_default(),
        category: truth
            .and_then(|t| t.category.as_ref())
            .map(ToString::to_string)
            .unwrap_or_default(),
        onset: truth
            .and_then(|t| t.onset)
            .map(|o| o.to_string())
            .unwrap_or_default(),
        causal_chain: truth.map(|t| t.causal_chain.join("\n")).unwrap_or_default(),
    }
}

/// Which decision this inline form makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InlineKind {
    Edit,
    Reject,
}

impl InlineKind {
    pub(crate) fn action(self) -> &'static str {
        match self {
            InlineKind::Edit => "edit",
            InlineKind::Reject => "reject",
        }
    }
}

/// The fields of an inline form that a refused decision named.
#[derive(Default)]
pub(crate) struct Invalid {
    statement: bool,
    components: bool,
    category: bool,
    onset: bool,
    reason: bool,
    note: bool,
}

/// An edit or reject form opened in the queue, in a row of its own right under the candidate's
/// row (`row`), which a recorded decision replaces.
#[derive(Template)]
#[template(path = "inline_form.html")]
pub(crate) struct InlineForm {
    csrf: String,
    id: String,
    row: usize,
    version: u32,
    action: &'static str,
    edit: EditView,
    categories: Vec<String>,
    reasons: Vec<&'static str>,
    reason: String,
    note: String,
    errors: Vec<String>,
    invalid: Invalid,
}

/// A fresh inline form for the candidate of `item`, shown in the queue's row `row`.
pub(crate) fn inline_form(
    csrf: String,
    item: &ReviewItem,
    row: usize,
    kind: InlineKind,
    categories: &[Category],
) -> InlineForm {
    InlineForm {
        csrf,
        id: item.candidate.id.clone(),
        row,
        version: item.version,
        action: kind.action(),
        edit: edit_view(truth_to_edit(item).as_ref()),
        categories: categories.iter().map(ToString::to_string).collect(),
        reasons: RejectReason::ALL.iter().map(|r| r.as_str()).collect(),
        reason: String::new(),
        note: String::new(),
        errors: Vec::new(),
        invalid: Invalid::default(),
    }
}

/// What a reviewer submitted in an inline form, to show it again with why it was refused.
pub(crate) struct Submitted {
    pub id: String,
    pub row: usize,
    pub version: u32,
    pub kind: InlineKind,
    pub statement: String,
    pub components: String,
    pub category: String,
    pub onset: String,
    pub reason: String,
    pub note: String,
}

/// The inline form again, as submitted, with the decision's error: every named field listed and
/// marked. A stale version is named with the label's current one, which the form then carries,
/// so submitting again is a deliberate decision on the current version.
pub(crate) fn inline_form_refused(
    csrf: String,
    submitted: Submitted,
    error: &ApiError,
    categories: &[Category],
) -> InlineForm {
    let mut invalid = Invalid::default();
    let mut version = submitted.version;
    let errors = match error {
        ApiError::InvalidRequest { fields, .. } | ApiError::Unprocessable { fields, .. }
            if !fields.is_empty() =>
        {
            for f in fields {
                match f.field.strip_prefix("ground_truth.").unwrap_or(f.field) {
                    "statement" => invalid.statement = true,
                    "components" => invalid.components = true,
                    "category" => invalid.category = true,
                    "onset" => invalid.onset = true,
                    "reason" => invalid.reason = true,
                    "note" => invalid.note = true,
                    // A change of no field names the first.
                    "ground_truth" => invalid.statement = true,
                    _ => {}
                }
            }
            fields.iter().map(ToString::to_string).collect()
        }
        ApiError::Stale {
            current_version,
            current_candidate,
        } => {
            if *current_candidate == submitted.id {
                version = *current_version;
            }
            vec![format!(
                "{error}: it changed since this page was loaded; check the candidate, then submit \
                 again to decide on the current version"
            )]
        }
        other => vec![other.to_string()],
    };
    InlineForm {
        csrf,
        id: submitted.id,
        row: submitted.row,
        version,
        action: submitted.kind.action(),
        edit: EditView {
            statement: submitted.statement,
            components: submitted.components,
            category: submitted.category,
            onset: submitted.onset,
            causal_chain: String::new(),
        },
        categories: categories.iter().map(ToString::to_string).collect(),
        reasons: RejectReason::ALL.iter().map(|r| r.as_str()).collect(),
        reason: submitted.reason,
        note: submitted.note,
        errors,
        invalid,
    }
}

pub(crate) struct CandidateData {
    pub investigation: Option<Investigation>,
    pub feedback: Vec<evalmint_model::Feedback>,
    /// The shown snapshot's queries with their live capture status and frozen result.
    pub results: Vec<(SnapshotQuery, CaptureStatus, Option<Vec<u8>>)>,
}

pub(crate) fn candidate(
    frame: Frame,
    item: ReviewItem,
    data: CandidateData,
    categories: &[Category],
    open: &str,
    error: &str,
) -> CandidatePage {
    let CandidateData {
        investigation,
        feedback,
        results,
    } = data;
    let truth = truth_to_edit(&item);
    let c = item.candidate;
    let evidence = truth
        .as_ref()
        .map(|t| t.evidence.clone())
        .unwrap_or_default();
    let edit = edit_view(truth.as_ref());
    let trigger = c
        .trigger
        .as_ref()
        .or(investigation.as_ref().and_then(|i| i.trigger.as_ref()))
        .map(|t| t.text.clone())
        .unwrap_or_else(|| "-".to_owned());
    let conclusion = investigation
        .as_ref()
        .and_then(|i| i.conclusion.clone())
        .unwrap_or_else(|| "-".to_owned());
    let feedback = feedback
        .into_iter()
        .map(|f| FeedbackView {
            verdict: f
                .body
                .verdict
                .map(|v| v.as_str().to_owned())
                .or(f.body.rating.map(|r| format!("rating {r}")))
                .unwrap_or_default(),
            origin: f.body.origin.as_str().to_owned(),
            text: f.body.correction.clone().unwrap_or_default(),
        })
        .collect();
    let score = |name: &'static str, s: &evalmint_model::Score| ScoreView {
        name,
        value: format!("{:.2}", s.value),
        reasons: s.reasons.clone(),
    };
    let scores = vec![
        score("specificity", &c.scores.specificity),
        score("accuracy", &c.scores.accuracy),
        score("thoroughness", &c.scores.thoroughness),
    ];
    let queries = results
        .into_iter()
        .enumerate()
        .map(|(n, (q, status, bytes))| query_view(n, q, status, bytes, &evidence))
        .collect();
    let history = item
        .versions
        .into_iter()
        .rev()
        .map(|v| HistoryView {
            version: v.version.version,
            what: match &v.version.decision {
                Some(d) => format!(
                    "{} by {}{}",
                    d.action.as_str(),
                    d.reviewer,
                    d.reason
                        .map(|r| format!(" ({})", r.as_str()))
                        .unwrap_or_default()
                ),
                None => "admitted by the validator".to_owned(),
            },
            when: v.version.created_at.to_string(),
            changes: v
                .changes
                .iter()
                .map(|ch| {
                    (
                        ch.field.clone(),
                        short(&value_text(&ch.before), 300),
                        short(&value_text(&ch.after), 300),
                    )
                })
                .collect(),
        })
        .collect();
    CandidatePage {
        frame,
        route: route_of(&c),
        version: item.version,
        error: error.to_owned(),
        open: open.to_owned(),
        trigger,
        conclusion,
        feedback,
        truth,
        scores,
        edit,
        categories: categories.iter().map(ToString::to_string).collect(),
        reasons: RejectReason::ALL.iter().map(|r| r.as_str()).collect(),
        queries,
        history,
        c,
    }
}

pub(crate) struct ReleaseRow {
    id: String,
    name: String,
    labels: u64,
    negative: String,
    created: String,
}

#[derive(Template)]
#[template(path = "releases.html")]
pub(crate) struct ReleasesPage {
    frame: Frame,
    releases: Vec<ReleaseRow>,
    error: String,
}

pub(crate) fn releases(frame: Frame, releases: Vec<Release>, error: &str) -> ReleasesPage {
    ReleasesPage {
        frame,
        error: error.to_owned(),
        releases: releases
            .into_iter()
            .map(|r| ReleaseRow {
                negative: format!("{:.0}%", r.coverage.negative_share * 100.0),
                created: r.created_at.to_string(),
                labels: r.labels,
                name: r.name,
                id: r.id,
            })
            .collect(),
    }
}

pub(crate) struct Bar {
    y: u32,
    label: String,
    traffic_width: String,
    label_width: String,
    traffic: u64,
    labels: u64,
}

#[derive(Template)]
#[template(path = "release.html")]
pub(crate) struct ReleasePage {
    frame: Frame,
    id: String,
    name: String,
    labels: u64,
    erased: u64,
    investigations: u64,
    with_feedback: u64,
    negative: u64,
    positive: u64,
    filters: String,
    chart_height: u32,
    bars: Vec<Bar>,
    negative_width: String,
    positive_width: String,
    under: Vec<(String, String, Vec<String>)>,
}

pub(crate) fn release(frame: Frame, release: Release) -> ReleasePage {
    let coverage = release.coverage;
    let mut segments = coverage.segments.clone();
    segments.sort_by(|a, b| {
        b.investigation_share
            .total_cmp(&a.investigation_share)
            .then(a.facet.cmp(&b.facet))
    });
    let bars: Vec<Bar> = segments
        .iter()
        .take(30)
        .enumerate()
        .map(|(i, s)| Bar {
            y: u32::try_from(i).unwrap_or(0) * 20 + 2,
            label: short(&format!("{}={}", s.facet, s.value), 40),
            traffic_width: format!("{:.1}", s.investigation_share * 480.0),
            label_width: format!("{:.1}", s.label_share * 480.0),
            traffic: s.investigations,
            labels: s.labels,
        })
        .collect();
    ReleasePage {
        frame,
        chart_height: u32::try_from(bars.len()).unwrap_or(0) * 20 + 6,
        bars,
        negative_width: format!("{:.1}", coverage.negative_share * 400.0),
        positive_width: format!("{:.1}", coverage.positive_share * 400.0),
        under: coverage
            .under_covered
            .iter()
            .map(|u| {
                (
                    format!("{}={}", u.facet, u.value),
                    format!("{:.1} pts", u.gap * 100.0),
                    u.suggestions.clone(),
                )
            })
            .collect(),
        filters: if release.filters.is_empty() {
            "none".to_owned()
        } else {
            release
                .filters
                .iter()
                .map(|f| format!("{}={}", f.facet, f.value))
                .collect::<Vec<_>>()
                .join(", ")
        },
        id: release.id,
        name: release.name,
        labels: release.labels,
        erased: release.erased,
        investigations: coverage.investigations,
        with_feedback: coverage.with_feedback,
        negative: coverage.negative,
        positive: coverage.positive,
    }
}

#[derive(Template)]
#[template(path = "calibration.html")]
pub(crate) struct CalibrationPage {
    frame: Frame,
    target: f64,
    decisions: u64,
    precision: String,
    interval: String,
    audited: u64,
    dimensions: Vec<(String, String, String, String)>,
    proposal: String,
}

pub(crate) fn calibration(frame: Frame, report: Calibration) -> CalibrationPage {
    let number = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.3}"));
    CalibrationPage {
        frame,
        target: report.target_precision,
        decisions: report.decisions,
        precision: number(report.auto_admit.precision),
        interval: report
            .auto_admit
            .wilson_95
            .as_ref()
            .map_or_else(|| "-".to_owned(), |i| format!("{:.3}-{:.3}", i.low, i.high)),
        audited: report.auto_admit.audited,
        dimensions: report
            .dimensions
            .iter()
            .map(|d| {
                (
                    d.dimension.to_owned(),
                    format!("{:.2}", d.threshold),
                    number(d.agreement),
                    number(d.kappa),
                )
            })
            .collect(),
        proposal: report
            .proposal
            .as_ref()
            .map(|p| p.as_config(report.target_precision))
            .unwrap_or_default(),
    }
}

pub(crate) struct RunRow {
    id: String,
    agent: String,
    /// Empty for the admitted labels; else the release id the labels came from.
    release: String,
    labels: u64,
    pass: String,
    status: String,
    started: String,
}

#[derive(Template)]
#[template(path = "runs.html")]
pub(crate) struct RunsPage {
    frame: Frame,
    runs: Vec<RunRow>,
}

/// The release a run read, or empty for the admitted labels.
fn release_of(label_source: &str) -> String {
    if label_source == evalmint_eval::labels::ADMITTED {
        String::new()
    } else {
        label_source.to_owned()
    }
}

fn percent(rate: f64) -> String {
    format!("{:.1}%", rate * 100.0)
}

pub(crate) fn runs(frame: Frame, runs: &[EvalRun]) -> RunsPage {
    RunsPage {
        frame,
        runs: runs
            .iter()
            .map(|run| {
                let summary = summarise(run, None);
                RunRow {
                    id: run.id.clone(),
                    agent: run.agent.clone(),
                    release: release_of(&run.label_source),
                    labels: summary.labels,
                    pass: percent(summary.overall().rate.rate),
                    status: format!("{:?}", run.status).to_lowercase(),
                    started: run.started_at.to_string(),
                }
            })
            .collect(),
    }
}

/// One segment's bar: the pass rate with its interval, and the baseline's beside it.
pub(crate) struct RunBar {
    y: u32,
    segment: String,
    rate: String,
    width: String,
    /// The Wilson interval as an x range.
    low: String,
    high: String,
    /// Empty without a baseline.
    baseline: String,
    baseline_width: String,
    /// `regression`, `improved` or empty.
    flag: String,
    p_value: String,
    errors: u64,
}

#[derive(Template)]
#[template(path = "run.html")]
pub(crate) struct RunPage {
    frame: Frame,
    id: String,
    agent: String,
    release: String,
    labels: u64,
    attempts: u64,
    k: u32,
    pass_at_k: String,
    status: String,
    error: String,
    chart_height: u32,
    bars: Vec<RunBar>,
    /// Other runs to compare with: (id, agent, selected).
    candidates: Vec<(String, String, bool)>,
    baseline: String,
    /// Whether the baseline is the one the run remembers.
    stored_baseline: bool,
    regressions: usize,
    flips: Vec<String>,
    label_rows: Vec<RunLabelRow>,
}

/// One label of a run: how its attempts went, linking to its history across runs.
pub(crate) struct RunLabelRow {
    label_id: String,
    version: u32,
    /// `pass`, `fail` or `error` per attempt, in order.
    outcomes: Vec<&'static str>,
    passed: bool,
    reason: String,
}

/// Bars are this wide at a pass rate of 100%.
const RUN_BAR_WIDTH: f64 = 400.0;

pub(crate) fn run(
    frame: Frame,
    run: &EvalRun,
    baseline: Option<&EvalRun>,
    others: &[EvalRun],
) -> RunPage {
    let summary = summarise(run, baseline);
    let x = |rate: f64| format!("{:.1}", 260.0 + rate * RUN_BAR_WIDTH);
    let bars: Vec<RunBar> = summary
        .segments
        .iter()
        .take(40)
        .enumerate()
        .map(|(i, row)| RunBar {
            y: u32::try_from(i).unwrap_or(0) * 22 + 2,
            segment: short(&row.segment, 40),
            rate: format!(
                "{}/{} ({})",
                row.rate.passed,
                row.rate.total,
                percent(row.rate.rate)
            ),
            width: format!("{:.1}", row.rate.rate * RUN_BAR_WIDTH),
            low: x(row.rate.low),
            high: x(row.rate.high),
            baseline: row.baseline.map(|b| percent(b.rate)).unwrap_or_default(),
            baseline_width: row
                .baseline
                .map(|b| format!("{:.1}", b.rate * RUN_BAR_WIDTH))
                .unwrap_or_default(),
            flag: if row.regression {
                "regression".to_owned()
            } else if row.improvement {
                "improved".to_owned()
            } else {
                String::new()
            },
            p_value: row.p_value.map(|p| format!("{p:.4}")).unwrap_or_default(),
            errors: row.errors,
        })
        .collect();
    RunPage {
        frame,
        chart_height: u32::try_from(bars.len()).unwrap_or(0) * 22 + 6,
        regressions: summary.regressions().count(),
        bars,
        candidates: others
            .iter()
            .filter(|other| other.id != run.id)
            .map(|other| {
                let selected = baseline.is_some_and(|b| b.id == other.id);
                (other.id.clone(), other.agent.clone(), selected)
            })
            .collect(),
        baseline: summary.baseline.clone().unwrap_or_default(),
        stored_baseline: baseline.is_some_and(|b| run.baseline.as_deref() == Some(b.id.as_str())),
        flips: summary.flips.clone(),
        label_rows: run
            .label_runs()
            .into_iter()
            .map(|(label_id, entry)| RunLabelRow {
                passed: entry.passed(),
                version: entry.label_version,
                outcomes: entry.attempts.iter().map(|a| a.outcome.as_str()).collect(),
                reason: entry
                    .attempts
                    .iter()
                    .find(|a| a.outcome != evalmint_model::Outcome::Pass)
                    .map(|a| short(&a.reason, 120))
                    .unwrap_or_default(),
                label_id,
            })
            .collect(),
        id: run.id.clone(),
        agent: run.agent.clone(),
        release: release_of(&run.label_source),
        labels: summary.labels,
        attempts: summary.attempts,
        k: summary.k,
        pass_at_k: percent(summary.pass_at_k),
        status: format!("{:?}", run.status).to_lowercase(),
        error: run.error.clone().unwrap_or_default(),
    }
}

/// One run's verdict on the label, on the label's history page.
pub(crate) struct LabelRunRow {
    run_id: String,
    agent: String,
    release: String,
    started: String,
    version: u32,
    passed: bool,
    /// (attempt, outcome, reason, graders' reasons).
    attempts: Vec<(u32, &'static str, String, Vec<String>)>,
}

#[derive(Template)]
#[template(path = "label_runs.html")]
pub(crate) struct LabelRunsPage {
    frame: Frame,
    label_id: String,
    flaky: bool,
    passed_runs: usize,
    rows: Vec<LabelRunRow>,
}

pub(crate) fn label_runs(frame: Frame, label_id: String, runs: &[LabelRun]) -> LabelRunsPage {
    LabelRunsPage {
        frame,
        label_id,
        flaky: evalmint_model::is_flaky(runs),
        passed_runs: runs.iter().filter(|r| r.passed()).count(),
        rows: runs
            .iter()
            .map(|run| LabelRunRow {
                run_id: run.run_id.clone(),
                agent: run.agent.clone(),
                release: release_of(&run.label_source),
                started: run.started_at.to_string(),
                version: run.label_version,
                passed: run.passed(),
                attempts: run
                    .attempts
                    .iter()
                    .map(|a| {
                        (
                            a.attempt,
                            a.outcome.as_str(),
                            a.reason.clone(),
                            a.grades
                                .iter()
                                .map(|g| {
                                    format!(
                                        "{} {}: {}",
                                        g.grader,
                                        if g.passed { "passed" } else { "failed" },
                                        g.reason
                                    )
                                })
                                .collect(),
                        )
                    })
                    .collect(),
            })
            .collect(),
    }
}
