"""The import rule of ARCHITECTURE.md, checked on the source: logic never imports Dagster,
openai or the Dagster layer (``defs/``), at module level or inside a function."""

import ast
from pathlib import Path

from phi4_assets.settings import REPO_ROOT

PACKAGE = REPO_ROOT / "phi4_assets"
# The Dagster side: the code location, resources and the IO manager.
DAGSTER_SIDE = {"definitions.py", "resources.py", "warehouse.py", "teacher/resource.py"}
# The `phi4` commands, which build resources or run the graph.
COMMANDS = {"demo.py", "estimate/core.py", "estimate/run.py", "ops_cli.py", "evaluation/cli.py"}


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            found.add("." * node.level + (node.module or ""))
    return found


def _forbidden(module: str) -> bool:
    parts = module.lstrip(".").split(".")
    return (parts[0] in ("dagster", "dagster_duckdb", "dagster_duckdb_pandas", "openai") or "defs" in parts
            or module.lstrip(".") in ("resources", "teacher.resource") or module.endswith(".resource"))


def test_logic_imports_neither_dagster_nor_openai_nor_the_dagster_layer():
    offenders = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = path.relative_to(PACKAGE).as_posix()
        if name.startswith("defs/") or name in DAGSTER_SIDE | COMMANDS:
            continue
        bad = sorted(m for m in _imports(path) if _forbidden(m))
        if bad:
            offenders[name] = bad
    assert offenders == {}


def test_the_rule_would_see_a_hidden_import(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from ..defs.judge import x\n    import openai\n")
    assert {m for m in _imports(module) if _forbidden(m)} == {"..defs.judge", "openai"}
