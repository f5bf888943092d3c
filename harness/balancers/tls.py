"""Throwaway TLS for a run: a certificate authority that lives in the run directory and a
certificate per server for its names, so that ``listen 443 ssl`` (nginx) or ``bind :443 ssl
crt`` (HAProxy) runs without the user's keys and the load can verify what it talks to."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path

import trustme

from harness.net import LOAD_HOSTS_FRONT, LOOPBACK

# Names every certificate carries besides the server's own: the load reaches the balancer
# on loopback, or at the run's front from load hosts, and a client that names no host still verifies.
ALWAYS_NAMED = ("localhost", LOOPBACK, LOAD_HOSTS_FRONT)


class RunCertificates:
    """Issues certificates under one CA; files go to ``directory``, created on first use."""

    def __init__(self, directory: Path, also_named: Sequence[str] = ()) -> None:
        """``also_named``: names every certificate carries too (the address workers join a run at)."""
        self.directory = directory
        self.also_named = tuple(also_named)
        self._ca: trustme.CA | None = None
        self._issued: dict[tuple[str, ...], tuple[Path, Path]] = {}

    @property
    def ca_file(self) -> Path:
        """The CA certificate a client trusts to verify the run's servers."""
        path = self.directory / "ca.pem"
        if self._ca is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._ca = trustme.CA(organization_name="lb-harness run")
            self._ca.cert_pem.write_to_path(str(path))
        return path

    def issue(self, names: Sequence[str]) -> tuple[Path, Path]:
        """(certificate chain, key) for ``names``; the same files for the same names."""
        wanted = tuple(dict.fromkeys([*(n for n in [*names, *self.also_named] if _certifiable(n)), *ALWAYS_NAMED]))
        if wanted in self._issued:
            return self._issued[wanted]
        self.ca_file  # noqa: B018 - creates the CA and writes its certificate
        assert self._ca is not None
        certificate = self._ca.issue_cert(*wanted)
        stem = hashlib.sha256("\0".join(wanted).encode()).hexdigest()[:12]
        chain, key = self.directory / f"{stem}.crt", self.directory / f"{stem}.key"
        certificate.cert_chain_pems[0].write_to_path(str(chain))
        for extra in certificate.cert_chain_pems[1:]:
            extra.write_to_path(str(chain), append=True)
        certificate.private_key_pem.write_to_path(str(key))
        key.chmod(0o600)
        self._issued[wanted] = (chain, key)
        return chain, key

    def issue_pem(self, names: Sequence[str]) -> Path:
        """One file with the chain and then the key for ``names``, as HAProxy's ``crt`` reads it."""
        chain, key = self.issue(names)
        pem = chain.with_suffix(".pem")
        if not pem.exists():
            pem.write_text(chain.read_text() + key.read_text())
            pem.chmod(0o600)
        return pem


_DNS_NAME = re.compile(r"^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$")


def _certifiable(name: str) -> bool:
    """A server_name a certificate can carry: a DNS name (``api_gateway.local`` is not one), not a
    regex or the catch-all ``_``; the others are left off the certificate."""
    return bool(_DNS_NAME.match(name))
