//! What a run says: pass rates overall and per segment with Wilson intervals, pass@k, the paired
//! comparison against a baseline (exact McNemar per segment, the labels that flipped), and the
//! run as a terminal table, JSON, JUnit XML or a self-contained HTML page, each with the advisory
//! LLM judge's verdicts when the run had one.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use evalmint_model::{EvalRun, Outcome};
use serde::Serialize;

use crate::stats::{Rate, mcnemar_exact, pass_at_k, wilson};

/// The p-value under which a segment's drop is a regression.
pub const REGRESSION_P: f64 = 0.05;

#[derive(Debug, Clone, Serialize)]
pub struct SegmentRow {
    /// `facet=value`, or `overall`.
    pub segment: String,
    pub rate: Rate,
    pub errors: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Rate>,
    /// Labels that passed in the baseline and fail now, and the reverse.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gained: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p_value: Option<f64>,
    pub regression: bool,
    pub improvement: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub run: String,
    pub agent: String,
    /// Where its label versions came from: `admitted` or a release id.
    pub label_source: String,
    pub k: u32,
    pub labels: u64,
    pub attempts: u64,
    pub pass_at_k: f64,
    pub segments: Vec<SegmentRow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<String>,
    /// Labels that passed in the baseline and fail in this run.
    pub flips: Vec<String>,
    /// Tool-call latency as the agent saw it, when the agent reports it (the reference agents).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_latency: Option<ToolLatency>,
    /// The LLM judge's verdicts, when the run had one (`--judge`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub judge: Option<JudgeTally>,
}

/// Round-trip times of an agent's tool calls.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ToolLatency {
    pub calls: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl ToolLatency {
    /// The figures of `samples` (nearest-rank percentiles), or `None` without any.
    pub fn of(samples: &[std::time::Duration]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort();
        let rank = |p: f64| {
            let index = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
            sorted[index].as_secs_f64() * 1000.0
        };
        Some(ToolLatency {
            calls: sorted.len() as u64,
            p50_ms: rank(0.50),
            p99_ms: rank(0.99),
        })
    }
}

/// The advisory LLM judge's verdicts over a run's attempts.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct JudgeTally {
    /// `llm:<model>/<prompt version>`.
    pub judge: String,
    pub passed: u64,
    pub failed: u64,
    /// Attempts the judge could not judge (an unusable answer, an HTTP error).
    pub errors: u64,
    /// Attempts the judge passed or failed whose outcome (pass or fail) it agrees with.
    pub agreed: u64,
    /// Attempts with a pass or fail outcome that the judge passed or failed.
    pub compared: u64,
}

impl JudgeTally {
    /// One line for the terminal and the HTML page.
    pub fn text(&self) -> String {
        format!(
            "judge {} (advisory): {} pass, {} fail, {} error; agrees with the graders on {} of {} attempts",
            self.judge, self.passed, self.failed, self.errors, self.agreed, self.compared
        )
    }
}

/// The judge's grade of one attempt, if it was judged.
fn judge_grade(result: &evalmint_model::EvalResult) -> Option<&evalmint_model::Grade> {
    result
        .grades
        .iter()
        .find(|g| g.grader == crate::judge::JUDGE_GRADER)
}

/// `pass`, `fail` or `error`, and the reason, of one judge grade.
fn judge_verdict(grade: &evalmint_model::Grade) -> String {
    let verdict = if grade.errored {
        "error"
    } else if grade.passed {
        "pass"
    } else {
        "fail"
    };
    format!("judge {verdict}: {}", grade.reason)
}

/// The judge's verdicts over `run`, or `None` when no attempt was judged.
pub fn judge_tally(run: &EvalRun) -> Option<JudgeTally> {
    let mut tally: Option<JudgeTally> = None;
    for r in &run.results {
        let Some(grade) = judge_grade(r) else {
            continue;
        };
        let t = tally.get_or_insert_with(|| JudgeTally {
            // The reason opens with the judge's name: `llm:<model>/<version>: …`.
            judge: grade
                .reason
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .trim_end_matches(':')
                .to_owned(),
            ..Default::default()
        });
        if grade.errored {
            t.errors += 1;
            continue;
        }
        t.passed += u64::from(grade.passed);
        t.failed += u64::from(!grade.passed);
        if r.outcome != Outcome::Error {
            t.compared += 1;
            t.agreed += u64::from(grade.passed == (r.outcome == Outcome::Pass));
        }
    }
    tally
}

impl Summary {
    pub fn overall(&self) -> &SegmentRow {
        &self.segments[0]
    }

    pub fn regressions(&self) -> impl Iterator<Item = &SegmentRow> {
        self.segments.iter().filter(|s| s.regression)
    }
}

/// Per label: whether it passes (at least half its attempts pass), its attempts' passes and
/// count, errors, and its segments.
struct LabelOutcome {
    passed: bool,
    passes: u64,
    attempts: u64,
    errors: u64,
    segments: Vec<String>,
}

fn per_label(run: &EvalRun) -> BTreeMap<String, LabelOutcome> {
    let mut labels: BTreeMap<String, LabelOutcome> = BTreeMap::new();
    for r in &run.results {
        let entry = labels
            .entry(r.label_id.clone())
            .or_insert_with(|| LabelOutcome {
                passed: false,
                passes: 0,
                attempts: 0,
                errors: 0,
                segments: r
                    .segments
                    .iter()
                    .map(|s| format!("{}={}", s.facet, s.value))
                    .collect(),
            });
        entry.attempts += 1;
        entry.passes += u64::from(r.outcome == Outcome::Pass);
        entry.errors += u64::from(r.outcome == Outcome::Error);
    }
    for l in labels.values_mut() {
        l.passed = l.passes * 2 >= l.attempts && l.passes > 0;
    }
    labels
}

/// Summarises `run`, compared with `baseline` when given.
pub fn summarise(run: &EvalRun, baseline: Option<&EvalRun>) -> Summary {
    let labels = per_label(run);
    let base = baseline.map(per_label);
    let mut segment_names: Vec<String> = labels.values().flat_map(|l| l.segments.clone()).collect();
    segment_names.sort();
    segment_names.dedup();
    let mut rows = Vec::new();
    for segment in std::iter::once("overall".to_owned()).chain(segment_names) {
        let in_segment = |l: &LabelOutcome| segment == "overall" || l.segments.contains(&segment);
        let mine: Vec<(&String, &LabelOutcome)> =
            labels.iter().filter(|(_, l)| in_segment(l)).collect();
        let passed = mine.iter().filter(|(_, l)| l.passed).count() as u64;
        let errors = mine.iter().map(|(_, l)| l.errors).sum();
        let mut row = SegmentRow {
            segment: segment.clone(),
            rate: wilson(passed, mine.len() as u64),
            errors,
            baseline: None,
            lost: None,
            gained: None,
            p_value: None,
            regression: false,
            improvement: false,
        };
        if let Some(base) = &base {
            // Paired on the labels both runs graded.
            let (mut both_base, mut lost, mut gained, mut paired) = (0, 0, 0, 0);
            for (id, l) in &mine {
                if let Some(b) = base.get(*id) {
                    paired += 1;
                    both_base += u64::from(b.passed);
                    lost += u64::from(b.passed && !l.passed);
                    gained += u64::from(!b.passed && l.passed);
                }
            }
            let p = mcnemar_exact(lost, gained);
            row.baseline = Some(wilson(both_base, paired));
            row.lost = Some(lost);
            row.gained = Some(gained);
            row.p_value = Some(p);
            row.regression = lost > gained && p < REGRESSION_P;
            row.improvement = gained > lost && p < REGRESSION_P;
        }
        rows.push(row);
    }
    let flips = match &base {
        None => Vec::new(),
        Some(base) => labels
            .iter()
            .filter(|(id, l)| !l.passed && base.get(*id).is_some_and(|b| b.passed))
            .map(|(id, _)| id.clone())
            .collect(),
    };
    let k = u64::from(run.k.max(1));
    let pass_k = if labels.is_empty() {
        0.0
    } else {
        labels
            .values()
            .map(|l| pass_at_k(l.attempts, l.passes, k.min(l.attempts)))
            .sum::<f64>()
            / labels.len() as f64
    };
    Summary {
        run: run.id.clone(),
        agent: run.agent.clone(),
        label_source: run.label_source.clone(),
        k: run.k,
        labels: labels.len() as u64,
        attempts: run.results.len() as u64,
        pass_at_k: pass_k,
        segments: rows,
        baseline: baseline.map(|b| b.id.clone()),
        flips,
        tool_latency: None,
        judge: judge_tally(run),
    }
}

/// How a report names where a run's labels came from.
pub fn label_source_text(source: &str) -> String {
    if source == crate::labels::ADMITTED {
        "the admitted labels".to_owned()
    } else {
        format!("release {source}")
    }
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// The summary as a terminal table.
pub fn table(summary: &Summary) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "run {}  agent {}  labels {} ({})  attempts {}  pass@{} {}",
        summary.run,
        summary.agent,
        summary.labels,
        label_source_text(&summary.label_source),
        summary.attempts,
        summary.k,
        pct(summary.pass_at_k)
    );
    let compare = summary.baseline.is_some();
    let _ = write!(
        out,
        "{:<36} {:>9} {:>17} {:>6}",
        "segment", "pass", "95% CI", "errors"
    );
    if compare {
        let _ = write!(
            out,
            " {:>9} {:>5} {:>5} {:>8}  flag",
            "baseline", "lost", "gained", "p"
        );
    }
    out.push('\n');
    for row in &summary.segments {
        let _ = write!(
            out,
            "{:<36} {:>9} {:>17} {:>6}",
            truncate(&row.segment, 36),
            format!("{}/{}", row.rate.passed, row.rate.total),
            format!("{}–{}", pct(row.rate.low), pct(row.rate.high)),
            row.errors
        );
        if let (Some(b), Some(lost), Some(gained), Some(p)) =
            (row.baseline, row.lost, row.gained, row.p_value)
        {
            let flag = if row.regression {
                "REGRESSION"
            } else if row.improvement {
                "improved"
            } else {
                ""
            };
            let _ = write!(
                out,
                " {:>9} {:>5} {:>5} {:>8.4}  {flag}",
                pct(b.rate),
                lost,
                gained,
                p
            );
        }
        out.push('\n');
    }
    if !summary.flips.is_empty() {
        let _ = writeln!(out, "flipped pass → fail: {}", summary.flips.join(", "));
    }
    if let Some(latency) = &summary.tool_latency {
        let _ = writeln!(
            out,
            "tool calls {}: p50 {:.2} ms, p99 {:.2} ms (as the agent saw them)",
            latency.calls, latency.p50_ms, latency.p99_ms
        );
    }
    if let Some(judge) = &summary.judge {
        let _ = writeln!(out, "{}", judge.text());
    }
    out
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let cut: String = s.chars().take(n - 1).collect();
        format!("{cut}…")
    }
}

fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// JUnit XML: one test case per label (its first failing or erroring attempt decides).
pub fn junit(run: &EvalRun) -> String {
    let mut by_label: BTreeMap<&str, Vec<&evalmint_model::EvalResult>> = BTreeMap::new();
    for r in &run.results {
        by_label.entry(&r.label_id).or_default().push(r);
    }
    let failures = by_label
        .values()
        .filter(|rs| rs.iter().any(|r| r.outcome == Outcome::Fail))
        .count();
    let errors = by_label
        .values()
        .filter(|rs| {
            rs.iter().all(|r| r.outcome != Outcome::Fail)
                && rs.iter().any(|r| r.outcome == Outcome::Error)
        })
        .count();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuite name=\"evalmint {}\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\">",
        xml(&run.agent),
        by_label.len()
    );
    for (label, results) in by_label {
        let seconds = results.iter().map(|r| r.duration_ms).sum::<u64>() as f64 / 1000.0;
        let _ = write!(
            out,
            "  <testcase classname=\"{}\" name=\"{}\" time=\"{seconds:.3}\"",
            xml(&run.id),
            xml(label)
        );
        // The judge's verdict on the deciding attempt (advisory) follows the graders' reason.
        let judged = |r: &evalmint_model::EvalResult| {
            judge_grade(r)
                .map(|g| format!("; {}", judge_verdict(g)))
                .unwrap_or_default()
        };
        if let Some(r) = results.iter().find(|r| r.outcome == Outcome::Fail) {
            let _ = writeln!(
                out,
                ">\n    <failure message=\"{}\">attempt {}: {}{}</failure>\n  </testcase>",
                xml(&r.reason),
                r.attempt,
                xml(&r.reason),
                xml(&judged(r))
            );
        } else if let Some(r) = results.iter().find(|r| r.outcome == Outcome::Error) {
            let _ = writeln!(
                out,
                ">\n    <error message=\"{}\">attempt {}: {}{}</error>\n  </testcase>",
                xml(&r.reason),
                r.attempt,
                xml(&r.reason),
                xml(&judged(r))
            );
        } else if let Some((r, grade)) = results.iter().find_map(|r| Some((r, judge_grade(r)?))) {
            let _ = writeln!(
                out,
                ">\n    <system-out>attempt {}: {}</system-out>\n  </testcase>",
                r.attempt,
                xml(&judge_verdict(grade))
            );
        } else {
            out.push_str("/>\n");
        }
    }
    out.push_str("</testsuite>\n");
    out
}

/// A self-contained HTML page: per-segment bars with intervals, the baseline and the flips.
pub fn html(summary: &Summary) -> String {
    let mut rows = String::new();
    for row in &summary.segments {
        let bar = |r: &Rate, class: &str| {
            format!(
                "<div class=\"bar\"><div class=\"{class}\" style=\"width:{:.1}%\"></div><div class=\"ci\" style=\"left:{:.1}%;width:{:.1}%\"></div></div>",
                r.rate * 100.0,
                r.low * 100.0,
                (r.high - r.low) * 100.0
            )
        };
        let flag = if row.regression {
            "<span class=\"reg\">regression</span>"
        } else if row.improvement {
            "<span class=\"imp\">improved</span>"
        } else {
            ""
        };
        let _ = write!(
            rows,
            "<tr><td>{}</td><td>{}/{} ({})<br><small>95% CI {}–{}</small></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            xml(&row.segment),
            row.rate.passed,
            row.rate.total,
            pct(row.rate.rate),
            pct(row.rate.low),
            pct(row.rate.high),
            bar(&row.rate, "now"),
            row.baseline
                .as_ref()
                .map(|b| bar(b, "base"))
                .unwrap_or_default(),
            row.p_value.map(|p| format!("{p:.4}")).unwrap_or_default(),
            flag
        );
    }
    let judge = summary
        .judge
        .as_ref()
        .map(|j| format!("<p class=\"judge\">{}</p>", xml(&j.text())))
        .unwrap_or_default();
    let flips = if summary.flips.is_empty() {
        "<p>No label flipped from pass to fail.</p>".to_owned()
    } else {
        format!(
            "<h2>Flipped pass → fail</h2><ul>{}</ul>",
            summary
                .flips
                .iter()
                .map(|f| format!("<li>{}</li>", xml(f)))
                .collect::<String>()
        )
    };
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>evalmint run {run}</title><style>\
body{{font:14px system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left}}\
.bar{{position:relative;width:220px;height:14px;background:#eee}}.now{{height:100%;background:#2b7bd6}}.base{{height:100%;background:#999}}\
.ci{{position:absolute;top:5px;height:4px;background:#000;opacity:.5}}.reg{{color:#fff;background:#c0392b;padding:2px 6px}}.imp{{color:#fff;background:#27ae60;padding:2px 6px}}\
</style></head><body><h1>Run {run}</h1><p>agent {agent} · {labels} labels ({source}) · {attempts} attempts · pass@{k} {passk}{base}</p>\
<table><tr><th>segment</th><th>pass</th><th>this run</th><th>baseline</th><th>McNemar p</th><th></th></tr>{rows}</table>{judge}{flips}</body></html>\n",
        run = xml(&summary.run),
        agent = xml(&summary.agent),
        labels = summary.labels,
        source = xml(&label_source_text(&summary.label_source)),
        attempts = summary.attempts,
        k = summary.k,
        passk = pct(summary.pass_at_k),
        base = summary
            .baseline
            .as_ref()
            .map(|b| format!(" · baseline {}", xml(b)))
            .unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::ToolLatency;
    use std::time::Duration;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let figures = ToolLatency::of(&samples).unwrap();
        assert_eq!(figures.calls, 100);
        assert_eq!(figures.p50_ms, 50.0);
        assert_eq!(figures.p99_ms, 99.0);
        assert_eq!(
            ToolLatency::of(&[Duration::from_millis(3)]).unwrap().p99_ms,
            3.0
        );
        assert!(ToolLatency::of(&[]).is_none());
    }
}
