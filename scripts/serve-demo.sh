#!/usr/bin/env bash
# Runs the executor with the hello example deployed (app "demo", route "/hello"), until
# Ctrl-C or SIGTERM, which stop it gracefully.
set -euo pipefail
cd "$(dirname "$0")/.."
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8080}
URL="http://$HOST:$PORT"
export EXECUTOR_URL=$URL

.venv/bin/executor serve --host "$HOST" --port "$PORT" "$@" &
server=$!
trap 'kill -TERM $server 2>/dev/null || true; wait $server' INT TERM

.venv/bin/python - "$URL" "$server" <<'PY'
import os, sys, time, urllib.request
url, pid = sys.argv[1], int(sys.argv[2])
for _ in range(300):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit("executor exited before it was ready")
    try:
        urllib.request.urlopen(url + "/health/ready", timeout=1)
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit("executor not ready after 30 s")
PY
.venv/bin/executor apps create demo >/dev/null 2>&1 || true  # 409 when it exists already
.venv/bin/executor routes create demo /hello executor/hello >/dev/null
.venv/bin/executor routes create demo /hello-hot executor/hello-stream --format http-stream >/dev/null
.venv/bin/executor routes create demo /hello-go executor/go-hello --min-warm 2 >/dev/null
echo "deployed: curl -X POST $URL/r/demo/hello (cold), $URL/r/demo/hello-hot (hot)," \
  "$URL/r/demo/hello-go (pre-started); the dashboard: $URL/ui/"
wait $server
