//! Calibration of the validator against reviewers: auto-admit precision on the audit sample with
//! a Wilson interval, agreement and Cohen's kappa per score dimension, and the thresholds that
//! would reach a target precision with the review load they imply. Pure arithmetic; the decisions
//! come from the store and a threshold set is only ever proposed, never applied here.

use serde::Serialize;

/// One reviewed candidate: its scores, whether the validator admitted it, and whether the
/// reviewer accepted it (approved unchanged) or not (edited or rejected).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    /// specificity, accuracy, thoroughness.
    pub scores: [f64; 3],
    pub admitted: bool,
    pub audit: bool,
    pub accepted: bool,
}

pub const DIMENSIONS: [&str; 3] = ["specificity", "accuracy", "thoroughness"];

/// The Wilson score interval of `successes` out of `n` at 95%.
pub fn wilson_95(successes: u64, n: u64) -> Option<(f64, f64)> {
    if n == 0 {
        return None;
    }
    let z = 1.959_963_984_540_054_f64;
    let (n, p) = (n as f64, successes as f64 / n as f64);
    let denominator = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denominator;
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / denominator;
    Some(((centre - half).max(0.0), (centre + half).min(1.0)))
}

/// Agreement and Cohen's kappa of two yes/no raters over the same items.
pub fn agreement_and_kappa(pairs: &[(bool, bool)]) -> Option<(f64, Option<f64>)> {
    if pairs.is_empty() {
        return None;
    }
    let n = pairs.len() as f64;
    let observed = pairs.iter().filter(|(a, b)| a == b).count() as f64 / n;
    let yes_a = pairs.iter().filter(|(a, _)| *a).count() as f64 / n;
    let yes_b = pairs.iter().filter(|(_, b)| *b).count() as f64 / n;
    let expected = yes_a * yes_b + (1.0 - yes_a) * (1.0 - yes_b);
    let kappa = (expected < 1.0).then(|| (observed - expected) / (1.0 - expected));
    Some((observed, kappa))
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Precision {
    pub audited: u64,
    pub agreed: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub precision: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wilson_95: Option<Interval>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DimensionAgreement {
    pub dimension: &'static str,
    pub threshold: f64,
    pub decisions: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agreement: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kappa: Option<f64>,
}

/// A threshold set that reaches the target on the reviewed decisions, and what it costs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Proposal {
    pub specificity: f64,
    pub accuracy: f64,
    pub thoroughness: f64,
    /// Precision among reviewed candidates these thresholds would admit.
    pub precision: f64,
    pub wilson_95: Interval,
    pub would_admit: u64,
    /// Share of reviewed candidates these thresholds would send to review.
    pub review_load: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Calibration {
    pub decisions: u64,
    pub auto_admit: Precision,
    pub dimensions: Vec<DimensionAgreement>,
    pub target_precision: f64,
    pub current: [f64; 3],
    /// Share of reviewed candidates the current thresholds send to review.
    pub current_review_load: Option<f64>,
    /// None when no threshold set reaches the target on the decisions so far.
    pub proposal: Option<Proposal>,
}

/// The calibration report from reviewed candidates under the `current` thresholds.
pub fn calibrate(observations: &[Observation], current: [f64; 3], target: f64) -> Calibration {
    let audits: Vec<&Observation> = observations
        .iter()
        .filter(|o| o.audit && o.admitted)
        .collect();
    let agreed = audits.iter().filter(|o| o.accepted).count() as u64;
    let audited = audits.len() as u64;
    let auto_admit = Precision {
        audited,
        agreed,
        precision: (audited > 0).then(|| agreed as f64 / audited as f64),
        wilson_95: wilson_95(agreed, audited).map(|(low, high)| Interval { low, high }),
    };
    let dimensions = DIMENSIONS
        .iter()
        .enumerate()
        .map(|(i, &dimension)| {
            let pairs: Vec<(bool, bool)> = observations
                .iter()
                .map(|o| (o.scores[i] >= current[i], o.accepted))
                .collect();
            let stats = agreement_and_kappa(&pairs);
            DimensionAgreement {
                dimension,
                threshold: current[i],
                decisions: pairs.len() as u64,
                agreement: stats.map(|s| s.0),
                kappa: stats.and_then(|s| s.1),
            }
        })
        .collect();
    let n = observations.len() as u64;
    let admits = |t: [f64; 3], o: &Observation| (0..3).all(|i| o.scores[i] >= t[i]);
    let current_review_load = (n > 0)
        .then(|| observations.iter().filter(|o| !admits(current, o)).count() as f64 / n as f64);
    // A grid over the three thresholds; the proposal is the one with the lowest review load whose
    // Wilson lower bound reaches the target (so a handful of lucky decisions proposes nothing).
    let grid: Vec<f64> = (0..=20).map(|s| f64::from(s) * 0.05).collect();
    let mut proposal: Option<Proposal> = None;
    for &s in &grid {
        for &a in &grid {
            for &t in &grid {
                let thresholds = [s, a, t];
                let (mut admitted, mut good) = (0u64, 0u64);
                for o in observations {
                    if admits(thresholds, o) {
                        admitted += 1;
                        good += u64::from(o.accepted);
                    }
                }
                let Some((low, high)) = wilson_95(good, admitted) else {
                    continue;
                };
                if low < target {
                    continue;
                }
                let load = (n - admitted) as f64 / n as f64;
                if proposal.as_ref().is_none_or(|p| load < p.review_load) {
                    proposal = Some(Proposal {
                        specificity: s,
                        accuracy: a,
                        thoroughness: t,
                        precision: good as f64 / admitted as f64,
                        wilson_95: Interval { low, high },
                        would_admit: admitted,
                        review_load: load,
                    });
                }
            }
        }
    }
    Calibration {
        decisions: n,
        auto_admit,
        dimensions,
        target_precision: target,
        current,
        current_review_load,
        proposal,
    }
}

impl Proposal {
    /// The threshold set as `evalmint.toml` keys, for the operator to apply.
    pub fn as_config(&self, target: f64) -> String {
        format!(
            "# Proposed by `evalmint calibrate` for a target precision of {target}: precision \
             {:.3} (Wilson 95% {:.3}-{:.3}) on {} reviewed admissions, review load {:.1}%.\n\
             # Apply by copying into evalmint.toml and restarting; nothing applies it for you.\n\
             [pipeline]\nspecificity = {:.2}\naccuracy = {:.2}\nthoroughness = {:.2}\n",
            self.precision,
            self.wilson_95.low,
            self.wilson_95.high,
            self.would_admit,
            self.review_load * 100.0,
            self.specificity,
            self.accuracy,
            self.thoroughness
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_the_textbook_value() {
        // 8 of 10: the Wilson 95% interval is about 0.490-0.943.
        let (low, high) = wilson_95(8, 10).unwrap();
        assert!((low - 0.4902).abs() < 1e-3, "{low}");
        assert!((high - 0.9433).abs() < 1e-3, "{high}");
        assert_eq!(wilson_95(0, 0), None);
    }

    #[test]
    fn kappa_is_one_for_perfect_and_zero_for_chance_agreement() {
        let perfect = [(true, true), (false, false), (true, true), (false, false)];
        assert_eq!(agreement_and_kappa(&perfect), Some((1.0, Some(1.0))));
        let chance = [(true, true), (true, false), (false, true), (false, false)];
        let (agreement, kappa) = agreement_and_kappa(&chance).unwrap();
        assert_eq!(agreement, 0.5);
        assert!(kappa.unwrap().abs() < 1e-12);
    }

    #[test]
    fn the_proposal_raises_the_threshold_that_separates_bad_admissions() {
        // Accuracy separates: accepted ones score 0.9, rejected ones 0.5; the others do not.
        let mut observations = Vec::new();
        for i in 0..400 {
            let good = i % 4 != 0;
            observations.push(Observation {
                scores: [0.8, if good { 0.9 } else { 0.5 }, 0.7],
                admitted: true,
                audit: true,
                accepted: good,
            });
        }
        let report = calibrate(&observations, [0.6, 0.4, 0.5], 0.98);
        assert_eq!(report.auto_admit.audited, 400);
        assert_eq!(report.auto_admit.agreed, 300);
        let proposal = report.proposal.unwrap();
        assert!(proposal.accuracy > 0.5 && proposal.accuracy <= 0.9);
        assert_eq!(proposal.would_admit, 300);
        assert!((proposal.review_load - 0.25).abs() < 1e-9);
        assert!(proposal.as_config(0.98).contains("[pipeline]"));
    }
}
