#!/usr/bin/env bash
# Validates the live server's OpenAPI description and runs schemathesis against every documented
# operation: no 5xx, responses and statuses as documented. Needs EVALMINT_BIN (a built evalmint).
set -euo pipefail
bin=${EVALMINT_BIN:?set EVALMINT_BIN to the evalmint binary}
data=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
key="em_openapi_check_admin_key_0123456789"
EVALMINT_ADMIN_KEY=$key EVALMINT_LOG=warn "$bin" serve --data "$data" --listen "127.0.0.1:$port" >/dev/null &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$data"' EXIT
url="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -fs "$url/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fs "$url/openapi.json" -o "$data/openapi.json"
python3 -m openapi_spec_validator "$data/openapi.json"
# schemathesis keeps a cache in its working directory: give it the throwaway one. The hooks
# teach it to send JSON Lines (a release import).
hooks_dir=$(cd "$(dirname "$0")" && pwd)
cd "$data"
PYTHONPATH="$hooks_dir${PYTHONPATH:+:$PYTHONPATH}" SCHEMATHESIS_HOOKS=schemathesis_hooks \
python3 -m schemathesis.cli run "$url/openapi.json" \
  --header "Authorization: Bearer $key" \
  --checks not_a_server_error,status_code_conformance,response_schema_conformance \
  --max-examples "${SCHEMATHESIS_EXAMPLES:-25}" \
  --phases examples,coverage,fuzzing
