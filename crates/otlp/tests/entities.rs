//! The names an export request's attributes carry, as catalog entries: a fixture in, the entries
//! out, compared against a reviewed rendering.

use evalmint_otlp::{Encoding, catalog_entries, decode_request};
use expect_test::expect;

#[test]
fn resource_and_span_attributes_name_the_world_once_each() {
    let body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/application_trace.json"
    ))
    .unwrap();
    let request = decode_request(&body, Encoding::Json).unwrap();
    let rendered: Vec<String> = catalog_entries(&request)
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect();
    expect![[r#"
        {"name":"checkout","kind":"service","depends_on":["payments-db","orders","order-events","payments"],"provenance":"trace"}
        {"name":"checkout-7d4f8b6c9d-x2x7q","kind":"pod","workload":"checkout","provenance":"trace"}
        {"name":"ip-10-0-3-7.ec2.internal","kind":"node","provenance":"trace"}
        {"name":"order-events","kind":"queue","provenance":"trace"}
        {"name":"orders","kind":"database","aliases":["postgresql orders"],"provenance":"trace"}
        {"name":"payments","kind":"service","provenance":"trace"}
        {"name":"payments-db.prod","kind":"database","workload":"payments-db","provenance":"trace"}
        {"name":"redis-cart","kind":"statefulset","provenance":"trace"}
        {"name":"redis-cart-0","kind":"pod","workload":"redis-cart","provenance":"trace"}
        {"name":"shop","kind":"namespace","provenance":"trace"}
        {"name":"sre-agent","kind":"agent","provenance":"trace"}
    "#]]
    .assert_eq(&(rendered.join("\n") + "\n"));
}

#[test]
fn a_request_without_attributes_names_nothing() {
    let request = decode_request(
        br#"{"resourceSpans": [{"scopeSpans": []}]}"#,
        Encoding::Json,
    )
    .unwrap();
    assert!(catalog_entries(&request).is_empty());
}
