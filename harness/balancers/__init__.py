"""Balancers under test, one folder each (nginx, haproxy, caddy, client, kubeproxy): its config
reader and renderer, its process, and a ``kind.py`` the core asks for everything else.
``registry.py`` names them; ``base.py`` is the protocol every balancer and config keeps."""
