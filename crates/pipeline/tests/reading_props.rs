//! Bad input for the reading of users' words: corrections and conclusions in any script, up to
//! 64 KiB, with emoji, code blocks and HTML, never panic; and a text that names an
//! identifier-shaped component always yields a drafted ground truth, whatever surrounds it.

use evalmint_model::{
    AgentInfo, Catalog, CatalogEntry, EntityProvenance, Feedback, FeedbackOrigin, Investigation,
    TenantId, Timestamp, ValidFeedback, Verdict,
};
use evalmint_pipeline::draft::{self, Basis};
use evalmint_pipeline::evidence::Evidence;
use evalmint_pipeline::matching;
use evalmint_pipeline::taxonomy::Taxonomy;
use proptest::prelude::*;

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn investigation(conclusion: &str) -> Investigation {
    Investigation {
        id: "5b8efff798038103d269b633813fc60c".parse().unwrap(),
        agent: AgentInfo::default(),
        trigger: None,
        conclusion: Some(conclusion.to_owned()),
        started_at: at("2026-01-01T14:11:00Z"),
        ended_at: at("2026-01-01T14:20:00Z"),
        steps: Vec::new(),
        feedback: Vec::new(),
    }
}

fn feedback(verdict: Verdict, correction: Option<&str>) -> Feedback {
    Feedback {
        id: "0190d6a4-0000-7000-8000-000000000001".parse().unwrap(),
        tenant: TenantId::new("acme").unwrap(),
        received_at: at("2026-01-01T15:00:00Z"),
        body: ValidFeedback {
            investigation_id: None,
            span_id: None,
            verdict: Some(verdict),
            rating: None,
            correction: correction.map(str::to_owned),
            tags: Vec::new(),
            user_id: None,
            idempotency_key: None,
            metadata: Default::default(),
            origin: FeedbackOrigin::Api,
        },
    }
}

fn catalog() -> Catalog {
    let mut pod = CatalogEntry::new("frontend-579b9bff58-t2dbm", EntityProvenance::Prometheus);
    pod.workload = Some("frontend".into());
    Catalog::new(vec![
        pod,
        CatalogEntry::new("payments-db", EntityProvenance::StaticFile),
        CatalogEntry::new("checkout", EntityProvenance::Trace),
    ])
}

/// Pieces real text is made of, including the awkward ones.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "\\PC{0,40}",
        Just("```json\n{\"1\": {\"root cause component\": \"".to_owned()),
        Just("\"}}\n```".to_owned()),
        Just("<b>payments-db</b> <script>alert(1)</script>&nbsp;".to_owned()),
        Just("**Component:** ".to_owned()),
        Just("## Root cause\n".to_owned()),
        Just("🔥🚒 frontend-579b9bff58-t2dbm 💥".to_owned()),
        Just("支付数据库 連線池 — не checkout, а payments_db".to_owned()),
        Just("مهلة الاتصال 14:05".to_owned()),
        Just("not checkout, ".to_owned()),
        Just("{\"reason\": [1, {\"x\": null}], \"component\": 5}".to_owned()),
        Just("e\u{301}\u{200d}\u{fe0f}:".to_owned()),
        Just("root cause: ".to_owned()),
        Just(
            "https://grafana.example.com/d/ab-1?x=payments-db ops@example.com 10.0.3.7".to_owned()
        ),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(piece(), 0..24).prop_map(|pieces| pieces.concat())
}

fn check_never_panics(text: &str) {
    let taxonomy = Taxonomy::default();
    let catalog = catalog();
    for mention in matching::mentions(text, &catalog, &taxonomy) {
        assert!(text.is_char_boundary(mention.start) && text.is_char_boundary(mention.end));
        assert!(mention.start < mention.end && mention.end <= text.len());
    }
    let reading = draft::read(text, &catalog, &taxonomy);
    for entity in reading.named.iter().chain(&reading.ruled_out) {
        assert!(
            !entity.contains("@"),
            "an e-mail address became an entity: {entity}"
        );
        assert!(!entity.contains("://"), "a URL became an entity: {entity}");
    }
    let evidence = Evidence::default();
    for fb in [
        feedback(Verdict::NotQuite, Some(text)),
        feedback(Verdict::Up, None),
    ] {
        let drafted = draft::draft(&investigation(text), &[&fb], &evidence, &catalog, &taxonomy);
        if let Some(truth) = &drafted.ground_truth {
            assert!(!truth.components.is_empty());
            assert_eq!(truth.entities.len(), truth.components.len());
        }
    }
}

/// Ordinary words around a name.
const WORDS: &[&str] = &[
    "we",
    "saw",
    "errors",
    "and",
    "then",
    "it",
    "was",
    "slow",
    "again",
    "yesterday",
    "the",
    "whole",
    "thing",
    "fell",
    "over",
    ",",
    ".",
    "—",
    "not",
    "sure",
    "but",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn reading_any_text_never_panics(text in text()) {
        check_never_panics(&text);
    }

    #[test]
    fn a_named_identifier_always_drafts_a_ground_truth(
        before in prop::collection::vec(prop::sample::select(WORDS), 0..8),
        name in "[a-z]{3,8}(-[a-z]{2,6}){0,2}-[0-9]{1,3}",
        after in prop::collection::vec(prop::sample::select(WORDS), 0..8),
    ) {
        let correction = format!("{} it was {name}. {}", before.join(" "), after.join(" "));
        let drafted = draft::draft(
            &investigation("checkout had a bad deploy"),
            &[&feedback(Verdict::Down, Some(&correction))],
            &Evidence::default(),
            &Catalog::default(),
            &Taxonomy::default(),
        );
        prop_assert_eq!(drafted.basis, Basis::Correction);
        let truth = drafted.ground_truth.expect("a ground truth");
        prop_assert!(truth.components.contains(&name), "{:?} for {}", truth.components, correction);
    }
}

#[test]
fn large_texts_in_any_script_never_panic() {
    let unit = "支付 payments-db 🔥 <div>не checkout</div> ```code``` Ω≈ç√ 14:05 \u{202e}";
    let mut text = String::new();
    while text.len() < 64 * 1024 {
        text.push_str(unit);
    }
    // Cut at a byte that is not a character boundary's neighbour on purpose, then back off.
    let mut cut = 64 * 1024;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
    check_never_panics(&text);
    check_never_panics(&"{".repeat(64 * 1024));
    check_never_panics(&"a-".repeat(32 * 1024));
    check_never_panics(&"x:\n".repeat(20 * 1024));
}
