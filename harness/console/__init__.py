"""The Locust web UI's Backends console: live per-instance counts, health and faults."""
