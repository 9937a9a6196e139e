//! A run survives its agent: a crash, a hang, a garbage answer each give an `error` result with
//! the reason, and the other labels are still graded.

use std::sync::Arc;
use std::time::Duration;

use evalmint_eval::agent::from_spec;
use evalmint_eval::run::{RunConfig, execute};
use evalmint_eval::{LabelVersion, ReplayWorld, Sessions};
use evalmint_model::{Catalog, GroundTruth, Outcome, TenantId};

fn label(id: &str) -> LabelVersion {
    LabelVersion {
        label_id: id.into(),
        version: 1,
        world: Arc::new(ReplayWorld::default()),
        ground_truth: Some(GroundTruth {
            statement: "api ran out of memory".into(),
            components: vec!["api".into()],
            category: None,
            onset: None,
            causal_chain: vec![],
            evidence: vec![],
            reason: None,
            entities: vec![],
        }),
        segments: vec![],
    }
}

async fn run_one(spec: &str) -> evalmint_model::EvalResult {
    let agent = from_spec(spec, None).unwrap();
    let config = RunConfig {
        k: 1,
        concurrency: 2,
        timeout: Duration::from_secs(2),
        call_limit: 10,
        grade: Default::default(),
        base_url: "http://127.0.0.1:9".into(),
        label_source: evalmint_eval::labels::ADMITTED.into(),
        judge: None,
        baseline: None,
    };
    let run = execute(
        Arc::new(Sessions::default()),
        TenantId::default_tenant(),
        spec.into(),
        agent,
        vec![label("l1")],
        Arc::new(Catalog::default()),
        config,
        Arc::new(|_| {}),
    )
    .await;
    assert_eq!(run.results.len(), 1);
    run.results.into_iter().next().unwrap()
}

#[tokio::test]
async fn crashing_hanging_and_garbage_agents_are_errors_with_reasons() {
    let passed = run_one(
        r#"cmd:cat >/dev/null; echo '{"conclusion": "api OOM", "rca": {"component": "api"}}'"#,
    )
    .await;
    assert_eq!(passed.outcome, Outcome::Pass, "{}", passed.reason);
    let failed = run_one(r#"cmd:echo '{"conclusion": "db", "rca": {"component": "db"}}'"#).await;
    assert_eq!(failed.outcome, Outcome::Fail);
    assert_eq!(failed.reason, "component: answered db, expected api");

    let crashed = run_one("cmd:exit 3").await;
    assert_eq!(crashed.outcome, Outcome::Error);
    assert!(
        crashed.reason.contains("exit status: 3"),
        "{}",
        crashed.reason
    );
    let hung = run_one("cmd:sleep 30").await;
    assert_eq!(hung.outcome, Outcome::Error);
    assert!(
        hung.reason.contains("did not answer within 2 s"),
        "{}",
        hung.reason
    );
    let garbage = run_one("cmd:echo 'I think it was the database'").await;
    assert_eq!(garbage.outcome, Outcome::Error);
    assert!(
        garbage
            .reason
            .starts_with("the agent's answer is malformed"),
        "{}",
        garbage.reason
    );
    let unreachable = run_one("http://127.0.0.1:9/agent").await;
    assert_eq!(unreachable.outcome, Outcome::Error);
    assert!(
        unreachable.reason.starts_with("the agent failed"),
        "{}",
        unreachable.reason
    );
}
