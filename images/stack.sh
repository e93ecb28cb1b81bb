#!/usr/bin/env bash
# Builds the images of the fleet's stack (deploy/compose.yaml), each skipped when built:
# the executor's own (images/executor.sh, on the local Python base), PostgreSQL 15 and
# HAProxy 2.6 from Debian's packages (images/build.sh), and the function images.
# With a registry, point EXECUTOR_POSTGRES_IMAGE and EXECUTOR_HAPROXY_IMAGE at the
# official postgres:15 and haproxy:2.6 instead (README "A fleet in one command").
set -euo pipefail
cd "$(dirname "$0")/.."
images/build.sh
images/build.sh executor/postgres:15 executor/haproxy:2.6
images/executor.sh "${EXECUTOR_IMAGE:-executor/executor:latest}"
