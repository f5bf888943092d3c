"""Runtimes start and stop backend instances: local processes on 127.0.1.N, Docker containers, or
the pods of a Kubernetes Deployment, all behind the :class:`~harness.runtimes.base.Runtime`
protocol, which also declares what each can do (:class:`~harness.runtimes.base.RuntimeTraits`)."""
