"""Feedback/s and latency percentiles through each compatible endpoint and the native one,
against a running evalmint: `python3 interop/bench_compat.py URL ADMIN_KEY [N] [CONCURRENCY]`.
Every request is one new feedback on one trace; figures are end to end through this client,
so they are a lower bound on what the server does."""

import asyncio
import base64
import os
import sys
import time
import uuid

import httpx


def bodies(kind, trace, n):
    for i in range(n):
        if kind == "native":
            yield "/api/v1/feedback", {"investigation_id": trace, "verdict": "down", "correction": "payments-db pool",
                                       "idempotency_key": f"b-{uuid.uuid4()}"}
        elif kind == "langfuse":
            yield "/api/public/scores", [{"id": str(uuid.uuid4()), "traceId": trace, "name": "helpful", "value": 0,
                                          "dataType": "BOOLEAN", "comment": "payments-db pool"}]
        elif kind == "phoenix":
            yield "/v1/span_annotations?sync=true", {"data": [{"name": "correctness", "annotator_kind": "HUMAN",
                "span_id": os.urandom(8).hex(), "identifier": str(i), "result": {"label": "incorrect", "explanation": "payments-db pool"}}]}
        else:
            yield "/feedback", {"id": str(uuid.uuid4()), "trace_id": str(uuid.UUID(trace)), "key": "user_score",
                                "score": 0, "comment": "payments-db pool"}


async def run(url, key, kind, n, concurrency):
    headers = {"Authorization": f"Bearer {key}"}
    if kind == "langfuse":
        headers = {"Authorization": "Basic " + base64.b64encode(f"pk-lf-bench:{key}".encode()).decode()}
    if kind == "langsmith":
        headers = {"x-api-key": key}
    trace = os.urandom(16).hex()
    queue = list(bodies(kind, trace, n))
    latencies = []
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30,
                                 limits=httpx.Limits(max_connections=concurrency)) as client:
        async def worker():
            while queue:
                path, body = queue.pop()
                started = time.perf_counter()
                response = await client.post(path, json=body)
                latencies.append(time.perf_counter() - started)
                assert response.status_code < 300, (kind, response.status_code, response.text)
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    pct = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000
    print(f"{kind:10} {n / elapsed:8.0f} feedback/s   p50 {pct(0.5):6.1f} ms   p99 {pct(0.99):6.1f} ms")


def main():
    url, key = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
    concurrency = int(sys.argv[4]) if len(sys.argv) > 4 else 32
    for kind in ["native", "langfuse", "phoenix", "langsmith"]:
        asyncio.run(run(url, key, kind, n, concurrency))


if __name__ == "__main__":
    main()
