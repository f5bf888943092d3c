"""Load drivers: Locust as a library for concurrent load, plain probes for exact sequences.

Locust monkey-patches the standard library for gevent when it is imported; front ends
(the CLI, the pytest plugin) import it before anything that imports ssl.
"""
