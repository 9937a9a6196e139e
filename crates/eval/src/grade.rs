//! Graders: deterministic (component with catalog aliases, category, onset within a tolerance)
//! and evidence coverage. Each says why. An attempt passes when every deterministic grade that
//! applies passes; evidence coverage is reported beside it.

use evalmint_model::{AgentAnswer, Catalog, Grade, GroundTruth, Outcome};

/// How the graders judge.
#[derive(Debug, Clone)]
pub struct GradeConfig {
    pub onset_tolerance: jiff::SignedDuration,
    /// Share of the ground truth's evidence queries the agent must have read for coverage to
    /// pass.
    pub min_evidence_coverage: f64,
}

impl Default for GradeConfig {
    fn default() -> Self {
        GradeConfig {
            onset_tolerance: jiff::SignedDuration::from_mins(15),
            min_evidence_coverage: 0.5,
        }
    }
}

/// A name reduced for comparison: lowercase, `_`/space/`.` as `-`.
fn canonical(name: &str) -> String {
    name.trim()
        .to_lowercase()
        .chars()
        .map(|c| {
            if c == '_' || c == ' ' || c == '.' {
                '-'
            } else {
                c
            }
        })
        .collect()
}

/// Every name `name` goes by in the catalog: itself, its aliases, its workload, and the names
/// of the entries it is an alias or instance of.
fn names_of(catalog: &Catalog, name: &str) -> Vec<String> {
    let wanted = canonical(name);
    let mut names = vec![wanted.clone()];
    for entry in catalog.entries() {
        let mut all = vec![canonical(&entry.name)];
        all.extend(entry.aliases.iter().map(|a| canonical(a)));
        if let Some(w) = &entry.workload {
            all.push(canonical(w));
        }
        if all.contains(&wanted) {
            names.extend(all);
        }
    }
    names.sort();
    names.dedup();
    names
}

/// Whether the answer's component names one of the ground truth's components.
pub fn component(answer: &AgentAnswer, truth: &GroundTruth, catalog: &Catalog) -> Option<Grade> {
    if truth.components.is_empty() {
        return None;
    }
    let expected = truth.components.join(", ");
    let Some(given) = answer.rca.as_ref().and_then(|r| r.component.as_deref()) else {
        // Without a structured answer, the conclusion must name the component.
        let text = canonical(&answer.conclusion);
        let named = truth.components.iter().find(|c| {
            names_of(catalog, c)
                .iter()
                .any(|n| !n.is_empty() && text.contains(n.as_str()))
        });
        return Some(match named {
            Some(c) => grade("component", true, format!("the conclusion names {c}")),
            None => grade(
                "component",
                false,
                format!("the conclusion names none of {expected}"),
            ),
        });
    };
    let given_names = names_of(catalog, given);
    let matched = truth
        .components
        .iter()
        .find(|c| names_of(catalog, c).iter().any(|n| given_names.contains(n)));
    Some(match matched {
        Some(c) if canonical(c) == canonical(given) => {
            grade("component", true, format!("answered {given}"))
        }
        Some(c) => grade(
            "component",
            true,
            format!("answered {given}, an alias of {c}"),
        ),
        None => grade(
            "component",
            false,
            format!("answered {given}, expected {expected}"),
        ),
    })
}

/// Whether the answer's category is the ground truth's (or one of its sub-categories).
pub fn category(answer: &AgentAnswer, truth: &GroundTruth) -> Option<Grade> {
    let expected = truth.category.as_ref()?;
    let given = answer.rca.as_ref()?.category.as_deref()?;
    let passed = given == expected.as_str() || given.starts_with(&format!("{expected}."));
    Some(grade(
        "category",
        passed,
        if passed {
            format!("answered {given}")
        } else {
            format!("answered {given}, expected {expected}")
        },
    ))
}

/// Whether the answer's onset is within the tolerance of the ground truth's.
pub fn onset(answer: &AgentAnswer, truth: &GroundTruth, config: &GradeConfig) -> Option<Grade> {
    let expected = truth.onset?;
    let given = answer.rca.as_ref()?.onset?;
    let off = given.duration_since(expected).abs();
    let passed = off <= config.onset_tolerance;
    Some(grade(
        "onset",
        passed,
        format!(
            "{}s from the true onset (tolerance {}s)",
            off.as_secs(),
            config.onset_tolerance.as_secs()
        ),
    ))
}

/// The share of the ground truth's evidence queries the agent's calls were answered from.
pub fn evidence(truth: &GroundTruth, hits: &[String], config: &GradeConfig) -> Option<Grade> {
    if truth.evidence.is_empty() {
        return None;
    }
    let seen = truth.evidence.iter().filter(|e| hits.contains(e)).count();
    let share = seen as f64 / truth.evidence.len() as f64;
    let mut g = grade(
        "evidence",
        share >= config.min_evidence_coverage,
        format!("read {seen} of {} evidence queries", truth.evidence.len()),
    );
    g.score = share;
    Some(g)
}

fn grade(grader: &str, passed: bool, reason: String) -> Grade {
    Grade {
        grader: grader.to_owned(),
        passed,
        score: if passed { 1.0 } else { 0.0 },
        reason,
        errored: false,
    }
}

/// Grades one answer; the outcome and its reason, and every grade.
pub fn grade_answer(
    answer: &AgentAnswer,
    truth: Option<&GroundTruth>,
    hits: &[String],
    catalog: &Catalog,
    config: &GradeConfig,
) -> (Outcome, String, Vec<Grade>) {
    let Some(truth) = truth else {
        return (
            Outcome::Error,
            "the label has no ground truth".to_owned(),
            Vec::new(),
        );
    };
    let gating: Vec<Grade> = [
        component(answer, truth, catalog),
        category(answer, truth),
        onset(answer, truth, config),
    ]
    .into_iter()
    .flatten()
    .collect();
    let failed = gating.iter().find(|g| !g.passed);
    let (outcome, reason) = match (failed, gating.is_empty()) {
        (_, true) => (Outcome::Error, "no grader applies to this label".to_owned()),
        (Some(g), _) => (Outcome::Fail, format!("{}: {}", g.grader, g.reason)),
        (None, _) => (
            Outcome::Pass,
            gating
                .iter()
                .map(|g| format!("{}: {}", g.grader, g.reason))
                .collect::<Vec<_>>()
                .join("; "),
        ),
    };
    let mut grades = gating;
    grades.extend(evidence(truth, hits, config));
    (outcome, reason, grades)
}

#[cfg(test)]
mod tests {
    use super::*;
    use evalmint_model::{CatalogEntry, Category, EntityProvenance, RcaAnswer};

    fn truth() -> GroundTruth {
        GroundTruth {
            statement: "payments-db ran out of connections".into(),
            components: vec!["payments-db".into()],
            category: Some(Category::RESOURCE_CONNECTION_POOL),
            onset: Some("2026-03-01T12:00:00Z".parse().unwrap()),
            causal_chain: vec![],
            evidence: vec!["q1".into(), "q2".into()],
            reason: None,
            entities: vec![],
        }
    }

    fn answer(component: &str, category: Option<&str>, onset: Option<&str>) -> AgentAnswer {
        AgentAnswer {
            conclusion: String::new(),
            rca: Some(RcaAnswer {
                component: Some(component.into()),
                category: category.map(Into::into),
                onset: onset.map(|o| o.parse().unwrap()),
            }),
        }
    }

    #[test]
    fn aliases_category_and_onset_decide_with_a_reason() {
        let mut entry = CatalogEntry::new("payments-db", EntityProvenance::StaticFile);
        entry.aliases = vec!["pg-payments".into()];
        let catalog = Catalog::new(vec![entry]);
        let config = GradeConfig::default();
        let (outcome, reason, grades) = grade_answer(
            &answer(
                "pg-payments",
                Some("resource.connection_pool"),
                Some("2026-03-01T12:05:00Z"),
            ),
            Some(&truth()),
            &["q1".into()],
            &catalog,
            &config,
        );
        assert_eq!(outcome, Outcome::Pass, "{reason}");
        assert!(reason.contains("alias of payments-db"), "{reason}");
        assert_eq!(grades.last().unwrap().score, 0.5);

        let (outcome, reason, _) = grade_answer(
            &answer("checkout", None, None),
            Some(&truth()),
            &[],
            &catalog,
            &config,
        );
        assert_eq!(outcome, Outcome::Fail);
        assert_eq!(reason, "component: answered checkout, expected payments-db");

        let (outcome, reason, _) = grade_answer(
            &answer(
                "payments-db",
                Some("network.dns"),
                Some("2026-03-01T13:00:00Z"),
            ),
            Some(&truth()),
            &[],
            &catalog,
            &config,
        );
        assert_eq!(outcome, Outcome::Fail);
        assert_eq!(
            reason,
            "category: answered network.dns, expected resource.connection_pool"
        );
    }
}
