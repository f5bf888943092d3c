"""The package keeps its shape (no circles, no import from a lower layer to a higher one, no
oversized module or function); the checker finds each fault when there is one."""

from pathlib import Path

from harness.devtools import layers
from harness.devtools.layers import circles, module_imports, oversized, package_graph, upward_imports


def test_no_module_of_the_harness_imports_itself_in_a_circle() -> None:
    graph = module_imports()
    assert len(graph) > 100 and "harness.run" in graph
    assert circles(graph) == []
    assert circles(package_graph(graph)) == []


def test_every_import_goes_to_the_same_layer_or_one_below() -> None:
    assert upward_imports(module_imports()) == []


def test_no_module_or_function_is_oversized() -> None:
    assert oversized() == []


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    package = tmp_path / "harness"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name, text in files.items():
        (package / name).write_text(text)
    return package


def test_a_circle_is_found(tmp_path: Path) -> None:
    package = _package(
        tmp_path,
        {
            "a.py": "from harness.b import thing\n",
            "b.py": "from harness import a\n\ndef thing() -> None:\n    from harness.c import late  # not counted\n",
            "c.py": "import harness.b\n",
        },
    )
    assert circles(module_imports(package)) == [["harness.a", "harness.b"]]


def test_an_import_from_a_lower_layer_and_a_part_in_no_layer_are_found(tmp_path: Path) -> None:
    package = _package(
        tmp_path,
        {"errors.py": "from harness.cli import main\n", "cli.py": "def main() -> None: ...\n", "stray.py": ""},
    )
    assert upward_imports(module_imports(package)) == [
        "harness.stray is in no layer of LAYERS: add it",
        "harness.errors imports harness.cli, a higher layer",
    ]


def test_a_long_function_and_a_long_module_are_found(tmp_path: Path) -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(layers.MAX_FUNCTION_LINES))
    filler = "\n" * layers.MAX_MODULE_LINES
    package = _package(tmp_path, {"long.py": f"def long() -> None:\n{body}{filler}"})
    found = oversized(package)
    assert len(found) == 2
    assert found[0].startswith("harness/long.py: ") and "lines (at most 400)" in found[0]
    assert found[1].startswith("harness/long.py:1 long(): 61 lines")
