"""What the package ships besides code: ``infra/`` (balancer configs per algorithm, scenarios,
Kubernetes manifests, Docker files) and ``locustfiles/balancer.py``.

The checkout's top-level ``infra`` and ``locustfiles`` are links to these folders, so a
wheel carries exactly what a checkout runs. Find files through :mod:`harness.infra`, which
lets a user's own folder override them.
"""
