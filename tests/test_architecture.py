"""The import rule of ARCHITECTURE.md, checked on the source: logic never imports Dagster,
openai or the Dagster layer (``defs/``), at module level or inside a function."""

import ast
from pathlib import Path

from phi4_assets.config.settings import REPO_ROOT

PACKAGE = REPO_ROOT / "phi4_assets"
# The Dagster side: the code location, resources and the IO manager.
DAGSTER_SIDE = {"definitions.py", "core/warehouse.py", "teacher/resource.py", "ops/runs.py"}
# The vLLM policy client: the openai client on vLLM's completions API (and no Dagster: checked below).
OPENAI_CLIENTS = {"models/vllm_backend.py"}
# The `phi4` commands (cli/), which build resources or run the graph, and the estimate, which
# reads the graph from the definitions and asks the teacher resource for its cache keys.
COMMANDS = {"cli/demo.py", "cli/main.py", "cli/ops.py", "cli/evaluate.py", "ops/estimate/core.py", "ops/estimate/run.py"}
# Where the Dagster layer (defs/) may be imported: itself, the code location and the commands.
MAY_IMPORT_DEFS = ("defs/", "definitions.py", "cli/")


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
        bad = sorted(m for m in _imports(path) if _forbidden(m)
                     and not (name in OPENAI_CLIENTS and m.lstrip(".").split(".")[0] == "openai"))
        if bad:
            offenders[name] = bad
    assert offenders == {}


def test_only_the_code_location_and_the_commands_import_the_dagster_layer():
    offenders = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = path.relative_to(PACKAGE).as_posix()
        if name.startswith(MAY_IMPORT_DEFS):
            continue
        bad = sorted(m for m in _imports(path) if "defs" in m.lstrip(".").split("."))
        if bad:
            offenders[name] = bad
    assert offenders == {}


def test_the_rule_would_see_a_hidden_import(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from ..defs.judge import x\n    import openai\n")
    assert {m for m in _imports(module) if _forbidden(m)} == {"..defs.judge", "openai"}


# -- import cycles -------------------------------------------------------------------------------
# sft_data and hallucination.rules once imported each other, one side from inside a function to
# dodge the cycle; the refusal and decline detectors both need now live in refusal.py.
NO_LOCAL_IMPORTS = ("sft/data.py", "hallucination/rules.py")


def _module_name(path: Path, package: Path) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph(package: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports, at module level or inside a function."""
    modules = {_module_name(p, package): p for p in package.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                parts = here[:len(here) - node.level + 1] if node.level else []  # "from ..x": two up
                base = ".".join(parts + [node.module] if node.module else parts)
                found |= {base, *(f"{base}.{alias.name}" for alias in node.names)}
            elif isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def _in_a_cycle(graph: dict[str, set[str]], start: str) -> bool:
    seen, todo = set(), list(graph[start])
    while todo:
        module = todo.pop()
        if module == start:
            return True
        if module not in seen:
            seen.add(module)
            todo.extend(graph[module])
    return False


def _local_imports(path: Path) -> list[str]:
    """``function: module`` for every import inside a function of ``path``."""
    found = []
    for function in ast.walk(ast.parse(path.read_text())):
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found += [f"{function.name}: {'.' * node.level}{node.module or ''}" if isinstance(node, ast.ImportFrom)
                      else f"{function.name}: {node.names[0].name}"
                      for node in ast.walk(function) if isinstance(node, (ast.Import, ast.ImportFrom))]
    return found


def test_sft_data_and_the_hallucination_rules_import_at_module_level_only():
    assert {name: _local_imports(PACKAGE / name) for name in NO_LOCAL_IMPORTS} == {
        name: [] for name in NO_LOCAL_IMPORTS}


def test_neither_sft_data_nor_the_hallucination_rules_is_in_an_import_cycle():
    graph = _import_graph(PACKAGE)
    assert "phi4_assets.core.refusal" in graph["phi4_assets.sft.data"]  # the graph sees relative imports
    assert [m for m in ("phi4_assets.sft.data", "phi4_assets.hallucination.rules") if _in_a_cycle(graph, m)] == []


def test_the_cycle_check_sees_a_cycle_through_a_local_import(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    for name in ("__init__.py", "sub/__init__.py"):
        (package / name).write_text("")
    (package / "a.py").write_text("from .sub.b import f\n")
    (package / "sub" / "b.py").write_text("def f():\n    from ..a import g\n")
    graph = _import_graph(package)
    assert _in_a_cycle(graph, "pkg.a") and _local_imports(package / "sub" / "b.py") == ["f: ..a"]
