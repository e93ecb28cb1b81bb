#!/usr/bin/env bash
# Builds the executor's own image (Dockerfile) on the local Python base, which has no pip:
# the dependencies are installed on the host with pip install --target and copied in.
# Always builds (Docker's layer cache makes a rebuild with no change quick).
#   images/executor.sh [TAG]     default executor/executor:latest
# With a registry, `docker build -t executor .` on the default base does the same.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=images/lib.sh
. images/lib.sh

TAG=${1:-executor/executor:latest}
BASE=${BASE:-executor/python3:latest}
# The base, and the launcher of pre-started containers that executor/ carries.
images/build.sh "$BASE" >/dev/null

t0=$(now_ms)
# The pinned dependencies, as pyproject.toml lists them.
mapfile -t deps < <("${PYTHON_HOST:-python3}" -c \
  'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))')
site=$(site_packages "${deps[@]}")
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp -r Dockerfile .dockerignore pyproject.toml executor "$ctx"/
mkdir "$ctx/deps"
cp -r "$site" "$ctx/deps/site"
rm -f "$ctx/deps/site/.done"
previous=$(docker image inspect -f '{{.Id}}' "$TAG" 2>/dev/null || true)
if ! docker build -q --build-arg "BASE=$BASE" -t "$TAG" "$ctx" >"$ctx/build.log" 2>&1; then
  cat "$ctx/build.log" >&2; echo "images/executor.sh: $TAG failed" >&2; exit 1
fi
# The image this build replaced, untagged now: remove it unless a container uses it.
if [ -n "$previous" ] && [ "$previous" != "$(docker image inspect -f '{{.Id}}' "$TAG")" ]; then
  docker rmi "$previous" >/dev/null 2>&1 || true
fi
t1=$(now_ms)
size=$(docker image inspect -f '{{.Size}}' "$TAG")
printf '%s built in %d.%01ds (%d MB)\n' "$TAG" $(((t1 - t0) / 1000)) $((((t1 - t0) % 1000) / 100)) $((size / 1000000))
