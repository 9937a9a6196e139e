"""The Langfuse, Phoenix and LangSmith Python SDKs, pointed at evalmint by their base URL and key
and otherwise used as their documentation shows, create feedback that joins its trace and goes
through the label pipeline; a wrong key is refused with 401 and bad input with the SDK's 4xx."""

import json
import os
import time
import urllib.request
import uuid

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

CORRECTION = "it was the payments-db connection pool, exhausted by a leaking batch job"


def eventually(check, timeout=30.0):
    """Polls `check` until it returns something truthy; fails with its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s (last: {value!r})")
        time.sleep(0.2)


def feedback_of(server, trace_id, origin):
    status, investigation = server.request("GET", f"/api/v1/investigations/{trace_id}")
    if status != 200:
        return []
    return [f for f in investigation["feedback"] if f["origin"] == origin]


def labelled(server, feedback_id):
    """The feedback's label state once the pipeline has decided it, else None."""
    status, body = server.request("GET", f"/api/v1/feedback/{feedback_id}")
    assert status == 200, body
    state = body["label"]["state"]
    return body["label"] if state in ("candidate", "not_candidate") else None


def otel_trace(server):
    """An agent trace exported with the OpenTelemetry SDK; returns (trace id, tool span id)."""
    provider = TracerProvider(resource=Resource.create({"service.name": "sre-agent"}))
    exporter = OTLPSpanExporter(endpoint=f"{server.url}/v1/traces", headers={"Authorization": f"Bearer {server.key}"})
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("sre-agent")
    with tracer.start_as_current_span("invoke_agent sre") as agent:
        agent.set_attribute("gen_ai.operation.name", "invoke_agent")
        agent.set_attribute("gen_ai.agent.name", "sre-investigator")
        agent.set_attribute("evalmint.trigger.text", "checkout p99 latency above 2s")
        with tracer.start_as_current_span("execute_tool search_logs") as tool:
            tool.set_attribute("gen_ai.operation.name", "execute_tool")
            tool.set_attribute("gen_ai.tool.name", "search_logs")
            tool.set_attribute("gen_ai.tool.call.arguments", json.dumps({"query": "level:error", "service": "payments-db"}))
            tool.set_attribute("gen_ai.tool.call.result", "FATAL: remaining connection slots are reserved")
            span_id = format(tool.get_span_context().span_id, "016x")
        agent.set_attribute("evalmint.conclusion", "checkout is failing because of a bad deploy")
        trace_id = format(agent.get_span_context().trace_id, "032x")
    provider.shutdown()
    return trace_id, span_id


# --- Langfuse -------------------------------------------------------------------------------


def langfuse_client(server, secret, public_key="pk-lf-evalmint"):
    from langfuse import Langfuse

    # The SDK keeps one client per public key, so another secret needs another public key.
    return Langfuse(public_key=public_key, secret_key=secret, base_url=server.url, flush_at=1, flush_interval=0.2)


def test_langfuse_sdk_traces_and_scores(server):
    langfuse = langfuse_client(server, server.key)
    assert langfuse.auth_check()
    with langfuse.start_as_current_observation(name="sre-investigation", as_type="agent", input="checkout p99 above 2s") as agent:
        with agent.start_as_current_observation(name="search_logs", as_type="tool", input={"service": "payments-db"}) as tool:
            tool.update(output="FATAL: remaining connection slots are reserved")
            observation_id = tool.id
        agent.update(output="Root cause: checkout bad deploy")
        trace_id = agent.trace_id
    langfuse.create_score(name="helpful", value=0, data_type="BOOLEAN", trace_id=trace_id, comment=CORRECTION)
    langfuse.create_score(name="fix", value=CORRECTION, data_type="CORRECTION", trace_id=trace_id, observation_id=observation_id)
    langfuse.flush()
    langfuse.shutdown()

    scores = eventually(lambda: (lambda f: f if len(f) == 2 else None)(feedback_of(server, trace_id, "langfuse")))
    by_name = {f["metadata"]["langfuse"]["name"]: f for f in scores}
    assert by_name["helpful"]["verdict"] == "down"
    assert by_name["helpful"]["correction"] == CORRECTION
    assert by_name["fix"]["verdict"] == "not_quite"
    assert by_name["fix"]["span_id"] == observation_id
    for feedback in scores:
        eventually(lambda: labelled(server, feedback["id"]))


def test_langfuse_batch_partial_failure_is_207(server):
    langfuse = langfuse_client(server, server.key)
    trace_id, _ = otel_trace(server)
    response = langfuse.api.scores.create(
        request=[
            {"name": "thumbs", "value": "thumbs_up", "dataType": "CATEGORICAL", "traceId": trace_id, "unknownField": 1},
            {"name": "thumbs", "value": "meh", "dataType": "CATEGORICAL", "traceId": trace_id},
        ]
    )
    assert response.accepted == 1 and response.rejected == 1
    assert "scores[1]: value:" in response.errors[0].message
    assert [f["verdict"] for f in feedback_of(server, trace_id, "langfuse")] == ["up"]


def test_langfuse_wrong_key_is_401(server):
    from langfuse.api.core import ApiError

    with pytest.raises(ApiError) as error:
        langfuse_client(server, "em_not_a_key_at_all_0123456789", "pk-lf-wrong").auth_check()
    assert error.value.status_code == 401


# --- Phoenix --------------------------------------------------------------------------------


def test_phoenix_client_span_annotations(server):
    from phoenix.client import Client

    trace_id, span_id = otel_trace(server)
    client = Client(base_url=server.url, api_key=server.key)
    inserted = client.spans.add_span_annotation(
        span_id=span_id, annotation_name="correctness", label="incorrect", explanation=CORRECTION, sync=True
    )
    assert inserted and inserted["id"]
    client.spans.log_span_annotations(
        span_annotations=[{"name": "quality", "annotator_kind": "HUMAN", "span_id": span_id, "result": {"score": 4}}]
    )
    annotations = eventually(lambda: (lambda f: f if len(f) == 2 else None)(feedback_of(server, trace_id, "phoenix")))
    correctness = next(f for f in annotations if f["id"] == inserted["id"])
    assert correctness["verdict"] == "down" and correctness["correction"] == CORRECTION
    assert correctness["span_id"] == span_id
    assert next(f for f in annotations if f["id"] != inserted["id"])["rating"] == 4
    eventually(lambda: labelled(server, inserted["id"]))
    with urllib.request.urlopen(f"{server.url}/arize_phoenix_version") as response:
        assert response.read().decode().count(".") == 2


def test_phoenix_bad_annotation_and_wrong_key(server):
    from phoenix.client import Client

    _, span_id = otel_trace(server)
    with pytest.raises(httpx.HTTPStatusError) as error:
        Client(base_url=server.url, api_key=server.key).spans.add_span_annotation(
            span_id=span_id, annotation_name="x", label="meh", sync=True
        )
    assert error.value.response.status_code == 422
    assert "result.label" in error.value.response.json()["detail"]
    with pytest.raises(httpx.HTTPStatusError) as error:
        Client(base_url=server.url, api_key="em_wrong_key_0123456789abcdef").spans.add_span_annotation(
            span_id=span_id, annotation_name="x", label="good", sync=True
        )
    assert error.value.response.status_code == 401


# --- LangSmith ------------------------------------------------------------------------------


def test_langsmith_client_feedback(server):
    from langsmith import Client

    trace_id, span_id = otel_trace(server)
    client = Client(api_url=server.url, api_key=server.key)
    # A LangSmith run id's first 8 bytes are its OTel span id (LangSmith's own OTel mapping).
    run_id = uuid.UUID(bytes=bytes.fromhex(span_id) + os.urandom(8))
    client.create_feedback(
        run_id=run_id, trace_id=uuid.UUID(trace_id), key="user_score", score=0,
        comment="wrong service", correction={"answer": CORRECTION},
    )
    client.create_feedback(trace_id=uuid.UUID(trace_id), key="stars", score=2)
    feedback = eventually(lambda: (lambda f: f if len(f) == 2 else None)(feedback_of(server, trace_id, "langsmith")))
    scored = next(f for f in feedback if f["metadata"]["langsmith"]["key"] == "user_score")
    assert scored["verdict"] == "down" and scored["correction"] == CORRECTION
    assert scored["span_id"] == span_id
    assert next(f for f in feedback if f is not scored)["rating"] == 2
    eventually(lambda: labelled(server, scored["id"]))


def test_langsmith_bad_feedback_and_wrong_key(server):
    from langsmith import Client
    from langsmith.utils import LangSmithError

    trace_id, _ = otel_trace(server)
    with pytest.raises(LangSmithError) as error:
        Client(api_url=server.url, api_key=server.key).create_feedback(
            trace_id=uuid.UUID(trace_id), key="k", score=9.5
        )
    assert "422" in str(error.value) and "score" in str(error.value)
    with pytest.raises(LangSmithError) as error:
        Client(api_url=server.url, api_key="em_wrong_key_0123456789abcdef").create_feedback(
            trace_id=uuid.UUID(trace_id), key="k", score=1
        )
    assert "401" in str(error.value) or "auth" in str(error.value).lower()
