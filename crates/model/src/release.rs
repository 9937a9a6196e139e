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
}

/// A release as listed and shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Release {
    /// `rel-` and the first 24 hex digits of the SHA-256 of its sorted items.
    pub id: String,
    pub name: String,
    pub created_at: Timestamp,
    pub filters: Vec<Segment>,
    pub labels: u64,
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
    /// Investigations with feedback in this segment over the release's period.
    pub investigations: u64,
    pub label_share: f64,
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

/// Coverage of released labels (their segments) against traffic.
pub fn coverage(labels: &[(&str, &[Segment])], traffic: &[Traffic]) -> Coverage {
    let mut counts: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    let key = |s: &Segment| (s.facet.clone(), s.value.clone());
    let wanted = |s: &Segment| FACETS.contains(&s.facet.as_str());
    let mut coverage = Coverage::default();
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
        let distinct: BTreeSet<(String, String)> =
            t.segments.iter().filter(|s| wanted(s)).map(key).collect();
        for k in distinct {
            counts.entry(k).or_default().1 += 1;
        }
    }
    let (n_labels, n_traffic) = (labels.len().max(1) as f64, traffic.len().max(1) as f64);
    coverage.negative_share = coverage.negative as f64 / n_labels;
    coverage.positive_share = coverage.positive as f64 / n_labels;
    coverage.segments = counts
        .into_iter()
        .map(|((facet, value), (l, t))| SegmentCoverage {
            facet,
            value,
            labels: l,
            investigations: t,
            label_share: l as f64 / n_labels,
            investigation_share: t as f64 / n_traffic,
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
        let report = coverage(&labels, &traffic);
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
}
