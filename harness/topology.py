"""Which instances a run starts: the config's services expanded into N loopback instances."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from harness.errors import SpecError
from harness.runtimes.base import InstanceSpec, InstanceTls
from harness.runtimes.local import instance_host

DEFAULT_INSTANCES_PER_SERVICE = 3


def weights_for(specs: Sequence[InstanceSpec], weights: Sequence[int] | None) -> dict[str, int] | None:
    """``--weights`` as a mapping from instance name to weight; SpecError when the counts differ."""
    if weights is None:
        return None
    if len(weights) != len(specs):
        names = ", ".join(spec.name for spec in specs)
        raise SpecError(f"--weights gives {len(weights)} weights for {len(specs)} instances ({names})")
    return {spec.name: weight for spec, weight in zip(specs, weights, strict=True)}


def plan_instances(services: Sequence[str], backends: int | None) -> list[InstanceSpec]:
    """Splits ``backends`` instances evenly over ``services``, in config order.

    One service gets all of them (``api-gateway-1`` .. ``api-gateway-N``); several
    services (``api-gateway-1``, ``api-gateway-2`` with their own weights) get the same
    number each. Raises SpecError when the instances cannot be split evenly.
    """
    if not services:
        raise SpecError("the config names no service to start instances for")
    if backends is None:
        backends = DEFAULT_INSTANCES_PER_SERVICE if len(services) == 1 else len(services)
    if backends % len(services):
        raise SpecError(
            f"{backends} backends cannot be split evenly over the config's {len(services)} services "
            f"({', '.join(services)}), whose weights differ: use a multiple of {len(services)}"
        )
    per_service = backends // len(services)
    specs: list[InstanceSpec] = []
    for service in services:
        for number in range(1, per_service + 1):
            if len(services) == 1:
                name = f"{service}-{number}"
            else:
                name = service if per_service == 1 else f"{service}.{number}"
            specs.append(InstanceSpec(name=name, service=service, host=instance_host(len(specs))))
    return specs


def on_sockets(specs: Sequence[InstanceSpec], services: Sequence[str], directory: Path) -> list[InstanceSpec]:
    """``specs`` with each instance of ``services`` serving on ``directory/NAME.sock`` as well."""
    wanted = set(services)
    return [
        dataclasses.replace(spec, socket=str(directory / f"{spec.name}.sock")) if spec.service in wanted else spec
        for spec in specs
    ]


def with_tls(specs: Sequence[InstanceSpec], services: Sequence[str], tls: InstanceTls) -> list[InstanceSpec]:
    """``specs`` with each instance of ``services`` serving TLS with ``tls``."""
    wanted = set(services)
    return [dataclasses.replace(spec, tls=tls) if spec.service in wanted else spec for spec in specs]


def with_http2(specs: Sequence[InstanceSpec], services: Sequence[str]) -> list[InstanceSpec]:
    """``specs``, those of ``services`` serving plain HTTP/2 too (an L4 balancer passes a client's
    HTTP/2 connection to them whole)."""
    wanted = set(services)
    return [dataclasses.replace(spec, http2=True) if spec.service in wanted else spec for spec in specs]


def with_grpc(specs: Sequence[InstanceSpec], services: Sequence[str]) -> list[InstanceSpec]:
    """``specs`` with each instance of ``services`` serving gRPC too."""
    wanted = set(services)
    return [dataclasses.replace(spec, grpc=True) if spec.service in wanted else spec for spec in specs]


def plan_side_instances(services: Sequence[str], already: int) -> list[InstanceSpec]:
    """One instance for each service outside the group under test, after the ``already`` planned ones."""
    return [
        InstanceSpec(name=service, service=service, host=instance_host(already + index))
        for index, service in enumerate(services)
    ]
