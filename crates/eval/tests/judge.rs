//! The LLM judge against a stand-in chat-completions server: a passing and a failing verdict
//! become a `judge` grade with the model and prompt version recorded, a garbage answer or an HTTP
//! 500 becomes an errored grade with the reason while the run goes on, the deterministic outcome
//! is untouched, and no e-mail or secret of the ground truth or the conclusion is sent.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Json, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use evalmint_eval::agent::from_spec;
use evalmint_eval::judge::{JUDGE_GRADER, JUDGE_PROMPT_VERSION, Judge};
use evalmint_eval::report;
use evalmint_eval::run::{RunConfig, execute};
use evalmint_eval::{LabelVersion, ReplayWorld, Sessions};
use evalmint_model::{Catalog, EvalResult, EvalRun, GroundTruth, Outcome, TenantId};
use evalmint_pipeline::config::LlmConfig;
use evalmint_pipeline::llm::LlmClient;
use serde_json::{Value, json};

const TRUTH_EMAIL: &str = "alice.oncall@example.com";
const TRUTH_SECRET: &str = "hunter2";
const CONCLUSION_EMAIL: &str = "bob@example.com";

type Seen = Arc<Mutex<Vec<Value>>>;

/// Answers by the model's name: `passer`, `failer`, `rambler` (not JSON), `broken` (500).
async fn chat(State(seen): State<Seen>, Json(body): Json<Value>) -> Response {
    let model = body["model"].as_str().unwrap_or_default().to_owned();
    seen.lock().unwrap().push(body);
    let content = match model.as_str() {
        "broken" => {
            return (StatusCode::INTERNAL_SERVER_ERROR, "upstream exploded").into_response();
        }
        "passer" => {
            json!({"verdict": "pass", "reason": "It blames api's memory, as the truth does."})
                .to_string()
        }
        "failer" => {
            json!({"verdict": "fail", "reason": "It blames the database, not api."}).to_string()
        }
        _ => "I would say it mostly looks right.".to_owned(),
    };
    Json(json!({"choices": [{"message": {"role": "assistant", "content": content}}]}))
        .into_response()
}

async fn stand_in() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let app = axum::Router::new()
        .route("/v1/chat/completions", axum::routing::post(chat))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (endpoint, seen)
}

fn label(id: &str) -> LabelVersion {
    LabelVersion {
        label_id: id.into(),
        version: 1,
        world: Arc::new(ReplayWorld::default()),
        ground_truth: Some(GroundTruth {
            statement: format!(
                "api ran out of memory; paged {TRUTH_EMAIL}, config had password={TRUTH_SECRET}"
            ),
            components: vec!["api".into()],
            category: None,
            onset: Some("2026-03-01T12:00:00Z".parse().unwrap()),
            causal_chain: vec![],
            evidence: vec![],
            reason: None,
            entities: vec![],
        }),
        segments: vec![],
    }
}

async fn judged(endpoint: &str, model: &str) -> EvalRun {
    let client = LlmClient::new(&LlmConfig {
        endpoint: endpoint.into(),
        model: model.into(),
        api_key_env: None,
        timeout: jiff::SignedDuration::from_secs(5),
        validate: false,
        ca_file: None,
    })
    .unwrap();
    let spec = format!(
        r#"cmd:cat >/dev/null; echo '{{"conclusion": "api OOM, told {CONCLUSION_EMAIL}", "rca": {{"component": "api"}}}}'"#
    );
    let config = RunConfig {
        k: 1,
        concurrency: 2,
        timeout: Duration::from_secs(5),
        call_limit: 10,
        grade: Default::default(),
        base_url: "http://127.0.0.1:9".into(),
        label_source: evalmint_eval::labels::ADMITTED.into(),
        judge: Some(Arc::new(Judge::new(client))),
        baseline: None,
    };
    let run = execute(
        Arc::new(Sessions::default()),
        TenantId::default_tenant(),
        spec.clone(),
        from_spec(&spec, None).unwrap(),
        vec![label("l1"), label("l2")],
        Arc::new(Catalog::default()),
        config,
        Arc::new(|_| {}),
    )
    .await;
    assert_eq!(run.results.len(), 2, "the run goes on for every label");
    run
}

fn judge_grade(result: &EvalResult) -> &evalmint_model::Grade {
    result
        .grades
        .iter()
        .find(|g| g.grader == JUDGE_GRADER)
        .expect("a judge grade")
}

#[tokio::test]
async fn verdicts_errors_and_redaction() {
    let (endpoint, seen) = stand_in().await;

    for result in judged(&endpoint, "passer").await.results {
        assert_eq!(result.outcome, Outcome::Pass, "{}", result.reason);
        let grade = judge_grade(&result);
        assert!(grade.passed && !grade.errored);
        assert_eq!(
            grade.reason,
            format!(
                "llm:passer/{JUDGE_PROMPT_VERSION}: It blames api's memory, as the truth does."
            )
        );
    }

    let failed = judged(&endpoint, "failer").await;
    for result in &failed.results {
        // Advisory: the deterministic graders still pass the attempt.
        assert_eq!(result.outcome, Outcome::Pass, "{}", result.reason);
        let grade = judge_grade(result);
        assert!(!grade.passed && !grade.errored);
        assert_eq!(grade.score, 0.0);
        assert!(
            grade.reason.ends_with("It blames the database, not api."),
            "{}",
            grade.reason
        );
    }

    for result in judged(&endpoint, "rambler").await.results {
        assert_eq!(result.outcome, Outcome::Pass);
        let grade = judge_grade(&result);
        assert!(grade.errored && !grade.passed, "{grade:?}");
        assert!(
            grade.reason.starts_with("llm:rambler/judge-v1 could not judge: llm answer rejected: not the JSON object asked for"),
            "{}",
            grade.reason
        );
    }

    for result in judged(&endpoint, "broken").await.results {
        assert_eq!(result.outcome, Outcome::Pass);
        let grade = judge_grade(&result);
        assert!(grade.errored && !grade.passed, "{grade:?}");
        assert!(
            grade.reason.contains("llm answered 500: upstream exploded"),
            "{}",
            grade.reason
        );
    }

    // Every report carries the verdicts.
    let summary = report::summarise(&failed, None);
    let tally = summary.judge.clone().expect("a judge tally");
    assert_eq!(tally.judge, format!("llm:failer/{JUDGE_PROMPT_VERSION}"));
    assert_eq!((tally.passed, tally.failed, tally.errors), (0, 2, 0));
    assert_eq!((tally.agreed, tally.compared), (0, 2));
    let json = serde_json::to_value(&summary).unwrap();
    assert_eq!(json["judge"]["failed"], 2);
    let table = report::table(&summary);
    assert!(
        table.contains("judge llm:failer/judge-v1 (advisory): 0 pass, 2 fail, 0 error; agrees with the graders on 0 of 2 attempts"),
        "{table}"
    );
    assert!(report::html(&summary).contains("judge llm:failer/judge-v1 (advisory)"));
    let junit = report::junit(&failed);
    assert!(
        junit.contains("<system-out>attempt 0: judge fail: llm:failer/judge-v1: It blames the database, not api.</system-out>"),
        "{junit}"
    );

    let requests = seen.lock().unwrap().clone();
    assert_eq!(requests.len(), 8, "one request per graded attempt");
    for body in &requests {
        let text = body.to_string();
        for secret in [TRUTH_EMAIL, TRUTH_SECRET, CONCLUSION_EMAIL] {
            assert!(!text.contains(secret), "{secret} was sent: {text}");
        }
        let user = body["messages"][1]["content"].as_str().unwrap();
        assert!(user.contains("[redacted:email]"), "{user}");
        assert!(user.contains("api ran out of memory"), "{user}");
        assert!(user.contains("component: api"), "{user}");
        assert!(user.contains("onset: 2026-03-01T12:00:00Z"), "{user}");
        assert_eq!(body["response_format"], json!({"type": "json_object"}));
    }
}
