#!/usr/bin/env bash
# Fuzz the HTTP service against its own OpenAPI schema with schemathesis: every check, every
# operation (GET, HEAD and POST), positive and negative data, all four phases.
#
#   bash benchmarks/fuzz_openapi.sh                      # the shipped weights, 100 cases per operation
#   WEIGHTS=my_weights/ EXAMPLES=30 bash benchmarks/fuzz_openapi.sh
#
# Needs the dev extra (schemathesis). Starts `digitalhuman serve` on a free loopback port, waits for
# /health, runs `st run`, stops the server; exits with schemathesis' status (0: no failure of any
# kind). The JUnit report (test-case counts per operation) goes to $OUT (default: a temp folder).
# The service's own text limits apply, so a case is at most 2,000 characters of speech.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
ST=${ST:-$(cd "$(dirname "$PY")" && pwd)/st}
EXAMPLES=${EXAMPLES:-100}
SEED=${SEED:-1}
OUT=${OUT:-$(mktemp -d -t dh-fuzz-XXXXXX)}
PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
WEIGHTS_ARG=None
if [ -n "${WEIGHTS:-}" ]; then WEIGHTS_ARG="'$WEIGHTS'"; fi

"$PY" -c "from digitalhuman.service import serve; serve(port=$PORT, weights=$WEIGHTS_ARG, log_level='warning')" \
    >"$OUT/server.log" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
    if curl -fsS "http://127.0.0.1:$PORT/health" >/dev/null 2>&1; then break; fi
    kill -0 "$SERVER" 2>/dev/null || { cat "$OUT/server.log" >&2; exit 1; }
    sleep 0.5
done

START=$(date +%s)
status=0
# from $OUT: schemathesis keeps state in ./.schemathesis, which must not land in the repository
(cd "$OUT" && "$ST" run "http://127.0.0.1:$PORT/openapi.json" --checks all --phases examples,coverage,fuzzing,stateful \
    --max-examples "$EXAMPLES" --seed "$SEED" --workers 1 --request-timeout 120 --no-color \
    --suppress-health-check too_slow,filter_too_much --generation-database none \
    --report junit,ndjson --report-dir "$OUT") || status=$?
echo "fuzz_openapi: schemathesis exit $status in $(( $(date +%s) - START )) s; reports in $OUT"
if grep -q "Traceback" "$OUT/server.log"; then echo "fuzz_openapi: the server log has a traceback" >&2; status=1; fi
exit "$status"
