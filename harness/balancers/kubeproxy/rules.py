"""kube-proxy's nftables mode, written out: the rules for one Service and its ready endpoints.

As kube-proxy does it: traffic to the ClusterIP and port jumps to the Service's chain,
which sends it to one endpoint chosen with ``numgen random mod N``; each endpoint chain
DNATs to the endpoint. With ``sessionAffinity: ClientIP`` each endpoint chain also records
the client's address in a set with the affinity timeout, and the Service's chain first
sends a client found in an endpoint's set to that endpoint. With no ready endpoint,
connections are rejected, as kube-proxy rejects them. The whole table is replaced in one
``nft -f`` transaction at every change.
"""

from __future__ import annotations

from collections.abc import Sequence

TABLE = "lb_harness_kube_proxy"


def ruleset(cluster_ip: str, port: int, endpoints: Sequence[tuple[str, int]], affinity_s: float | None) -> str:
    """The table as ``nft -f`` reads it, preceded by its deletion so that applying replaces it."""
    lines = [f"table ip {TABLE} {{}}", f"delete table ip {TABLE}", f"table ip {TABLE} {{"]
    for index in range(len(endpoints)):
        if affinity_s is not None:
            lines += [
                f"  set affinity-{index} {{ type ipv4_addr; flags dynamic, timeout; timeout {int(affinity_s)}s; }}"
            ]
    for index, (host, target) in enumerate(endpoints):
        lines += [f"  chain endpoint-{index} {{"]
        if affinity_s is not None:
            lines += [f"    update @affinity-{index} {{ ip saddr }}"]
        lines += [f"    meta l4proto tcp dnat to {host}:{target}", "  }"]
    lines += ["  chain service {"]
    if endpoints:
        if affinity_s is not None:
            lines += [f"    ip saddr @affinity-{index} goto endpoint-{index}" for index in range(len(endpoints))]
        choices = ", ".join(f"{index} : goto endpoint-{index}" for index in range(len(endpoints)))
        lines += [f"    numgen random mod {len(endpoints)} vmap {{ {choices} }}"]
    lines += [
        "  }",
        "  chain nat-output {",
        "    type nat hook output priority -100; policy accept;",
        f"    ip daddr {cluster_ip} tcp dport {port} jump service",
        "  }",
        # Traffic still addressed to the Service after NAT found no endpoint: refused.
        "  chain filter-output {",
        "    type filter hook output priority 0; policy accept;",
        f"    ip daddr {cluster_ip} tcp dport {port} reject with tcp reset",
        "  }",
        "}",
    ]
    return "\n".join(lines) + "\n"


def deletion() -> str:
    return f"table ip {TABLE} {{}}\ndelete table ip {TABLE}\n"
