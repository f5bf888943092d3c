"""HAProxy as the balancer under test: active health checks, a stats socket, the same algorithms."""
