"""Reference models of balancers' algorithms: pure functions from a group's peers, their state
and a request's key to the peer the balancer must pick, or the set it may pick from where the
algorithm is random. Written from the balancers' sources, each function citing the one it models;
``harness.checks.replay`` runs them over a run's log."""
