"""Caddy: its config read by caddy adapt, rendered as JSON, run as one process."""
