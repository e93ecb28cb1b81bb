# The executor itself as an image (finished by the [image] issue: non-root, healthcheck,
# iofs path setting). BASE is any image with Python 3.11 and pip.
ARG BASE=python:3.11-slim
FROM ${BASE}
WORKDIR /app
COPY pyproject.toml README.md ./
COPY executor ./executor
RUN pip install --no-cache-dir .
EXPOSE 8080
ENTRYPOINT ["executor", "serve", "--host", "0.0.0.0", "--db", "/data/executor.db"]
