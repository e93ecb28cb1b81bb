"""executor: a single-host serverless function executor on the Docker engine."""

__version__ = "0.1.0"
