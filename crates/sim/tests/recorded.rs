//! The recorded-world loader on the shared Nezha day (`shared/data/nezha` beside the checkout, or
//! `EVALMINT_NEZHA_DATA`): entities, the call graph from parent/child spans, a metric series read
//! back exactly as the CSV has it, logs and traces through the telemetry API. Skips where the data
//! is absent.

use std::path::PathBuf;
use std::sync::Arc;

use evalmint_sim::recorded::{self, RecordedWorld};
use evalmint_sim::telemetry::{
    LogParams, RangeParams, Retention, SimClock, TelemetryService, TraceParams,
};

/// The shared Nezha data: the environment's choice, or `shared/data/nezha` in an ancestor.
fn nezha_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("EVALMINT_NEZHA_DATA") {
        return Some(PathBuf::from(dir));
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|a| a.join("shared/data/nezha"))
        .find(|d| d.is_dir())
}

fn load() -> Option<RecordedWorld> {
    let Some(dir) = nezha_dir() else {
        evalmint_testkit::skip("the Nezha data (shared/data/nezha) is not here");
        return None;
    };
    Some(recorded::load(&dir).expect("the shared day loads"))
}

#[test]
fn the_shared_day_loads_into_a_world_with_its_entities_call_graph_and_series() {
    let Some(world) = load() else { return };
    assert_eq!(world.format, "nezha");
    // 46 pods, one per workload; the pod's replica-set hash is not part of the entity.
    assert_eq!(world.services.len(), 46);
    let order = world.service("ts-order-service").expect("a workload");
    assert_eq!(order.pods.len(), 1);
    assert_eq!(order.pods[0].name, "ts-order-service-5b67c48447-mv5hb");
    assert_eq!(order.pods[0].host, "33.33.33.76");
    // Traces enter at the gateway, so it is the entry (kind frontend).
    assert_eq!(world.entry.as_deref(), Some("ts-gateway-service"));
    assert_eq!(
        world.service("ts-gateway-service").map(|s| s.kind),
        Some("frontend")
    );
    // Parent/child spans across pods make the call graph.
    let travel = world.service("ts-travel-service").expect("a workload");
    for callee in ["ts-basic-service", "ts-route-service", "ts-seat-service"] {
        assert!(travel.calls.contains(callee), "travel → {callee}");
        assert!(
            world
                .service(callee)
                .unwrap()
                .callers
                .contains("ts-travel-service")
        );
    }
    let edges: usize = world.services.iter().map(|s| s.calls.len()).sum();
    assert!((55..80).contains(&edges), "{edges} call edges");
    // 28 faults, at inject_time on the telemetry's clock.
    assert_eq!(world.faults.len(), 28);
    assert_eq!(world.faults[0].at, 1_674_981_784);
    assert_eq!(world.faults[0].pod, "ts-contacts-service-866bd68c97-xcqfx");
    assert_eq!(world.faults[0].category(), "code_defect");
    assert_eq!(world.faults[27].category(), "resource.cpu");
    // The first row of ts-order-service's CSV: CpuUsageRate(%) 1.5655674612329498 at 1674981670.
    let cpu = world.samples(&[
        ("__name__", "cpu_usage_ratio"),
        ("pod", "ts-order-service-5b67c48447-mv5hb"),
    ]);
    assert_eq!(cpu.len(), 1);
    assert_eq!(cpu[0][0].0, 1_674_981_670);
    assert!((cpu[0][0].1 - 0.015_655_674_612_329_498).abs() < 1e-12);
    assert_eq!(cpu[0].len(), 919);
    // The success-rate column is all zeros on this day: not served, and the loader says why.
    assert!(world.metric_names().all(|m| m != "request_success_ratio"));
    assert!(world.notes.iter().any(|n| n.contains("PodSuccessRate")));
    assert!(world.metric_names().any(|m| m == "request_error_ratio"));
}

#[test]
fn the_telemetry_api_serves_the_recorded_world_with_retention() {
    let Some(world) = load() else { return };
    let world = Arc::new(world);
    let now_ms = world.end * 1000;
    let service = TelemetryService::recorded(
        world.clone(),
        Arc::new(SimClock::manual(now_ms)),
        Retention::default(),
    );
    let range = |query: &str, start: &str, end: &str| {
        service.query_range(&RangeParams {
            query: Some(query.into()),
            start: Some(start.into()),
            end: Some(end.into()),
            step: Some("60".into()),
        })
    };
    let answer = range(
        r#"max by (service) (cpu_usage_ratio{service=~"ts-order-service|ts-travel-service"})"#,
        "2023-01-29T08:40:00Z",
        "2023-01-29T09:00:00Z",
    )
    .expect("a query the API understands");
    let result = answer["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 2);
    assert_eq!(result[0]["metric"]["service"], "ts-order-service");
    assert!(result[0]["values"].as_array().unwrap().len() >= 19);
    // An unknown metric is the simulator's 400, not an empty answer.
    assert!(
        range(
            "no_such_metric",
            "2023-01-29T08:40:00Z",
            "2023-01-29T09:00:00Z"
        )
        .is_err()
    );
    // Logs carry trace and span ids; the error lines of the exception fault at 09:25:39 are there.
    let logs = service
        .search_logs(&LogParams {
            query: Some("level:error".into()),
            start: Some("2023-01-29T09:25:00Z".into()),
            end: Some("2023-01-29T09:28:00Z".into()),
            limit: Some(1000),
        })
        .unwrap();
    let lines = logs["data"]["result"].as_array().unwrap();
    assert!(!lines.is_empty());
    assert!(lines.iter().all(|l| l["level"] == "error"));
    assert!(
        lines
            .iter()
            .any(|l| l["trace_id"].is_string() && l["span_id"].is_string())
    );
    // Traces enter at the gateway; an unknown service is 404-shaped.
    let traces = service
        .traces(&TraceParams {
            service: Some("ts-gateway-service".into()),
            start: Some("2023-01-29T09:25:00Z".into()),
            end: Some("2023-01-29T09:28:00Z".into()),
            errors: Some(true),
            limit: Some(5),
        })
        .unwrap();
    let traces = traces["data"]["result"].as_array().unwrap();
    assert!(!traces.is_empty());
    assert!(
        traces
            .iter()
            .all(|t| t["error"] == true && t["spans"].as_array().unwrap().len() > 1)
    );
    assert!(matches!(
        service.traces(&TraceParams {
            service: Some("nope".into()),
            start: Some("2023-01-29T09:25:00Z".into()),
            end: Some("2023-01-29T09:28:00Z".into()),
            ..Default::default()
        }),
        Err(evalmint_sim::telemetry::QueryError::NotFound(_))
    ));
    // Retention: with the clock 30 days on, metrics (15 d) are gone.
    service.clock().set(now_ms + 30 * 86_400_000);
    let gone = range(
        "cpu_usage_ratio",
        "2023-01-29T08:40:00Z",
        "2023-01-29T09:00:00Z",
    )
    .unwrap();
    assert_eq!(gone["data"]["result"].as_array().unwrap().len(), 0);
}

#[test]
fn openmetrics_export_ends_with_eof_and_keeps_every_sample() {
    let Some(world) = load() else { return };
    let mut out = Vec::new();
    world.write_openmetrics(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.ends_with("# EOF\n"));
    let samples = text.lines().filter(|l| !l.starts_with('#')).count();
    let expected: usize = world
        .metric_names()
        .flat_map(|m| world.samples(&[("__name__", m)]))
        .map(<[_]>::len)
        .sum();
    assert_eq!(samples, expected);
    assert!(text.contains(
        "cpu_usage_ratio{kind=\"service\",node=\"33.33.33.76\",pod=\"ts-order-service-5b67c48447-mv5hb\",service=\"ts-order-service\"} 0.015655674612329498 1674981670"
    ));
}
