"""nginx as the balancer under test."""
