"""The package has no import circle between its modules; the checker finds one when there is."""

from pathlib import Path

from harness.devtools.layers import circles, module_imports


def test_no_module_of_the_harness_imports_itself_in_a_circle() -> None:
    graph = module_imports()
    assert len(graph) > 100 and "harness.run" in graph
    assert circles(graph) == []


def test_a_circle_is_found(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.b import thing\n")
    (package / "b.py").write_text(
        "from pkg import a\n\ndef thing() -> None:\n    from pkg.c import late  # inside a function: not counted\n"
    )
    (package / "c.py").write_text("import pkg.b\n")
    assert circles(module_imports(package)) == [["pkg.a", "pkg.b"]]
