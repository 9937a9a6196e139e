"""The OpenTelemetry Python SDK exports a GenAI-style agent trace to evalmint, over OTLP/HTTP
protobuf (plain and gzip) and as OTLP JSON; evalmint must store and serve the investigation, its
tool calls and its conclusion, and join feedback sent with plain HTTP."""

import base64
import json

from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

CONCLUSION = "Root cause: payments-db connection pool exhausted from 14:02 UTC; checkout errors are a symptom."


def run_agent(provider: TracerProvider, alert: str) -> str:
    """One investigation in the OTel GenAI conventions; returns its trace id as hex."""
    tracer = provider.get_tracer("sre-agent")
    with tracer.start_as_current_span("invoke_agent sre-investigator") as agent:
        agent.set_attribute("gen_ai.operation.name", "invoke_agent")
        agent.set_attribute("gen_ai.agent.name", "sre-investigator")
        agent.set_attribute("gen_ai.agent.version", "1.3.0")
        agent.set_attribute("gen_ai.request.model", "gpt-4o")
        agent.set_attribute("evalmint.trigger.kind", "alert")
        agent.set_attribute("evalmint.trigger.text", alert)
        for tool, arguments, result in [
            (
                "query_metrics",
                {"query": 'histogram_quantile(0.99, rate(http_duration_bucket{service="checkout"}[5m]))', "range": "30m"},
                '{"checkout": "p99 2.4s"}',
            ),
            (
                "search_logs",
                {"query": "level:error", "service": "payments-db", "start": "2026-11-27T13:30:00Z", "end": "2026-11-27T14:10:00Z"},
                "FATAL: remaining connection slots are reserved",
            ),
        ]:
            with tracer.start_as_current_span(f"execute_tool {tool}") as span:
                span.set_attribute("gen_ai.operation.name", "execute_tool")
                span.set_attribute("gen_ai.tool.name", tool)
                span.set_attribute("gen_ai.tool.call.arguments", json.dumps(arguments))
                span.set_attribute("gen_ai.tool.call.result", result)
        with tracer.start_as_current_span("chat gpt-4o") as llm:
            llm.set_attribute("gen_ai.operation.name", "chat")
            llm.set_attribute("gen_ai.request.model", "gpt-4o")
            llm.set_attribute(
                "gen_ai.output.messages",
                json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": CONCLUSION}]}]),
            )
        agent.set_attribute(
            "gen_ai.output.messages",
            json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": CONCLUSION}]}]),
        )
        return format(agent.get_span_context().trace_id, "032x")


def check_investigation(server, trace_id: str, alert: str):
    status, investigation = server.request("GET", f"/api/v1/investigations/{trace_id}")
    assert status == 200, investigation
    assert investigation["id"] == trace_id
    assert investigation["agent"]["name"] == "sre-investigator"
    assert investigation["agent"]["model"] == "gpt-4o"
    assert investigation["trigger"]["text"] == alert
    assert investigation["conclusion"] == CONCLUSION
    kinds = sorted(step["kind"] for step in investigation["steps"])
    assert kinds == ["agent", "llm", "tool", "tool"]
    calls = {s["tool_call"]["tool_name"]: s["tool_call"] for s in investigation["steps"] if s["kind"] == "tool"}
    assert calls["query_metrics"]["source"] == "metrics"
    assert calls["query_metrics"]["entities"] == ["checkout"]
    assert calls["search_logs"]["source"] == "logs"
    assert calls["search_logs"]["query"] == "level:error"
    assert calls["search_logs"]["entities"] == ["payments-db"]
    assert calls["search_logs"]["window"] == {"start": "2026-11-27T13:30:00Z", "end": "2026-11-27T14:10:00Z"}
    assert calls["search_logs"]["result"] == "FATAL: remaining connection slots are reserved"
    return investigation


def provider_with(exporter) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": "sre-agent"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def test_protobuf_export_with_feedback_joined(server):
    exporter = OTLPSpanExporter(
        endpoint=f"{server.url}/v1/traces", headers={"Authorization": f"Bearer {server.key}"}
    )
    provider = provider_with(exporter)
    alert = "checkout p99 latency above 2s"
    trace_id = run_agent(provider, alert)
    provider.force_flush()
    provider.shutdown()

    check_investigation(server, trace_id, alert)
    status, feedback = server.request(
        "POST",
        "/api/v1/feedback",
        {
            "investigation_id": trace_id,
            "verdict": "not_quite",
            "rating": 3,
            "correction": "the pool was exhausted by a leaking batch job",
            "idempotency_key": f"interop-{trace_id}",
        },
    )
    assert status == 201, feedback
    status, again = server.request(
        "POST",
        "/api/v1/feedback",
        {
            "investigation_id": trace_id,
            "verdict": "not_quite",
            "rating": 3,
            "correction": "the pool was exhausted by a leaking batch job",
            "idempotency_key": f"interop-{trace_id}",
        },
    )
    assert status == 200 and again["id"] == feedback["id"]
    investigation = check_investigation(server, trace_id, alert)
    assert [f["id"] for f in investigation["feedback"]] == [feedback["id"]]


def test_gzip_export_with_headers_from_the_environment(server, monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", f"Authorization=Bearer%20{server.key}")
    exporter = OTLPSpanExporter(endpoint=f"{server.url}/v1/traces", compression=Compression.Gzip)
    provider = provider_with(exporter)
    alert = "payments error rate above 5%"
    trace_id = run_agent(provider, alert)
    provider.force_flush()
    provider.shutdown()
    check_investigation(server, trace_id, alert)


def to_otlp_json(request) -> bytes:
    """The OTLP JSON encoding: proto3 JSON with integer enums and hex (not base64) ids."""
    document = MessageToDict(request, use_integers_for_enums=True)
    for resource_spans in document["resourceSpans"]:
        for scope_spans in resource_spans["scopeSpans"]:
            for span in scope_spans["spans"]:
                for field in ("traceId", "spanId", "parentSpanId"):
                    if field in span:
                        span[field] = base64.b64decode(span[field]).hex()
    return json.dumps(document).encode()


def test_otlp_json_export(server):
    memory = InMemorySpanExporter()
    provider = provider_with(memory)
    alert = "orders consumer lag above 10k"
    trace_id = run_agent(provider, alert)
    provider.force_flush()
    body = to_otlp_json(encode_spans(memory.get_finished_spans()))
    status, response = server.request("POST", "/v1/traces", body)
    assert status == 200, response
    assert "partialSuccess" not in response or response["partialSuccess"] == {}
    check_investigation(server, trace_id, alert)


def test_wrong_key_is_refused(server):
    exporter = OTLPSpanExporter(
        endpoint=f"{server.url}/v1/traces", headers={"Authorization": "Bearer em_wrong"}
    )
    memory = InMemorySpanExporter()
    provider = provider_with(memory)
    run_agent(provider, "unauthorised")
    result = exporter.export(memory.get_finished_spans())
    assert result.name == "FAILURE"
