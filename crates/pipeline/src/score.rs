//! Scoring a draft for confidence — specificity, accuracy, thoroughness, each in [0, 1] with a
//! reason for every point given or withheld — and routing it: admit, review, or insufficient,
//! with a deterministic audit sample of admitted candidates sent to review as well.

use evalmint_model::{Route, Score, Scores};
use sha2::{Digest, Sha256};

use crate::config::Thresholds;
use crate::draft::{Basis, Draft, Method, evidence_category};
use crate::evidence::Evidence;
use crate::taxonomy::Taxonomy;

struct Tally {
    value: f64,
    reasons: Vec<String>,
}

impl Tally {
    fn new() -> Self {
        Tally {
            value: 0.0,
            reasons: Vec::new(),
        }
    }

    fn add(&mut self, points: f64, reason: String) {
        self.value += points;
        let sign = if points >= 0.0 { "+" } else { "" };
        self.reasons.push(format!("{sign}{points:.2} {reason}"));
    }

    fn done(self) -> Score {
        Score {
            value: (self.value.clamp(0.0, 1.0) * 100.0).round() / 100.0,
            reasons: self.reasons,
        }
    }
}

/// Scores a draft against the snapshot's evidence.
pub fn score(draft: &Draft, evidence: &Evidence, taxonomy: &Taxonomy) -> Scores {
    let mut specificity = Tally::new();
    let mut accuracy = Tally::new();
    let mut thoroughness = Tally::new();
    let Some(truth) = &draft.ground_truth else {
        let reason = match draft.basis {
            Basis::Insufficient => "no correction and no confirmed conclusion to draft from",
            _ => "the text names no entity and the snapshot shows no affected one",
        };
        for tally in [&mut specificity, &mut accuracy, &mut thoroughness] {
            tally.add(0.0, reason.to_owned());
        }
        return Scores {
            specificity: specificity.done(),
            accuracy: accuracy.done(),
            thoroughness: thoroughness.done(),
        };
    };
    let component = &truth.components[0];
    let key = component.to_lowercase();
    let signals = evidence.signals.get(&key);
    let unverified: Vec<&str> = truth
        .entities
        .iter()
        .filter(|e| !e.provenance.is_verified())
        .map(|e| e.name.as_str())
        .collect();

    // Specificity: a known entity, a mechanism, a time — and no hidden ambiguity.
    if unverified.is_empty() {
        specificity.add(0.35, format!("names a known entity ({component})"));
    } else {
        specificity.add(
            0.2,
            format!("names {component}, which no catalog knows (unverified)"),
        );
    }
    match &truth.category {
        Some(c) => specificity.add(0.3, format!("states a mechanism ({})", c.as_str())),
        None => specificity.add(0.0, "no mechanism, only a place".to_owned()),
    }
    match truth.onset {
        Some(_) => specificity.add(0.2, "has an onset time".to_owned()),
        None => specificity.add(0.0, "no onset time".to_owned()),
    }
    match draft.method {
        Method::Named => {
            specificity.add(0.15, "the feedback names the component itself".to_owned())
        }
        Method::Resolved => specificity.add(
            0.0,
            "resolved from vague text using the snapshot".to_owned(),
        ),
    }
    if !draft.alternatives.is_empty() {
        let penalty = -(0.15 * draft.alternatives.len() as f64).min(0.45);
        specificity.add(
            penalty,
            format!(
                "ambiguous: {} fit nearly as well",
                draft.alternatives.join(", ")
            ),
        );
    }

    // Accuracy: the snapshot supports the component, the mechanism and the time; feedback agrees.
    let strength = signals.map_or(0.0, |s| s.strength());
    if strength >= 0.5 {
        accuracy.add(
            0.5,
            format!("{component} shows clear trouble in the snapshot"),
        );
    } else if strength > 0.0 {
        accuracy.add(0.25, format!("{component} shows weak signs of trouble"));
    } else {
        accuracy.add(
            0.0,
            format!("no anomaly, error or event on {component} in the snapshot"),
        );
    }
    match (&truth.category, evidence_category(evidence, taxonomy, &key)) {
        (Some(stated), Some(seen)) if taxonomy.agrees(stated, &seen) => {
            accuracy.add(0.3, format!("the evidence agrees on {}", stated.as_str()))
        }
        (Some(stated), Some(seen)) => accuracy.add(
            -0.2,
            format!(
                "the evidence suggests {} rather than {}",
                seen.as_str(),
                stated.as_str()
            ),
        ),
        (_, None) => accuracy.add(
            0.15,
            "the evidence neither confirms nor contradicts the mechanism".to_owned(),
        ),
        (None, Some(_)) => accuracy.add(
            0.1,
            "the mechanism comes from the evidence alone".to_owned(),
        ),
    }
    if let Some(onset) = signals.and_then(|s| s.onset()) {
        let earlier: Vec<&String> = evidence
            .signals
            .iter()
            .filter(|(e, s)| {
                **e != key
                    && s.strength() >= 0.5
                    && s.onset().is_some_and(|o| {
                        onset.duration_since(o) >= jiff::SignedDuration::from_mins(1)
                    })
            })
            .map(|(e, _)| e)
            .collect();
        if earlier.is_empty() {
            accuracy.add(
                0.2,
                format!("nothing in the snapshot went wrong before {component}"),
            );
        } else {
            let names: Vec<&str> = earlier.iter().map(|e| e.as_str()).take(3).collect();
            accuracy.add(
                -0.3,
                format!(
                    "{} went wrong before {component}: it may be a symptom",
                    names.join(", ")
                ),
            );
        }
    }
    if let Some((blamed, count)) = signals
        .and_then(|s| s.blames.iter().max_by_key(|(_, n)| **n))
        .filter(|(blamed, _)| blamed.as_str() != key)
    {
        accuracy.add(
            -0.3,
            format!("{component}'s own errors ({count}) point at {blamed}: it may be a victim"),
        );
    }
    for conflict in &draft.conflicts {
        accuracy.add(-0.3, conflict.clone());
    }
    if !unverified.is_empty() {
        accuracy.add(
            -0.2,
            format!(
                "{} not confirmed by any catalog, trace or telemetry source",
                unverified.join(", ")
            ),
        );
    }

    // Thoroughness: a causal chain from the trigger to the cause, evidence across signal types.
    match draft.trigger_entity.as_deref() {
        Some(t) if t.eq_ignore_ascii_case(component) => {
            thoroughness.add(0.4, "the cause is where the alert fired".to_owned())
        }
        Some(t) if truth.causal_chain.len() > 2 => {
            thoroughness.add(0.4, format!("a call path links {t} to {component}"))
        }
        Some(t) => thoroughness.add(0.15, format!("no known call path from {t} to {component}")),
        None => thoroughness.add(0.15, "the trigger names no known entity".to_owned()),
    }
    let kinds = signals.map(|s| s.signal_kinds()).unwrap_or_default();
    if kinds.is_empty() {
        thoroughness.add(0.0, "no evidence on the component".to_owned());
    } else {
        let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
        thoroughness.add(
            (0.2 * kinds.len() as f64).min(0.6),
            format!("evidence from {}", names.join(", ")),
        );
    }

    Scores {
        specificity: specificity.done(),
        accuracy: accuracy.done(),
        thoroughness: thoroughness.done(),
    }
}

/// Admit when every dimension reaches its threshold and every entity is verified; without a
/// ground truth, insufficient. A name read only from the text always goes to a reviewer.
pub fn route(draft: &Draft, scores: &Scores, thresholds: &Thresholds) -> Route {
    if draft.ground_truth.is_none() {
        return Route::Insufficient;
    }
    if draft.unverified() {
        return Route::Review;
    }
    let confident = scores.specificity.value >= thresholds.specificity
        && scores.accuracy.value >= thresholds.accuracy
        && scores.thoroughness.value >= thresholds.thoroughness;
    if confident {
        Route::Admit
    } else {
        Route::Review
    }
}

/// Whether an admitted candidate is sampled for audit: a stable hash of its key, so the sample is
/// reproducible and unbiased with respect to scores.
pub fn sampled_for_audit(key: &str, fraction: f64) -> bool {
    let digest = Sha256::digest(key.as_bytes());
    let bucket = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
    (bucket as f64 / u64::MAX as f64) < fraction
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_sampling_hits_its_fraction() {
        let sampled = (0..10_000)
            .filter(|i| sampled_for_audit(&format!("trace-{i}"), 0.1))
            .count();
        assert!((900..1100).contains(&sampled), "{sampled}");
        assert!(!sampled_for_audit("x", 0.0));
        assert!(sampled_for_audit("x", 1.0));
    }
}
