//! Sessions answer only from their label's frozen snapshot: exact, normalised and sliced
//! matches, "no data" for anything else, and never the ground truth or another label's data.

use std::sync::Arc;

use evalmint_eval::{ReplayWorld, Sessions};
use evalmint_model::{
    CaptureStatus, SignalSource, SnapshotQuery, TenantId, TimeWindow, Trigger, TriggerKind,
};
use serde_json::{Map, Value, json};

const T0: i64 = 1_772_366_400; // 2026-03-01T12:00:00Z

fn ts(secs: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_second(secs).unwrap()
}

fn frozen(id: &str, tool: &str, args: Value, window: Option<(i64, i64)>) -> SnapshotQuery {
    let mut q = SnapshotQuery::pending(
        id.into(),
        "sim".into(),
        SignalSource::Metrics,
        tool.into(),
        args.get("query")
            .and_then(Value::as_str)
            .unwrap_or(tool)
            .into(),
        ts(T0 + 86_400),
        ts(T0),
    );
    q.arguments = Some(args.to_string());
    q.window = window.map(|(s, e)| TimeWindow::new(ts(s), ts(e)).unwrap());
    q.status = CaptureStatus::Captured;
    q
}

fn matrix(service: &str, from: i64, to: i64, step: i64) -> Value {
    let values: Vec<Value> = (0..)
        .map(|i| from + i * step)
        .take_while(|t| *t <= to)
        .map(|t| json!([t as f64, format!("{}", t - from)]))
        .collect();
    json!({"status": "success", "data": {"resultType": "matrix", "result": [{"metric": {"service": service}, "values": values}]}})
}

/// A world with one metric query, one log search and the topology. `secret` is written only
/// into what a session must never see.
fn world(service: &str) -> ReplayWorld {
    let metric_args = json!({"query": format!("max by (service) (error_ratio{{service=~\"{service}|db\"}})"), "start": T0 - 2700, "end": T0, "step": "120s"});
    let logs_args = json!({"query": format!("level:warn service:{service},db"), "start": T0 - 2700, "end": T0, "limit": 300});
    let snapshot =
        vec![
        (
            frozen("q-metric", "query_metrics", metric_args, Some((T0 - 2700, T0))),
            matrix(service, T0 - 2700, T0, 120).to_string().into_bytes(),
        ),
        (
            frozen("q-logs", "search_logs", logs_args, Some((T0 - 2700, T0))),
            json!({"status": "success", "data": {"result": [
                {"timestamp": "2026-03-01T11:59:00Z", "service": service, "message": "late line"},
                {"timestamp": "2026-03-01T11:20:00Z", "service": service, "message": "early line"}
            ]}})
            .to_string()
            .into_bytes(),
        ),
        (
            frozen("q-topology", "list_services", json!({}), None),
            json!({"status": "success", "data": {"services": [
                {"name": service, "calls": ["db"]}, {"name": "db", "calls": []}
            ], "monitors": [{"name": "m", "service": service}]}})
            .to_string()
            .into_bytes(),
        ),
    ];
    let trigger = Trigger {
        kind: TriggerKind::Alert,
        text: "[FIRING] m".into(),
        monitor: Some("m".into()),
        fired_at: Some(ts(T0 - 300)),
    };
    ReplayWorld::new(Some(trigger), snapshot)
}

fn args(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

#[test]
fn matches_are_exact_normalised_sliced_or_no_data() {
    let sessions = Sessions::default();
    let s = sessions.open(
        TenantId::default_tenant(),
        None,
        "l1".into(),
        Arc::new(world("api")),
        50,
    );
    // Exact.
    let exact = s
        .call("query_metrics", &args(json!({"query": "max by (service) (error_ratio{service=~\"api|db\"})", "start": T0 - 2700, "end": T0, "step": "120s"})))
        .unwrap();
    assert_eq!(
        exact["data"]["result"][0]["values"]
            .as_array()
            .unwrap()
            .len(),
        23
    );
    // Normalised: spacing, RFC 3339 times, the step as a duration in another unit.
    let normalised = s
        .call("query_metrics", &args(json!({"query": "max by(service)(error_ratio{ service=~\"api|db\" })", "start": "2026-03-01T11:15:00Z", "end": "2026-03-01T12:00:00Z", "step": "2m"})))
        .unwrap();
    assert_eq!(normalised, exact);
    // A sub-window at a coarser step.
    let sliced = s
        .call("query_metrics", &args(json!({"query": "max by (service) (error_ratio{service=~\"api|db\"})", "start": T0 - 1500, "end": T0, "step": 240})))
        .unwrap();
    let points = sliced["data"]["result"][0]["values"].as_array().unwrap();
    assert_eq!(points.len(), 7);
    assert_eq!(points[0][0].as_f64().unwrap() as i64, T0 - 1500);
    // A range reaching past the investigation ends at it.
    let later = s
        .call("query_metrics", &args(json!({"query": "max by (service) (error_ratio{service=~\"api|db\"})", "start": T0 - 2700, "end": T0 + 600, "step": "120s"})))
        .unwrap();
    assert_eq!(later, exact);
    // Logs: word and list order do not matter; a sub-window drops the lines outside it.
    let logs = s
        .call(
            "search_logs",
            &args(json!({"query": "service:db,api  level:warn", "start": T0 - 1200, "end": T0})),
        )
        .unwrap();
    let lines = logs["data"]["result"].as_array().unwrap();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["message"], "late line");
    // A different query, a range before the capture, a finer step: no data.
    for unknown in [
        json!({"query": "up", "start": T0 - 2700, "end": T0, "step": 120}),
        json!({"query": "max by (service) (error_ratio{service=~\"api|db\"})", "start": T0 - 9000, "end": T0, "step": 120}),
        json!({"query": "max by (service) (error_ratio{service=~\"api|db\"})", "start": T0 - 2700, "end": T0, "step": 60}),
    ] {
        let answer = s.call("query_metrics", &args(unknown.clone())).unwrap();
        assert_eq!(answer["data"]["result"], json!([]), "{unknown}");
        assert!(
            answer["warnings"][0]
                .as_str()
                .is_some_and(|w| w.starts_with("no data")),
            "{unknown}: {answer}"
        );
    }
    // Dependencies come from the frozen topology.
    let deps = s
        .call("get_service_dependencies", &args(json!({"service": "db"})))
        .unwrap();
    assert_eq!(deps["data"]["called_by"], json!(["api"]));
    // Bad input names its field; an unknown tool is refused.
    let bad = s
        .call(
            "query_metrics",
            &args(json!({"query": "x", "start": "yesterday"})),
        )
        .unwrap_err();
    assert_eq!(
        bad.to_string(),
        "start: is not an RFC 3339 time or epoch seconds"
    );
    assert!(s.call("drop_tables", &Map::new()).is_err());
    // Every call is in the trace, with how it was answered.
    let record = sessions.close(&s.id).unwrap();
    assert_eq!(record.trace.len(), 11);
    let kinds: Vec<&str> = record
        .trace
        .iter()
        .filter_map(|st| st.tool_call.as_ref()?.result.as_deref())
        .collect();
    assert_eq!(&kinds[..4], ["exact", "normalised", "slice", "exact"]);
    assert!(record.hits.contains(&"q-logs".to_owned()));
    assert!(
        sessions.get(&s.id).is_none(),
        "a closed session no longer answers"
    );
}

#[test]
fn a_session_never_sees_another_label_and_stops_at_its_call_limit() {
    let sessions = Sessions::default();
    let a = sessions.open(
        TenantId::default_tenant(),
        None,
        "a".into(),
        Arc::new(world("alpha")),
        5,
    );
    let b = sessions.open(
        TenantId::default_tenant(),
        None,
        "b".into(),
        Arc::new(world("bravo")),
        5,
    );
    assert_ne!(a.id, b.id);
    let other = a
        .call("query_metrics", &args(json!({"query": "max by (service) (error_ratio{service=~\"bravo|db\"})", "start": T0 - 2700, "end": T0, "step": "120s"})))
        .unwrap();
    assert_eq!(
        other["data"]["result"],
        json!([]),
        "bravo's series are not alpha's"
    );
    let series = a.prometheus("series", &Map::new(), &[]).unwrap();
    assert!(!series.to_string().contains("bravo"));
    for _ in 0..3 {
        a.call("list_services", &Map::new()).unwrap();
    }
    assert!(
        a.call("list_services", &Map::new())
            .unwrap_err()
            .to_string()
            .contains("limit of 5")
    );
}
