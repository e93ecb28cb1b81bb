# The executor as a container image. It runs functions on its host's Docker engine
# through the engine's socket; README.md "Run in a container" has the run command.
#   docker build -t executor .      on a base with pip (the default, python:3.11-slim)
#   images/executor.sh              on the local base without pip (executor/python3)
ARG BASE=python:3.11-slim

FROM ${BASE} AS deps
# deps/site/ in the build context holds the dependencies already installed for a base
# without pip (images/executor.sh does it on the host: pip install --target). Without
# it, pip installs pyproject.toml's pinned dependencies here.
COPY pyproject.toml deps* /src/
RUN set -e; cd /src; \
    if [ ! -d site ]; then \
      python3 -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' >requirements.txt; \
      python3 -m pip install --no-cache-dir --no-compile --target site -r requirements.txt; \
    fi; \
    python3 -m compileall -q site

FROM ${BASE}
# Non-root: the executor needs the Docker socket's group (docker run --group-add).
RUN set -e; echo 'executor:x:10001:10001:executor:/data:/bin/false' >>/etc/passwd; \
    echo 'executor:x:10001:' >>/etc/group; \
    mkdir -p /data /iofs; chown 10001:10001 /data /iofs
# SCHED_BATCH is off: the executor cannot see its functions' processes from its own pid
# namespace. Hot containers bind-mount iofs directories from the host: mount a host
# folder at /iofs and name it in EXECUTOR_IOFS_HOST_DIR. Each is a tmpfs the executor
# mounts: run it as root with CAP_SYS_ADMIN and an rshared bind (README "Run in a
# container"), or set EXECUTOR_IOFS_TMPFS=false as this user.
ENV PYTHONPATH=/opt/executor:/opt/executor/site \
    EXECUTOR_HOST=0.0.0.0 \
    EXECUTOR_PORT=8080 \
    EXECUTOR_DB=/data/executor.db \
    EXECUTOR_IOFS_DIR=/iofs \
    EXECUTOR_HOT_SCHED_BATCH=false
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s CMD ["python3", "-m", "executor.healthcheck"]
ENTRYPOINT ["python3", "-m", "executor"]
CMD ["serve"]
COPY --from=deps /src/site /opt/executor/site
# The code last, so that changing it rebuilds only these layers.
COPY executor /opt/executor/executor
RUN python3 -m compileall -q /opt/executor/executor
USER 10001:10001
