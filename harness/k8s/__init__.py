"""Kubernetes: the manifests read back, validated and linted; the topology a run applies; the API client."""
