"""kube-proxy as the balancer under test: a Service's nftables rules in the run's network namespace."""
