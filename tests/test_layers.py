"""Layers point one way, read from the source (every import, inside functions too):
stimuli (the engine) imports neither experiments nor protocols; experiments imports nothing from
recruitment nor from any single protocol; a protocol imports nothing outside its own folder but
the protocol interface; the analysis core imports neither Django nor any other layer, so that it runs
on an exported bundle in a notebook."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT_PACKAGES = ("analysis", "experiments", "protocols", "psyplatform", "recruitment", "stimuli", "workers", "tests")
INTERFACE = {"protocols", "protocols.base", "protocols.params", "protocols.selection"}


def imports_of(path: Path, packages: tuple[str, ...] = PROJECT_PACKAGES) -> set[str]:
    """Every module of these packages (the project's by default) a file imports (relative imports resolved)."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}".strip(".")
            found.add(base)
    return {name for name in found if name.split(".")[0] in packages}


def files(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def protocol_packages() -> list[Path]:
    builtin = [p for p in (ROOT / "protocols").iterdir() if (p / "__init__.py").exists()]
    return [*builtin, ROOT / "tests" / "rating_protocol"]


def test_the_engine_imports_no_layer_above_it():
    offending = {
        (str(path.relative_to(ROOT)), name)
        for path in files("stimuli")
        for name in imports_of(path)
        if not within(name, "stimuli")
    }
    assert offending == set()


def test_the_generic_core_imports_no_recruiter_and_no_single_protocol():
    offending = {
        (str(path.relative_to(ROOT)), name)
        for path in files("experiments")
        for name in imports_of(path)
        if within(name, "recruitment") or (within(name, "protocols") and name not in INTERFACE)
    }
    assert offending == set()


@pytest.mark.parametrize("package", protocol_packages(), ids=lambda p: p.name)
def test_a_protocol_imports_only_its_own_folder_and_the_interface(package):
    own = ".".join(package.relative_to(ROOT).parts)
    offending = {
        (str(path.relative_to(ROOT)), name)
        for path in sorted(package.rglob("*.py"))
        for name in imports_of(path)
        if not within(name, own) and name not in INTERFACE
    }
    assert offending == set()


def test_the_protocol_interface_imports_no_layer_around_it():
    core = [path for path in (ROOT / "protocols").glob("*.py")]
    offending = {
        (str(path.relative_to(ROOT)), name)
        for path in core
        for name in imports_of(path)
        if not within(name, "protocols")
    }
    assert offending == set()


def test_the_analysis_core_imports_neither_django_nor_another_layer():
    offending = {
        (str(path.relative_to(ROOT)), name)
        for path in files("analysis")
        for name in imports_of(path, (*PROJECT_PACKAGES, "django", "rest_framework"))
        if not within(name, "analysis")
    }
    assert offending == set()
