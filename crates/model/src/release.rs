//! Releases: named, immutable selections of label versions, and what a release covers: labels
//! per segment against the investigations per segment over the same period, the share of
//! labels born from negative feedback, and the segments most under-covered with confirmed
//! investigations that could fill them.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::Timestamp;
use crate::label::Segment;

/// Facets a release can be filtered and sliced by (the pipeline's segment facets).
pub const FACETS: [&str; 7] = [
    "service",
    "category",
    "agent_version",
    "difficulty",
    "polarity",
    "origin",
    "recognition",
];

/// Parses `facet=value`.
pub fn parse_filter(text: &str) -> Result<Segment, String> {
    let (facet, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not facet=value"))?;
    let (facet, value) = (facet.trim(), value.trim());
    if facet.is_empty() || value.is_empty() {
        return Err(format!("{text:?} is not facet=value"));
    }
    Ok(Segment {
        facet: facet.to_owned(),
        value: value.to_owned(),
    })
}

/// True when `segments` match every filter; filters on the same facet are alternatives.
pub fn matches(segments: &[Segment], filters: &[Segment]) -> bool {
    let mut by_facet: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for f in filters {
        by_facet.entry(&f.facet).or_default().push(&f.value);
    }
    by_facet.iter().all(|(facet, values)| {
        segments
            .iter()
            .any(|s| s.facet == *facet && values.contains(&s.value.as_str()))
    })
}

/// One label version in a release.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ReleaseItem {
    pub label_id: String,
    pub version: u32,
    /// SHA-256 of the version as stored, so the release id names content, not just numbers.
    pub digest: String,
    /// The version was erased on request after the release was made: the release still names it
    /// (its id stays provable from the items) but no longer holds or exports it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub erased: bool,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A release as listed and shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Release {
    /// `rel-` and the first 24 hex digits of the SHA-256 of its sorted items.
    pub id: String,
    pub name: String,
    pub created_at: Timestamp,
    pub filters: Vec<Segment>,
    /// How many label versions it selected when it was made.
    pub labels: u64,
    /// How many of them an erasure has removed since (filled in when the release is read).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub erased: u64,
    /// The earliest and latest creation time of its label versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<(Timestamp, Timestamp)>,
    pub coverage: Coverage,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SegmentCoverage {
    pub facet: String,
    pub value: String,
    pub labels: u64,
    /// Production investigations in this segment over the release's period (see [`coverage`]
    /// for which investigations each facet counts).
    pub investigations: u64,
    pub label_share: f64,
    /// `investigations` among those whose value for this facet is known.
    pub investigation_share: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UnderCovered {
    pub facet: String,
    pub value: String,
    /// Investigation share minus label share.
    pub gap: f64,
    /// Candidates of confirmed (thumbs-up) investigations in the segment, not in the release:
    /// send these to review to fill it.
    pub suggestions: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Coverage {
    /// Production investigations first seen over the period (still stored: retention removes
    /// those without feedback after a while), and how many of them had feedback.
    #[serde(default)]
    pub investigations: u64,
    #[serde(default)]
    pub with_feedback: u64,
    pub segments: Vec<SegmentCoverage>,
    pub negative: u64,
    pub positive: u64,
    pub mixed: u64,
    pub negative_share: f64,
    pub positive_share: f64,
    pub under_covered: Vec<UnderCovered>,
}

/// An investigation with feedback over the period: its current candidate and segments.
#[derive(Debug, Clone, PartialEq)]
pub struct Traffic {
    pub candidate_id: String,
    pub label_id: String,
    pub segments: Vec<Segment>,
}

fn polarity(segments: &[Segment]) -> Option<&str> {
    segments
        .iter()
        .find(|s| s.facet == "polarity")
        .map(|s| s.value.as_str())
}

/// The production investigations first seen over a release's period, all of them, not only
/// those with feedback: how many, how many had no feedback, and how many each agent version ran
/// (the one segment a trace carries by itself; the others come from drafting a label).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Production {
    pub investigations: u64,
    pub without_feedback: u64,
    pub by_agent_version: Vec<(String, u64)>,
}

/// Coverage of released labels (their segments) against production over the same period.
///
/// Each facet's investigation share is taken among the investigations whose value for it is
/// known: `agent_version` among every stored investigation that reported one, `polarity` among
/// every investigation (those without feedback count as `none`), and the facets only a drafted
/// label knows (service, category, difficulty, origin, recognition) among the investigations
/// with feedback.
pub fn coverage(
    labels: &[(&str, &[Segment])],
    traffic: &[Traffic],
    production: &Production,
) -> Coverage {
    let mut counts: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    let key = |s: &Segment| (s.facet.clone(), s.value.clone());
    let versions_from_traces = !production.by_agent_version.is_empty();
    let wanted = |s: &Segment| FACETS.contains(&s.facet.as_str());
    let from_candidates =
        |s: &Segment| wanted(s) && !(versions_from_traces && s.facet == "agent_version");
    let mut coverage = Coverage {
        investigations: production.investigations,
        with_feedback: traffic.len() as u64,
        ..Coverage::default()
    };
    for (_, segments) in labels {
        let distinct: BTreeSet<(String, String)> =
            segments.iter().filter(|s| wanted(s)).map(key).collect();
        for k in distinct {
            counts.entry(k).or_default().0 += 1;
        }
        match polarity(segments) {
            Some("negative") => coverage.negative += 1,
            Some("positive") => coverage.positive += 1,
            _ => coverage.mixed += 1,
        }
    }
    for t in traffic {
        let distinct: BTreeSet<(String, String)> = t
            .segments
            .iter()
            .filter(|s| from_candidates(s))
            .map(key)
            .collect();
        for k in distinct {
            counts.entry(k).or_default().1 += 1;
        }
    }
    for (version, n) in &production.by_agent_version {
        counts
            .entry(("agent_version".to_owned(), version.clone()))
            .or_default()
            .1 += n;
    }
    if production.without_feedback > 0 {
        counts
            .entry(("polarity".to_owned(), "none".to_owned()))
            .or_default()
            .1 += production.without_feedback;
    }
    let n_labels = labels.len().max(1) as f64;
    let known = |facet: &str| -> f64 {
        let n = match facet {
            "agent_version" if versions_from_traces => {
                production.by_agent_version.iter().map(|(_, n)| *n).sum()
            }
            "polarity" => traffic.len() as u64 + production.without_feedback,
            _ => traffic.len() as u64,
        };
        n.max(1) as f64
    };
    coverage.negative_share = coverage.negative as f64 / n_labels;
    coverage.positive_share = coverage.positive as f64 / n_labels;
    coverage.segments = counts
        .into_iter()
        .map(|((facet, value), (l, t))| SegmentCoverage {
            investigation_share: t as f64 / known(&facet),
            facet,
            value,
            labels: l,
            investigations: t,
            label_share: l as f64 / n_labels,
        })
        .collect();
    let released: BTreeSet<&str> = labels.iter().map(|(id, _)| *id).collect();
    let mut gaps: Vec<&SegmentCoverage> = coverage
        .segments
        .iter()
        .filter(|s| s.facet != "polarity" && s.investigation_share > s.label_share)
        .collect();
    gaps.sort_by(|a, b| {
        let gap = |s: &SegmentCoverage| s.investigation_share - s.label_share;
        gap(b).total_cmp(&gap(a)).then(a.facet.cmp(&b.facet))
    });
    coverage.under_covered = gaps
        .into_iter()
        .take(5)
        .map(|s| UnderCovered {
            facet: s.facet.clone(),
            value: s.value.clone(),
            gap: s.investigation_share - s.label_share,
            suggestions: traffic
                .iter()
                .filter(|t| {
                    !released.contains(t.label_id.as_str())
                        && polarity(&t.segments) == Some("positive")
                        && t.segments
                            .iter()
                            .any(|x| x.facet == s.facet && x.value == s.value)
                })
                .take(10)
                .map(|t| t.candidate_id.clone())
                .collect(),
        })
        .collect();
    coverage
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(facet: &str, value: &str) -> Segment {
        Segment {
            facet: facet.into(),
            value: value.into(),
        }
    }

    #[test]
    fn under_covered_segments_come_with_confirmed_investigations_to_review() {
        let checkout = vec![seg("service", "checkout"), seg("polarity", "negative")];
        let labels = [("lbl-3", checkout.as_slice())];
        let traffic: Vec<Traffic> = (0..4)
            .map(|n| Traffic {
                candidate_id: format!("cand-{n}"),
                label_id: format!("lbl-{n}"),
                segments: if n < 3 {
                    vec![seg("service", "payments"), seg("polarity", "positive")]
                } else {
                    checkout.clone()
                },
            })
            .collect();
        let report = coverage(&labels, &traffic, &Production::default());
        assert_eq!(report.negative, 1);
        assert_eq!(report.negative_share, 1.0);
        let top = &report.under_covered[0];
        assert_eq!(
            (top.facet.as_str(), top.value.as_str()),
            ("service", "payments")
        );
        assert_eq!(top.suggestions, ["cand-0", "cand-1", "cand-2"]);
        assert!(matches(&checkout, &[seg("service", "checkout")]));
        assert!(!matches(&checkout, &[seg("service", "payments")]));
        assert_eq!(
            parse_filter("service=checkout").unwrap(),
            seg("service", "checkout")
        );
        assert!(parse_filter("service").is_err());
    }

    #[test]
    fn investigations_without_feedback_count_where_a_trace_tells_their_segment() {
        let v2 = vec![
            seg("agent_version", "v2"),
            seg("polarity", "negative"),
            seg("service", "checkout"),
        ];
        let labels = [("lbl-1", v2.as_slice())];
        let traffic = vec![Traffic {
            candidate_id: "cand-1".into(),
            label_id: "lbl-1".into(),
            segments: v2.clone(),
        }];
        // 100 investigations in the period: 90 ran v1, 10 ran v2; only one had feedback.
        let production = Production {
            investigations: 100,
            without_feedback: 99,
            by_agent_version: vec![("v1".into(), 90), ("v2".into(), 10)],
        };
        let report = coverage(&labels, &traffic, &production);
        assert_eq!((report.investigations, report.with_feedback), (100, 1));
        let share = |facet: &str, value: &str| {
            let s = report
                .segments
                .iter()
                .find(|s| s.facet == facet && s.value == value)
                .unwrap();
            (s.investigations, s.investigation_share)
        };
        assert_eq!(share("agent_version", "v1"), (90, 0.9));
        assert_eq!(
            share("agent_version", "v2"),
            (10, 0.1),
            "from traces, not candidates"
        );
        assert_eq!(share("polarity", "none"), (99, 0.99));
        assert_eq!(share("polarity", "negative"), (1, 0.01));
        assert_eq!(
            share("service", "checkout"),
            (1, 1.0),
            "among those with feedback"
        );
        let top = &report.under_covered[0];
        assert_eq!(
            (top.facet.as_str(), top.value.as_str()),
            ("agent_version", "v1")
        );
        assert!((top.gap - 0.9).abs() < 1e-9);
    }
}
