"""The shipped Kubernetes manifests pass validate and lint; mutated ones fail with file, object and field."""

import shutil
from pathlib import Path

import pytest

from harness.cli.k8s_command import shipped_passive_checks
from harness.infra import shipped_dir
from harness.k8s.lint import lint
from harness.k8s.validate import validate

K8S = shipped_dir() / "k8s"


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """The shipped tree with infra/nginx next to it, as the overlays expect."""
    shutil.copytree(K8S, tmp_path / "infra" / "k8s")
    shutil.copytree(shipped_dir() / "nginx", tmp_path / "infra" / "nginx")
    return tmp_path / "infra" / "k8s"


def mutate(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def test_the_shipped_manifests_validate_against_every_supported_release() -> None:
    assert validate([K8S]) == []


def test_the_shipped_manifests_pass_lint_and_report_readiness_against_passive_checks() -> None:
    problems, mappings = lint([K8S], shipped_passive_checks())
    assert problems == []
    # One per Deployment with a readiness probe: api-gateway's and the gRPC one's.
    described = sorted(str(m) for m in mappings)
    assert [m.split(": ")[1] for m in described] == [
        "Deployment/api-gateway",
        "Deployment/api-grpc",
        "Deployment/api-h2c",
    ], described
    for mapping in described:
        assert "16 s of readiness probes" in mapping and "max_fails=3" in mapping and "fail_timeout=30 s" in mapping


def test_a_typo_in_a_field_names_the_file_the_object_and_the_field(copy: Path) -> None:
    mutate(copy / "01-service-clusterip.yaml", "targetPort: 3000", "targetPrt: 3000")
    problems = validate([copy / "01-service-clusterip.yaml"])
    assert problems, "a field the schema does not know must fail"
    assert all(p.where.endswith("01-service-clusterip.yaml: Service/api-gateway") for p in problems), problems
    assert {p.field for p in problems} == {"spec.ports.0"} and "'targetPrt' was unexpected" in problems[0].message


def test_a_selector_that_matches_no_pod_is_named(copy: Path) -> None:
    mutate(copy / "01-service-clusterip.yaml", "  selector:\n    app: api-gateway", "  selector:\n    app: api-gatway")
    problems, _ = lint([copy], shipped_passive_checks())
    assert len(problems) == 1 and problems[0].field == "spec.selector", problems
    assert problems[0].where.endswith("01-service-clusterip.yaml: Service/api-gateway"), problems


@pytest.mark.parametrize(
    ("file", "old", "new", "field", "says"),
    [
        ("02-service-nodeport.yaml", "nodePort: 30080", "nodePort: 8080", "spec.ports.0.nodePort", "outside 30000"),
        ("01-service-clusterip.yaml", "targetPort: 3000", "targetPort: 3001", "spec.ports.0.targetPort", "container"),
        ("04-ingress.yaml", "number: 80", "number: 8080", "spec.rules.0.http.paths.0.backend.service.port", "no port"),
        ("05-deployment-with-probes.yaml", "path: /api/health\n              port: http\n            periodSeconds: 10",
         "path: /health\n              port: http\n            periodSeconds: 10",
         "spec.template.spec.containers.0.livenessProbe.httpGet.path", "serves no /health"),
        ("05-deployment-with-probes.yaml", "periodSeconds: 1\n            failureThreshold: 30",
         "periodSeconds: 1\n            failureThreshold: 2", "spec.template.spec.containers.0.startupProbe", "less"),
    ],
)  # fmt: skip
def test_lint_names_what_schemas_cannot_see(copy: Path, file: str, old: str, new: str, field: str, says: str) -> None:
    mutate(copy / file, old, new)
    problems, _ = lint([copy], shipped_passive_checks())
    assert any(p.field == field and says in p.message for p in problems), problems


def test_a_kustomization_naming_a_missing_file_is_named(copy: Path) -> None:
    (copy.parent / "nginx" / "nginx-least-conn.conf").unlink()
    problems, _ = lint([copy], shipped_passive_checks())
    assert any("least-conn" in p.where and "nginx-least-conn.conf" in p.message for p in problems), problems
