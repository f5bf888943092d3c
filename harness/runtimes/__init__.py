"""Runtimes start and stop backend instances: local processes now; Docker and Kubernetes
implement the same :class:`~harness.runtimes.base.Runtime` protocol."""
