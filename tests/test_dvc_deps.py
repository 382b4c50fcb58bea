"""dvc.yaml lists, for every stage, each project module its entry point imports (transitively), so that DVC
never calls a result current after a change to code that made it."""
import ast
from pathlib import Path

import yaml

from tests.conftest import REPO

SRC = REPO / "src"
MODELS_DIR = SRC / "textdiff" / "models"
# Importing the models package imports every module in it (models/__init__.py registers them by discovery).
REGISTRY = MODELS_DIR / "__init__.py"


def deliberately_unlisted(stage: str, module: Path) -> str | None:
    """Why a module in a stage's import closure need not be among its deps (None: it must be).

    Two exclusions: a package's __init__.py that holds nothing but its docstring (no code to change a result);
    and, in a per-model stage (train@<model>, evaluate@<model>), the other models' files: the registry imports
    them all to register them, but the stage builds, trains or evaluates only its own model (and, in
    evaluation, the AR judge, whose file it does list)."""
    body = ast.parse(module.read_text()).body
    if module.name == "__init__.py" and len(body) == 1 and isinstance(body[0], ast.Expr):
        return "a package marker with only a docstring"
    if "@" not in stage or module.parent != MODELS_DIR or module.stem in ("__init__", "base"):
        return None
    kind, model = stage.split("@")
    if module.stem == model or (kind == "evaluate" and module.stem == "ar"):
        return None
    return "a sibling model file, imported by the registry only to register it"


def module_file(name: str) -> Path | None:
    base = SRC.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_files(path: Path) -> set[Path]:
    package = path.relative_to(SRC).parent.parts if SRC in path.parents else ()
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[:len(package) - node.level + 1] + ((node.module,) if node.module else ())) \
                if node.level else node.module
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    files = set()
    for name in names:
        parts = name.split(".")
        files.update(f for i in range(1, len(parts) + 1) if (f := module_file(".".join(parts[:i]))))
    if path == REGISTRY:
        files.update(MODELS_DIR.glob("*.py"))
    return files


def import_closure(entry: Path) -> set[Path]:
    seen, todo = set(), [entry]
    while todo:
        path = todo.pop()
        if path not in seen:
            seen.add(path)
            todo.extend(imported_files(path) - seen)
    return seen


def expanded_stages() -> dict[str, dict]:
    """Each stage of dvc.yaml, foreach stages expanded, with ${key}/${item}/${scale} substituted."""
    stages = {}
    for name, stage in yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"].items():
        if "foreach" not in stage:
            stages[name] = stage
            continue
        items = stage["foreach"]
        for key, item in (items.items() if isinstance(items, dict) else ((i, i) for i in items)):
            text = yaml.safe_dump(stage["do"]).replace("${key}", str(key)).replace("${item}", str(item))
            stages[f"{name}@{key}"] = yaml.safe_load(text)
    return stages


def dep_paths(stage: dict) -> set[str]:
    return {dep if isinstance(dep, str) else next(iter(dep)) for dep in stage.get("deps", [])}


def test_every_stage_lists_every_module_it_imports():
    lacking = {}
    for name, stage in expanded_stages().items():
        entry = REPO / stage["cmd"].split()[1]
        deps = dep_paths(stage)
        for module in sorted(import_closure(entry)):
            path = str(module.relative_to(REPO))
            covered = path in deps or any(path.startswith(dep.rstrip("/") + "/") for dep in deps)
            if not covered and not deliberately_unlisted(name, module):
                lacking.setdefault(name, []).append(path)
    assert not lacking, f"dvc.yaml deps lack imported modules: {lacking}"


def test_the_closure_follows_imports_and_the_registry():
    closure = {str(p.relative_to(REPO)) for p in import_closure(REPO / "stages" / "train.py")}
    assert {"src/textdiff/train.py", "src/textdiff/checkpoints.py", "src/textdiff/models/sdd.py",
            "src/textdiff/errors.py", "src/textdiff/tokenizer.py"} <= closure
    prepare = {str(p.relative_to(REPO)) for p in import_closure(REPO / "stages" / "prepare.py")}
    assert not any("/models/" in path for path in prepare)  # params.py names no model
    assert deliberately_unlisted("train@ar", MODELS_DIR / "sdd.py") and not deliberately_unlisted(
        "evaluate@sdd", MODELS_DIR / "ar.py")


def test_readme_states_the_one_deliberate_exclusion_and_why_it_is_safe():
    # Issue 23 row 15: the exclusion deliberately_unlisted names must be in README's robustness table too.
    readme = (REPO / "docs" / "robustness.md").read_text()
    assert ("a per-model stage (`train@ar`, `evaluate@mdlm`, …) imports the other models' files through the "
            "registry") in readme
    assert "so a change to another model's file cannot change its result" in readme
