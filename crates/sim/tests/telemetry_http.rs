//! The telemetry API over a real loopback socket: Prometheus shapes, log and event search, the
//! scrape endpoint, and retention enforced against the simulated clock.

use std::sync::Arc;

use evalmint_sim::telemetry::{Retention, SimClock, TelemetryService, app, rfc3339_ms};
use evalmint_sim::world::{DEFAULT_TIMELINE_END, World, WorldConfig};
use serde_json::Value;

struct Api {
    base: String,
    client: reqwest::Client,
    world: Arc<World>,
    clock: Arc<SimClock>,
}

async fn start(retention: Retention) -> Api {
    let world = Arc::new(World::generate(WorldConfig {
        seed: 7,
        incidents: 6,
        services: Some(20),
        timeline_end: DEFAULT_TIMELINE_END,
    }));
    let last = world.incidents.last().unwrap();
    let clock = Arc::new(SimClock::manual(last.fired_at * 1000 + 10 * 60_000));
    let service = Arc::new(TelemetryService::new(
        world.clone(),
        clock.clone(),
        retention,
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app(service)).await });
    Api {
        base,
        client: reqwest::Client::new(),
        world,
        clock,
    }
}

impl Api {
    async fn get(&self, path: &str, params: &[(&str, String)]) -> (u16, Value) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .query(params)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }
}

fn short_retention() -> Retention {
    Retention {
        metrics: 2 * 3600,
        logs: 30 * 60,
        events: 3600,
        traces: 15 * 60,
    }
}

fn result_len(body: &Value) -> usize {
    body["data"]["result"].as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn metrics_older_than_their_ttl_are_gone() {
    let api = start(short_retention()).await;
    let now = api.now_ms();
    let query = "max by (service) (request_error_ratio)".to_string();
    let range = |start: i64, end: i64| {
        vec![
            ("query", query.clone()),
            ("start", rfc3339_ms(start)),
            ("end", rfc3339_ms(end)),
            ("step", "60".to_string()),
        ]
    };
    let (status, old) = api
        .get(
            "/api/v1/query_range",
            &range(now - 5 * 3_600_000, now - 4 * 3_600_000),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(old["status"], "success");
    assert_eq!(old["data"]["resultType"], "matrix");
    assert_eq!(
        result_len(&old),
        0,
        "metrics older than the TTL were returned"
    );

    let (_, recent) = api
        .get("/api/v1/query_range", &range(now - 30 * 60_000, now))
        .await;
    assert_eq!(result_len(&recent), api.world.topology.components.len());
    let first = &recent["data"]["result"][0];
    assert!(first["metric"]["service"].is_string());
    let values = first["values"].as_array().unwrap();
    assert_eq!(values.len(), 31);
    assert!(values[0][0].is_f64() && values[0][1].as_str().unwrap().parse::<f64>().is_ok());

    // A window straddling the cut-off keeps only the retained points.
    let (_, straddling) = api
        .get("/api/v1/query_range", &range(now - 3 * 3_600_000, now))
        .await;
    let points = straddling["data"]["result"][0]["values"]
        .as_array()
        .unwrap();
    let oldest = points[0][0].as_f64().unwrap() * 1000.0;
    assert!(oldest >= (now - 2 * 3_600_000) as f64);

    // Advancing the simulated clock ages the recent window out too.
    let response = api
        .client
        .post(format!("{}/api/v1/clock", api.base))
        .json(&serde_json::json!({"advance": "3h"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let (_, aged) = api
        .get("/api/v1/query_range", &range(now - 30 * 60_000, now))
        .await;
    assert_eq!(result_len(&aged), 0);
}

#[tokio::test]
async fn logs_and_events_respect_their_own_ttls() {
    let api = start(short_retention()).await;
    let now = api.now_ms();
    let last = api.world.incidents.last().unwrap();
    let first = &api.world.incidents[0];
    let window =
        |start: i64, end: i64| vec![("start", rfc3339_ms(start)), ("end", rfc3339_ms(end))];

    let (_, recent_events) = api
        .get(
            "/api/v1/events",
            &window(last.onset * 1000 - 20 * 60_000, now),
        )
        .await;
    let (_, old_events) = api
        .get(
            "/api/v1/events",
            &window(first.onset * 1000 - 4 * 3_600_000, first.end * 1000),
        )
        .await;
    assert!(!first.events.is_empty() && !last.events.is_empty());
    assert!(
        result_len(&recent_events) > 0,
        "recent events missing: {recent_events}"
    );
    assert_eq!(
        result_len(&old_events),
        0,
        "events older than the TTL were returned"
    );

    let mut params = window(now - 20 * 60_000, now);
    params.push(("query", String::new()));
    let (_, recent_logs) = api.get("/api/v1/logs", &params).await;
    assert!(result_len(&recent_logs) > 0);
    let line = &recent_logs["data"]["result"][0];
    for field in ["timestamp", "service", "pod", "level", "message"] {
        assert!(line[field].is_string(), "log line without {field}: {line}");
    }
    let mut old = window(now - 3 * 3_600_000, now - 2 * 3_600_000);
    old.push(("query", String::new()));
    let (_, old_logs) = api.get("/api/v1/logs", &old).await;
    assert_eq!(result_len(&old_logs), 0);

    let service = api.world.topology.components[last.alerted].name.clone();
    let mut traces = window(now - 10 * 60_000, now);
    traces.push(("service", service));
    let (status, recent_traces) = api.get("/api/v1/traces", &traces).await;
    assert_eq!(status, 200);
    assert!(result_len(&recent_traces) > 0);
}

#[tokio::test]
async fn fault_logs_are_searchable_by_service_and_text() {
    let api = start(Retention::default()).await;
    let incident = api.world.incidents.last().unwrap();
    let root_line = incident
        .logs
        .iter()
        .find(|l| l.component == incident.root)
        .expect("root logs");
    let service = &api.world.topology.components[incident.root].name;
    let word = root_line
        .message
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let params = vec![
        (
            "query",
            format!(
                "service:{service} level:{} \"{word}\"",
                root_line.level.as_str()
            ),
        ),
        ("start", rfc3339_ms(incident.onset * 1000 - 600_000)),
        ("end", rfc3339_ms(incident.end * 1000)),
    ];
    let (_, body) = api.get("/api/v1/logs", &params).await;
    let lines = body["data"]["result"].as_array().unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == root_line.message.as_str()),
        "{body}"
    );
    assert!(lines.iter().all(|l| l["service"] == service.as_str()));
}

#[tokio::test]
async fn instant_queries_scrape_topology_and_errors() {
    let api = start(Retention::default()).await;
    let (status, vector) = api
        .get(
            "/api/v1/query",
            &[(
                "query",
                "topk(3, cpu_usage_ratio{kind=\"service\"})".to_string(),
            )],
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(vector["data"]["resultType"], "vector");
    assert_eq!(result_len(&vector), 3);

    let (status, bad) = api
        .get("/api/v1/query", &[("query", "rate(x[5m])".to_string())])
        .await;
    assert_eq!(status, 400);
    assert_eq!(bad["status"], "error");
    assert_eq!(bad["errorType"], "bad_data");

    let (_, services) = api.get("/api/v1/services", &[]).await;
    let listed = services["data"]["services"].as_array().unwrap();
    assert_eq!(listed.len(), api.world.topology.components.len());
    assert!(listed.iter().any(|s| s["kind"] == "postgres"));
    assert!(!services["data"]["queues"].as_array().unwrap().is_empty());

    let scrape = api
        .client
        .get(format!("{}/metrics", api.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(scrape.contains("# TYPE request_error_ratio gauge"));
    assert!(scrape.contains("# TYPE container_restarts_total counter"));
    let name = &api.world.topology.components[0].name;
    assert!(
        scrape.lines().any(
            |l| l.starts_with("cpu_usage_ratio{") && l.contains(&format!("service=\"{name}\""))
        )
    );
}
