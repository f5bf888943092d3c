"""The matrix's page: one row per balancer, algorithm and scenario, from the rows the matrix measured."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jinja2

from harness.reports import latency
from harness.reports.report import TEMPLATES


def write_matrix_page(path: Path, title: str, rows: Sequence[dict[str, Any]]) -> Path:
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)
    page = environment.get_template("matrix.html.j2").render(title=title, rows=list(rows), precision=latency.PRECISION)
    path.write_text(page)
    return path
