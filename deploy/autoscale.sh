#!/usr/bin/env bash
# Scales deploy/compose.yaml's executors by wait (docs/scaling.md "Scaling by wait"): every
# INTERVAL seconds, `executor autoscale` reads every executor's /metrics (each replica has
# its own loopback port) and says how many executors the fleet wants; docker compose
# applies it. A removed executor gets SIGTERM: its calls finish, its containers go.
#   deploy/autoscale.sh [--once] [-- AUTOSCALE OPTIONS...]     (executor autoscale --help)
# Environment: COMPOSE ("docker-compose" or "docker compose"), COMPOSE_PROJECT_NAME,
# EXECUTOR (the CLI, "executor"), INTERVAL (30 s between decisions).
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck disable=SC2086  # COMPOSE and EXECUTOR may be commands with arguments
compose() { ${COMPOSE:-docker-compose} -f compose.yaml "$@"; }
once=0
if [ "${1:-}" = --once ]; then once=1; shift; fi
if [ "${1:-}" = -- ]; then shift; fi
while true; do
  n=$(compose ps -q executor | wc -l)
  urls=()
  for i in $(seq 1 "$n"); do urls+=("http://$(compose port --index "$i" executor 8080)"); done
  # shellcheck disable=SC2086
  wanted=$(${EXECUTOR:-executor} autoscale --count "$@" "${urls[@]}")
  if [ "$wanted" != "$n" ]; then
    echo "autoscale: $n -> $wanted executors"
    compose up -d --no-recreate --scale executor="$wanted" executor
  fi
  [ "$once" = 1 ] && break
  sleep "${INTERVAL:-30}"
done
