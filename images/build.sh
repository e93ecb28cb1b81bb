#!/usr/bin/env bash
# Builds every image the project, its tests and its benchmarks use, from Debian packages
# only: no registry is needed. An image already on the engine is skipped (FORCE=1 rebuilds).
#   images/build.sh            everything
#   images/build.sh NAME...    only those (e.g. executor/hello)
set -euo pipefail
cd "$(dirname "$0")/.."

FORCE=${FORCE:-0}
SUITE=${DEBIAN_SUITE:-bookworm}
BUSYBOX=executor/busybox:latest
PYTHON=executor/python3:latest

# shellcheck source=images/lib.sh
. images/lib.sh
have() { docker image inspect "$1" >/dev/null 2>&1; }
wanted() { [ ${#ONLY[@]} -eq 0 ] && return 0; local n; for n in "${ONLY[@]}"; do [ "$n" = "$1" ] || [ "$n:latest" = "$1" ] && return 0; done; return 1; }

# image NAME FUNCTION...: run FUNCTION to build NAME unless it is present, timing it.
# With SOURCE set (a hash of what the image is built from), an image present but built
# from other sources (its executor.source label) is rebuilt.
image() {
  local name=$1; shift
  wanted "$name" || return 0
  if [ "$FORCE" != 1 ] && have "$name"; then
    local built; built=$(docker image inspect -f '{{index .Config.Labels "executor.source"}}' "$name")
    if [ -z "${SOURCE:-}" ] || [ "$built" = "$SOURCE" ]; then
      printf '  %-34s present\n' "$name"; return 0
    fi
  fi
  printf '  %-34s building...\n' "$name"
  local previous; previous=$(docker image inspect -f '{{.Id}}' "$name" 2>/dev/null || true)
  local t0; t0=$(now_ms)
  local log; log=$(mktemp)
  # In the background, not as an if's condition: there `set -e` would not stop the build
  # at its first failure, and a build whose last step succeeds would pass as built.
  "$@" >"$log" 2>&1 &
  if ! wait "$!"; then
    cat "$log" >&2; rm -f "$log"; echo "images/build.sh: $name failed" >&2; exit 1
  fi
  rm -f "$log"
  # A rebuild (FORCE=1) leaves the image it replaced untagged: remove it unless in use.
  if [ -n "$previous" ] && [ "$previous" != "$(docker image inspect -f '{{.Id}}' "$name")" ]; then
    docker rmi "$previous" >/dev/null 2>&1 || true
  fi
  local t1; t1=$(now_ms)
  printf '  %-34s built in %d.%01ds\n' "$name" $(((t1 - t0) / 1000)) $((((t1 - t0) % 1000) / 100))
}

apt_install() {  # installs Debian packages the builds need, only when missing
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "  installing ${missing[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

build_busybox() {
  apt_install busybox-static
  local ctx; ctx=$(mktemp -d)
  # busybox-static ships the static binary as /bin/busybox (the dynamic busybox package
  # conflicts with it, so whichever is there is the static one once it is installed).
  cp /bin/busybox "$ctx/busybox"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$ctx/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$ctx/group"
  cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
COPY passwd group /etc/
RUN mkdir -p /tmp /root && chmod 1777 /tmp
ENV PATH=/bin
CMD ["/bin/sh"]
DOCKERFILE
  docker build -q -t "$BUSYBOX" "$ctx"
  rm -rf "$ctx"
}

# debian_image NAME PACKAGES SETUP CHANGE...: Debian minbase with PACKAGES (comma separated)
# by debootstrap, SETUP (a function given the root folder) run on it, imported as NAME
# with the Dockerfile instructions CHANGE (docker import -c).
debian_image() {
  local name=$1 packages=$2 setup=$3; shift 3
  apt_install debootstrap
  local root; root=$(mktemp -d /var/tmp/executor-image.XXXXXX)
  # shellcheck disable=SC2086  # DEBIAN_MIRROR is optional: debootstrap has its default
  debootstrap --variant=minbase --include="$packages" "$SUITE" "$root" ${DEBIAN_MIRROR:-}
  "$setup" "$root"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc \
    "$root"/usr/share/man "$root"/usr/share/locale
  local changes=(-c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
    -c 'ENV LANG=C.UTF-8' -c "LABEL executor.source=${SOURCE:-}")
  local change; for change in "$@"; do changes+=(-c "$change"); done
  tar -C "$root" -c . | docker import "${changes[@]}" - "$name"
  rm -rf "$root"
}

build_python() { debian_image "$PYTHON" python3 : 'CMD ["python3"]'; }

# The fleet's stack (deploy/compose.yaml, images/stack.sh): its database and its balancer,
# from Debian's packages, started as the official postgres and haproxy images start (their
# environment, paths and ports), so that with a registry those can replace them. (docker
# import takes no STOPSIGNAL: deploy/compose.yaml sets postgres's, SIGINT.)
POSTGRES=executor/postgres:15
HAPROXY=executor/haproxy:2.6
setup_postgres() {
  # Debian's package made a cluster (`main`); the entrypoint makes its own in PGDATA.
  rm -rf "$1"/var/lib/postgresql/15/main "$1"/etc/postgresql/15/main
  install -m 755 images/postgres/entrypoint.sh "$1"/usr/local/bin/docker-entrypoint.sh
}
build_postgres() {
  debian_image "$POSTGRES" postgresql-15 setup_postgres \
    'ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    'ENV PGDATA=/var/lib/postgresql/data' 'VOLUME /var/lib/postgresql/data' 'EXPOSE 5432' \
    'ENTRYPOINT ["docker-entrypoint.sh"]' 'CMD []'
}
setup_haproxy() { mkdir -p "$1"/usr/local/etc/haproxy "$1"/var/lib/haproxy; }
build_haproxy() {
  debian_image "$HAPROXY" haproxy setup_haproxy 'USER haproxy' 'EXPOSE 8080 8404' \
    'CMD ["haproxy", "-W", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]'
}

# function_image NAME DIR [BASE]: a function whose Dockerfile takes its base as ARG BASE.
# In its Dockerfile, "# with: PATH" copies a repository file into the build context,
# "# pip: ARGS" installs those packages into python/ there, and "# go: FILE" builds that
# Go file of DIR into a static binary `func` there (Debian's golang-go, on the host).
function_image() {
  local name=$1 dir=$2 base=${3:-$BUSYBOX}
  local ctx; ctx=$(mktemp -d)
  cp -r "$dir"/. "$ctx"/
  local extra pip go
  for extra in $(sed -n 's/^# with: //p' "$dir/Dockerfile"); do cp "$extra" "$ctx"/; done
  go=$(sed -n 's/^# go: //p' "$dir/Dockerfile")
  if [ -n "$go" ]; then
    apt_install golang-go
    # Its own cache and path: a CI runner may have no HOME for go's defaults.
    (cd "$ctx" && CGO_ENABLED=0 GOFLAGS=-trimpath GOCACHE="${GOCACHE:-/var/tmp/executor-gocache}" \
      GOPATH="${GOPATH:-/var/tmp/executor-gopath}" go build -ldflags='-s -w' -o func "$go")
  fi
  pip=$(sed -n 's/^# pip: //p' "$dir/Dockerfile")
  # shellcheck disable=SC2086  # the pip line is a list of arguments
  [ -z "$pip" ] || cp -r "$(site_packages $pip)" "$ctx/python"
  docker build -q --build-arg "BASE=$base" --label "executor.source=$SOURCE" -t "$name" "$ctx"
  rm -rf "$ctx"
}

# source_image NAME DIR [BASE]: function_image, rebuilt when its sources change: the files of
# DIR, those its Dockerfile copies in ("# with:"), and the base image.
source_image() {
  local name=$1 dir=$2 base=${3:-$BUSYBOX}
  wanted "$name" || return 0
  SOURCE=$({
    find "$dir" -type f -print0 | sort -z | xargs -0 sha256sum
    for extra in $(sed -n 's/^# with: //p' "$dir/Dockerfile"); do sha256sum "$extra"; done
    [ "$base" = scratch ] || docker image inspect -f '{{.Id}}' "$base"
  } | sha256sum | cut -c1-16)
  image "$name" function_image "$name" "$dir" "$base"
  SOURCE=
}

# The launcher of pre-started `default` containers (images/launcher/launch.c): a static
# binary beside executor/pool/launcher.py, which copies it where containers bind-mount it.
LAUNCHER=executor/pool/launch
build_launcher() {
  local src=images/launcher/launch.c
  if [ "$FORCE" != 1 ] && [ -x "$LAUNCHER" ] && [ "$LAUNCHER" -nt "$src" ]; then
    printf '  %-34s present\n' "$LAUNCHER"; return 0
  fi
  apt_install gcc libc6-dev
  gcc -static -Os -Wall -Wextra -Werror -o "$LAUNCHER.tmp" "$src"
  strip "$LAUNCHER.tmp" && mv "$LAUNCHER.tmp" "$LAUNCHER"
  printf '  %-34s built\n' "$LAUNCHER"
}

# The runtimes `executor build` builds functions on (executor/runtimes.py): Go's compiler
# (a Go function is built in it, then shipped FROM scratch) and Node.js, from Debian's
# packages; Python's is executor/python3 above, the shell's executor/busybox.
GO_BUILD=executor/go-build:latest
NODE=executor/node:latest
setup_runtime() { mkdir -p "$1"/function; }
# The standard packages a function most often imports, compiled once into the image's
# build cache: a function's build then compiles only its own code.
setup_go_build() {
  setup_runtime "$1"
  chroot "$1" env GOCACHE=/go/cache GOPATH=/go CGO_ENABLED=0 GOFLAGS=-trimpath HOME=/root \
    /usr/lib/go/bin/go build fmt encoding/json net/http bufio io os strings
}
build_go_build() {
  debian_image "$GO_BUILD" golang-go,ca-certificates setup_go_build \
    'ENV PATH=/usr/lib/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    'ENV CGO_ENABLED=0 GOFLAGS=-trimpath GOPATH=/go GOCACHE=/go/cache GOPROXY=off' \
    'WORKDIR /src' 'CMD ["go", "version"]'
}
build_node() { debian_image "$NODE" nodejs setup_runtime 'CMD ["node"]'; }

ONLY=("$@")
echo "images:"
build_launcher
image "$BUSYBOX" build_busybox
image "$PYTHON" build_python
image "$GO_BUILD" build_go_build
image "$NODE" build_node
# Only when named (images/stack.sh): the stack's database and balancer.
if [ ${#ONLY[@]} -gt 0 ]; then
  SOURCE=$(sha256sum images/postgres/entrypoint.sh | cut -c1-16) image "$POSTGRES" build_postgres
  image "$HAPROXY" build_haproxy
fi
source_image executor/hello:latest examples/hello
source_image executor/hello-stream:latest examples/hello-stream "$PYTHON"
source_image executor/fdk-hello:latest examples/fdk-hello "$PYTHON"
source_image executor/go-http:latest examples/go-http scratch
source_image executor/go-hello:latest examples/go-hello scratch
# Test functions are executor-test/<dir>, benchmark functions executor-bench/<dir>.
for dir in tests/functions/*/ benchmarks/functions/*/; do
  fn=$(basename "$dir")
  prefix=executor-test
  [ "${dir%%/*}" = benchmarks ] && prefix=executor-bench
  base=$BUSYBOX
  grep -q '^# base: python3' "$dir/Dockerfile" && base=$PYTHON
  grep -q '^# go: ' "$dir/Dockerfile" && base=scratch
  source_image "$prefix/$fn:latest" "$dir" "$base"
done
