"""No development paths in library code: data comes from arguments or ``$LASE_SHARED``, weights from
arguments or the package's bundled assets, never from where the source tree happens to sit."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import lase_e2v
from lase_e2v.errors import ConfigError
from lase_e2v.paths import default_coco_dir

PACKAGE_DIR = Path(lase_e2v.__file__).resolve().parent


def test_photos_come_from_an_argument_or_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("LASE_SHARED", raising=False)
    with pytest.raises(ConfigError, match="pass coco_dir .--coco-dir. or set LASE_SHARED"):
        default_coco_dir()
    monkeypatch.setenv("LASE_SHARED", str(tmp_path))
    assert default_coco_dir() == tmp_path / "data" / "coco_mini"


def code_strings(tree: ast.AST) -> list[str]:
    """String constants of a module that are not docstrings."""
    docstrings = {
        id(node.body[0].value) for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
    }
    return [node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


@pytest.mark.parametrize("path", sorted(PACKAGE_DIR.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE_DIR)))
def test_library_code_stays_inside_its_package(path):
    source = path.read_text()
    for depth in map(int, re.findall(r"parents\[(\d+)\]", source)):
        assert path.parents[depth] == PACKAGE_DIR or PACKAGE_DIR in path.parents[depth].parents, (
            f"parents[{depth}] leaves the package")
    assert not [s for s in code_strings(ast.parse(source)) if "shared" in re.split(r"[/\\]", s)]
