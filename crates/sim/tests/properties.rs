//! Properties of the world over many seeds: faults leave signals on their root, symptoms climb
//! the call graph and come later, and the reference agents err where they are meant to.

use std::collections::BTreeMap;
use std::sync::Arc;

use evalmint_sim::agent::{AgentVersion, Investigator, ReferenceAgent};
use evalmint_sim::faults::FaultKind;
use evalmint_sim::scenario::play;
use evalmint_sim::signals::Metric;
use evalmint_sim::telemetry::{Retention, SimClock, TelemetryService};
use evalmint_sim::tools::InProcessTools;
use evalmint_sim::users::FeedbackRates;
use evalmint_sim::world::{DEFAULT_TIMELINE_END, World, WorldConfig};

fn world(seed: u64, incidents: u64, services: Option<usize>) -> World {
    World::generate(WorldConfig {
        seed,
        incidents,
        services,
        timeline_end: DEFAULT_TIMELINE_END,
    })
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = values.collect();
    v.iter().sum::<f64>() / v.len() as f64
}

#[test]
fn every_fault_leaves_detectable_signals_on_its_root() {
    let mut kinds_seen = std::collections::BTreeSet::new();
    for seed in 0..25 {
        let w = world(seed, 30, None);
        for incident in &w.incidents {
            kinds_seen.insert(incident.kind);
            let metric = incident.kind.signature_metric();
            let before =
                mean((15..45).map(|m| {
                    w.metric_value(incident.root, metric, incident.onset - m * 60 - 1800)
                }));
            let after_peak = (0..(incident.end - incident.onset) / 60)
                .map(|m| w.metric_value(incident.root, metric, incident.onset + m * 60))
                .fold(f64::MIN, f64::max);
            let after_low = (5..(incident.end - incident.onset) / 60)
                .map(|m| w.metric_value(incident.root, metric, incident.onset + m * 60))
                .fold(f64::MAX, f64::min);
            let detectable = match metric {
                Metric::ErrorRatio
                | Metric::Memory
                | Metric::Cpu
                | Metric::PoolUsage
                | Metric::Disk => after_peak - before >= 0.05,
                Metric::Restarts => after_peak - before >= 1.0,
                // Traffic that stops reaching a component is a drop; a spike is a rise.
                Metric::RequestRate => after_low < 0.5 * before || after_peak > 2.0 * before,
                Metric::LatencyP50 | Metric::LatencyP99 => after_peak > 2.0 * before,
                Metric::ConsumerLag => after_peak > 10.0 * before,
            };
            assert!(
                detectable,
                "seed {seed} {}: {:?} on root shows no deviation of {} (before {before}, peak {after_peak}, low {after_low})",
                incident.id,
                incident.kind,
                metric.prom_name()
            );
            let root_logs = incident
                .logs
                .iter()
                .filter(|l| l.component == incident.root)
                .count();
            let root_events = incident
                .events
                .iter()
                .filter(|e| e.component == incident.root)
                .count();
            assert!(
                root_logs + root_events > 0,
                "seed {seed} {}: no logs or events on the root",
                incident.id
            );
        }
    }
    assert_eq!(
        kinds_seen.len(),
        FaultKind::ALL.len(),
        "not every fault kind occurred"
    );
}

#[test]
fn symptoms_follow_the_call_graph_and_come_later() {
    for seed in 0..25 {
        let w = world(seed, 30, None);
        for incident in &w.incidents {
            let ancestors = w.topology.ancestors(incident.root);
            for effect in incident.effects.iter().filter(|e| e.propagated) {
                assert!(
                    ancestors.iter().any(|(a, _)| *a == effect.component),
                    "seed {seed} {}: symptom on {} which does not call {}",
                    incident.id,
                    w.topology.components[effect.component].name,
                    w.topology.components[incident.root].name
                );
                assert!(
                    effect.start > incident.onset,
                    "seed {seed} {}: symptom before the onset",
                    incident.id
                );
            }
            // The fault's log lines are on the root or on components that (transitively) call it.
            for line in &incident.logs {
                let on_path = line.component == incident.root
                    || ancestors.iter().any(|(a, _)| *a == line.component);
                let background = incident
                    .background
                    .iter()
                    .any(|b| b.component == line.component);
                assert!(
                    on_path || background,
                    "seed {seed} {}: a fault log on an unrelated component",
                    incident.id
                );
            }
            // The causal chain climbs callers from the root to the alerted component.
            assert_eq!(incident.chain.first(), Some(&incident.root));
            assert_eq!(incident.chain.last(), Some(&incident.alerted));
            for pair in incident.chain.windows(2) {
                assert!(w.topology.components[pair[0]].callers.contains(&pair[1]));
            }
            // The alert fires after the symptom it watches has started.
            assert!(incident.fired_at > incident.onset);
        }
    }
}

#[test]
fn the_loudest_symptom_is_often_not_the_cause() {
    let mut alerted_elsewhere = 0;
    let mut total = 0;
    for seed in 0..25 {
        let w = world(seed, 30, None);
        for incident in &w.incidents {
            total += 1;
            alerted_elsewhere += usize::from(incident.alerted != incident.root);
        }
    }
    let share = alerted_elsewhere as f64 / total as f64;
    assert!(
        (0.5..0.95).contains(&share),
        "alerts away from the root: {share}"
    );
}

#[test]
fn background_anomalies_never_touch_the_root_or_its_symptoms() {
    for seed in 0..10 {
        let w = world(seed, 30, None);
        let with_background = w
            .incidents
            .iter()
            .filter(|i| !i.background.is_empty())
            .count();
        assert!(
            with_background > 0,
            "seed {seed}: no background anomalies at all"
        );
        for incident in &w.incidents {
            for b in &incident.background {
                assert_ne!(b.component, incident.root);
                assert!(
                    !incident
                        .effects
                        .iter()
                        .any(|e| e.propagated && e.component == b.component)
                );
            }
        }
    }
}

/// Runs both agents on the same incidents; returns per fault kind (incidents, v1 wrong, v2 wrong).
async fn wrong_component_by_kind() -> BTreeMap<FaultKind, (u32, u32, u32)> {
    let mut by_kind: BTreeMap<FaultKind, (u32, u32, u32)> = BTreeMap::new();
    let rates = FeedbackRates::default();
    for seed in 100..106 {
        let w = Arc::new(world(seed, 110, Some(12 + seed as usize * 7)));
        let clock = Arc::new(SimClock::manual(0));
        let service = Arc::new(TelemetryService::new(
            w.clone(),
            clock.clone(),
            Retention::default(),
        ));
        let tools = InProcessTools::new(service);
        for incident in &w.incidents {
            clock.set(incident.fired_at * 1000 + 600_000);
            let entry = by_kind.entry(incident.kind).or_default();
            entry.0 += 1;
            for version in [AgentVersion::V1, AgentVersion::V2] {
                let agent = ReferenceAgent { version };
                assert_eq!(agent.version(), version);
                let outcome = play(&w, incident, &agent, &tools, &rates).await;
                let wrong =
                    outcome.investigation.blamed != w.topology.components[incident.root].name;
                match version {
                    AgentVersion::V1 => entry.1 += u32::from(wrong),
                    AgentVersion::V2 => entry.2 += u32::from(wrong),
                }
            }
        }
    }
    by_kind
}

#[tokio::test]
async fn v1_errs_at_the_configured_rate_and_v2_trades_fixes_for_a_regression() {
    let by_kind = wrong_component_by_kind().await;
    let total: u32 = by_kind.values().map(|v| v.0).sum();
    let v1_wrong: u32 = by_kind.values().map(|v| v.1).sum();
    let v1_rate = f64::from(v1_wrong) / f64::from(total);
    assert!(
        (V1_WRONG_COMPONENT_RANGE.0..=V1_WRONG_COMPONENT_RANGE.1).contains(&v1_rate),
        "v1 wrong-component rate {v1_rate:.3} outside {V1_WRONG_COMPONENT_RANGE:?}: {by_kind:?}"
    );
    let rate = |kind: FaultKind, v: usize| {
        let (n, a, b) = by_kind[&kind];
        f64::from(if v == 1 { a } else { b }) / f64::from(n)
    };
    // v2 follows failing calls down where v1 stopped at pool-timeout and DNS errors on the caller.
    for fixed in [FaultKind::ConnectionPoolExhaustion, FaultKind::DnsFailure] {
        assert!(
            rate(fixed, 2) + 0.2 < rate(fixed, 1),
            "{fixed:?}: v1 {} v2 {}",
            rate(fixed, 1),
            rate(fixed, 2)
        );
    }
    // …and regresses on expired certificates, blaming the caller's TLS configuration.
    let regressed = FaultKind::CertificateExpiry;
    assert!(
        rate(regressed, 2) > rate(regressed, 1) + 0.2,
        "{regressed:?}: v1 {} v2 {}",
        rate(regressed, 1),
        rate(regressed, 2)
    );
}

/// The share of incidents in which v1 is meant to blame the wrong component.
const V1_WRONG_COMPONENT_RANGE: (f64, f64) = (0.15, 0.40);

#[test]
fn users_react_to_right_and_wrong_answers_in_their_styles() {
    use evalmint_sim::generate::{GenerateOptions, generate};
    let dir = tempfile::tempdir().unwrap();
    let rates = FeedbackRates {
        silence_when_right: 0.3,
        silence_when_wrong: 0.0,
        ..FeedbackRates::default()
    };
    generate(&GenerateOptions {
        world: WorldConfig {
            seed: 21,
            incidents: 200,
            services: Some(30),
            timeline_end: DEFAULT_TIMELINE_END,
        },
        out: dir.path().to_path_buf(),
        truth: None,
        agent: AgentVersion::V1,
        rates,
        threads: 1,
    })
    .unwrap();
    let mut styles = std::collections::BTreeSet::new();
    for line in std::fs::read_to_string(dir.path().join("sim-truth.jsonl"))
        .unwrap()
        .lines()
    {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        let investigation = &record["investigation"];
        let right = investigation["correct_component"].as_bool().unwrap();
        let root = record["root_component"].as_str().unwrap();
        let feedback = &investigation["feedback"];
        if !right {
            assert!(
                feedback.is_object(),
                "wrong answers always get feedback at silence 0"
            );
        }
        let Some(feedback) = feedback.as_object() else {
            continue;
        };
        let style = feedback["style"].as_str().unwrap();
        styles.insert(style.to_string());
        let verdict = feedback["verdict"].as_str();
        let rating = feedback["rating"].as_u64();
        let correction = feedback["correction"].as_str().unwrap_or("");
        let user_thinks_right = right && style != "mistaken";
        match (user_thinks_right, verdict) {
            (true, Some(v)) => assert_eq!(v, "up"),
            (false, Some(v)) => assert!(v == "not_quite" || v == "down"),
            (_, None) => assert!(rating.is_some(), "neither verdict nor rating"),
        }
        if let Some(rating) = rating {
            assert!(if user_thinks_right {
                rating >= 4
            } else {
                rating <= 3
            });
        }
        // Precise corrections name a cause: the root itself, or (for `vague`) only a symptom or a hint.
        match style {
            "precise" | "wrong_time" => assert!(
                correction.contains(root),
                "{style} correction without {root}: {correction}"
            ),
            "mistaken" | "partial" => assert!(
                !correction.contains(&format!("{root} ")),
                "{style} correction names the root: {correction}"
            ),
            "no_text" => assert!(correction.is_empty()),
            _ => {}
        }
    }
    for expected in [
        "precise",
        "vague",
        "partial",
        "mistaken",
        "wrong_time",
        "no_text",
    ] {
        assert!(
            styles.contains(expected),
            "no {expected} feedback in 200 incidents: {styles:?}"
        );
    }
}
