"""Plain HTTP over HTTP/2: which configs' routes take it, the workload, and what a mismatch says."""

from pathlib import Path

import pytest

from harness.balancers.haproxy.config import load_config as load_haproxy
from harness.balancers.kubeproxy.config import _carries_grpc, _carries_http2
from harness.balancers.kubeproxy.config import load_config as load_service
from harness.balancers.nginx.config import load_config as load_nginx
from harness.errors import SpecError
from harness.infra import infra_path
from harness.load.route import FixedRoute
from harness.load.workload import Workload
from harness.plan import prepare
from harness.spec import BenchSpec


def test_nginx_takes_http2_on_a_listen_marked_http2_that_passes_plain_http(tmp_path: Path) -> None:
    assert load_nginx(infra_path("nginx", "nginx-http2.conf")).speaks_http2
    assert not load_nginx(infra_path("nginx", "nginx-round-robin.conf")).speaks_http2
    # grpc_pass on an http2 listen is gRPC, not plain HTTP/2.
    grpc = load_nginx(infra_path("nginx", "nginx-grpc.conf"))
    assert grpc.speaks_grpc and not grpc.speaks_http2
    assert load_nginx(infra_path("nginx", "nginx-http2.conf")).http2_services == []


def test_haproxy_takes_http2_on_a_bind_with_proto_h2_in_front_of_http1_servers() -> None:
    http2 = load_haproxy(infra_path("haproxy", "haproxy-http2.cfg"))
    assert http2.speaks_http2 and not http2.speaks_grpc
    grpc = load_haproxy(infra_path("haproxy", "haproxy-grpc.cfg"))
    assert grpc.speaks_grpc and not grpc.speaks_http2
    assert not load_haproxy(infra_path("haproxy", "haproxy-round-robin.cfg")).speaks_http2


@pytest.mark.parametrize(
    ("port", "grpc", "http2"),
    [
        ({"name": "grpc", "appProtocol": "kubernetes.io/h2c", "port": 1}, True, False),
        ({"name": "grpc-api", "port": 1}, True, False),
        ({"appProtocol": "grpc", "port": 1}, True, False),
        ({"name": "web", "appProtocol": "kubernetes.io/h2c", "port": 1}, False, True),
        ({"name": "http2", "port": 1}, False, True),
        ({"name": "h2c-api", "port": 1}, False, True),
        ({"name": "http", "port": 1}, False, False),
    ],
)
def test_a_service_port_carries_grpc_by_its_name_and_plain_http2_by_h2c(
    port: dict[str, object], grpc: bool, http2: bool
) -> None:
    assert (_carries_grpc(port), _carries_http2(port)) == (grpc, http2)


def test_the_shipped_h2c_service_serves_http2_from_its_pods() -> None:
    service = load_service(infra_path("k8s", "08-service-http2.yaml"))
    assert service.speaks_http2 and service.http2_services == ["api-h2c"] and service.port == 8080


def test_the_workload_and_the_route_must_both_speak_http2(tmp_path: Path) -> None:
    results = tmp_path / "results"
    with pytest.raises(SpecError, match=r"passes HTTP/1\.1: give a config whose route takes HTTP/2"):
        prepare(BenchSpec(algorithms=("round_robin",), config=infra_path("nginx", "nginx-round-robin.conf"),
                          workload=Workload("http2"), results_dir=results))  # fmt: skip
    with pytest.raises(SpecError, match=r"takes HTTP/2 only \(h2c\): run it with --workload http2"):
        prepare(
            BenchSpec(algorithms=("round_robin",), config=infra_path("nginx", "nginx-http2.conf"), results_dir=results)
        )
    with pytest.raises(SpecError, match="no shipped haproxy config takes HTTP/2 with least_conn"):
        prepare(BenchSpec(algorithms=("least_conn",), balancer="haproxy", workload=Workload("http2"),
                          results_dir=results))  # fmt: skip
    with pytest.raises(SpecError, match="--workload http2 sends through a balancer's address, not through client"):
        BenchSpec(algorithms=("round_robin",), balancer="client", workload=Workload("http2")).validate()
    planned = prepare(BenchSpec(algorithms=("round_robin",), workload=Workload("http2"), results_dir=results))
    assert planned.only.config.path.name == "nginx-http2.conf"


def test_the_http2_workload_says_what_it_sends_and_may_send_back_to_back() -> None:
    workload = Workload("http2", hold=2, every=0).validate()
    assert workload.over_one_connection and not workload.has_sessions and not workload.is_grpc
    assert workload.describe() == "GET requests (back to back) over one HTTP/2 connection per user, held 2 s"
    assert FixedRoute("http://127.0.0.1:1", http2=True).description == "http://127.0.0.1:1, HTTP/2"


def test_http2_over_tls_is_offered_beside_http1_and_not_required(tmp_path: Path) -> None:
    # `listen 443 ssl http2`: nginx offers h2 and HTTP/1.1 by ALPN, so either workload may run.
    prod = load_nginx(Path(__file__).parents[1] / "configs" / "prod-tls" / "nginx.conf")
    assert prod.offers_http2 and not prod.speaks_http2
    config = tmp_path / "haproxy.cfg"
    config.write_text(
        "defaults\n    mode http\nfrontend web\n    bind :443 ssl crt /etc/ssl/site.pem alpn h2,http/1.1\n"
        "    default_backend app\nbackend app\n    server app app:3000\n"
    )
    haproxy = load_haproxy(config)
    assert haproxy.offers_http2 and not haproxy.speaks_http2
    assert not load_haproxy(infra_path("haproxy", "haproxy-round-robin.cfg")).offers_http2
