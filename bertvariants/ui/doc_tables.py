"""The documentation's tables, generated from the code's own tables: ``python -m bertvariants.ui.doc_tables``.

Each table sits in a marked region of a markdown file and is rewritten from one table of the code::

    <!-- generated:tabs -->       README.md           registry.TABS
    <!-- generated:api -->        README.md           the built app's named endpoints, grouped by tab
    <!-- generated:endpoints -->  docs/api.md         the same endpoints, one row each (inputs, outputs, docstring)
    <!-- generated:loaders -->    docs/architecture.md  bertvariants.serving.formats.LOADERS, the checkpoint formats
    <!-- generated:recipes -->    docs/lab.md         bertvariants.train.RECIPES (+ which spaces.yml tasks each serves)

Everything between a region's two markers belongs to this module: edit the code's table, then run it.
``--check`` rewrites nothing and exits 1 naming each stale region (``tests/test_docs.py`` runs the same check).
It lives in the UI layer because the endpoints exist only once the Blocks are built.
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from ..paths import REPO_ROOT
from ..registry import TABS, TabSpec
from ..serving import default_manifest
from ..serving.formats import LOADERS
from ..train import RECIPES
from . import build_demo

FILES: dict[str, tuple[str, ...]] = {  # file (relative to the repository) -> the regions it holds
    "README.md": ("tabs", "api"),
    "docs/api.md": ("endpoints",),
    "docs/architecture.md": ("loaders",),
    "docs/lab.md": ("recipes",),
}
TABS_DOC = "docs/tabs.md"  # one ``## <label>`` section per tab, linked from README's tab list


@dataclass(frozen=True)
class Endpoint:
    """One named endpoint of the app, as ``gradio_client`` sees it."""

    name: str  # "/similarity"
    tab: TabSpec
    inputs: tuple[str, ...]  # parameter names
    outputs: tuple[str, ...]  # component types
    summary: str  # the first sentence of its docstring


# ------------------------------------------------------------------------------------------------ small helpers
def slug(heading: str) -> str:
    """GitHub's anchor for a markdown heading: ``"Sentence-BERT"`` -> ``"sentence-bert"``.

    >>> slug("5. Measured here (2026-12-08)")
    '5-measured-here-2026-12-08'
    """
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def first_sentence(text: str | None) -> str:
    """The first sentence of a docstring, one line, without the "(public API `name`)" note tabs add."""
    flat = re.sub(r"(?<=\w)- (?=\w)", "-", " ".join((text or "").split()))  # a word hyphenated at a line break
    flat = re.sub(r":\w+:`~?\.?([^`]+)`", r"`\1`", flat).replace("``", "`")  # reST roles and literals -> markdown
    flat = re.sub(r" \(public API `[^`]+`\)|; public API `[^`]+`", "", flat)
    match = re.search(r"(?<!\bal)(?<!e\.g)\.\s+(?=[A-Z*`(])", flat)  # "et al. 2019" is no sentence end
    sentence = flat[:match.start() + 1] if match else flat
    parts = sentence.replace("|", "\\|").split("`")  # outside code spans, "<mask>" is text, not an HTML tag
    return "`".join(p if i % 2 else p.replace("<", "&lt;") for i, p in enumerate(parts))


def table(header: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    header = list(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def code(items: Iterable[str]) -> str:
    return ", ".join(f"`{i}`" for i in items) or "—"


# ------------------------------------------------------------------------------------------------ the app's API
def endpoints(demo=None) -> tuple[Endpoint, ...]:
    """Every named endpoint of the app (built here unless ``demo`` is given), in the order the tabs define them."""
    if demo is None:
        demo = build_demo()
    by_key = {spec.key: spec for spec in TABS}
    modules = {f"/{fn.api_name}": fn.fn.__module__ for fn in demo.fns.values() if fn.fn is not None and fn.api_name}
    found = []
    for name, info in demo.get_api_info()["named_endpoints"].items():
        key = modules[name].rsplit(".", 1)[-1]  # bertvariants.ui.<key> defines the handler
        found.append(Endpoint(name=name, tab=by_key[key],
                              inputs=tuple(p["parameter_name"] for p in info["parameters"]),
                              outputs=tuple(r["component"] for r in info["returns"]),
                              summary=first_sentence(info.get("description"))))
    return tuple(found)


# ------------------------------------------------------------------------------------------------ the regions
def tabs_region(_: tuple[Endpoint, ...]) -> str:
    """README's list of tabs: what each variant changed versus BERT, its paper, and its section in docs/tabs.md."""
    return "\n".join(f"- **{t.label}** — {t.summary} [reference]({t.url}) · [details]({TABS_DOC}#{slug(t.label)})"
                     for t in TABS)


def api_region(eps: tuple[Endpoint, ...]) -> str:
    """README's API at a glance: each tab's endpoints."""
    rows = [(f"[{t.label}]({TABS_DOC}#{slug(t.label)})", code(e.name for e in eps if e.tab == t)) for t in TABS]
    return table(("tab", "endpoints (details: [docs/api.md](docs/api.md))"), rows)


def endpoints_region(eps: tuple[Endpoint, ...]) -> str:
    """docs/api.md: one row per endpoint."""
    rows = [(f"`{e.name}`", e.tab.label, code(e.inputs), ", ".join(e.outputs), e.summary) for e in eps]
    return table(("endpoint", "tab", "inputs", "returns", "what it does"), rows)


def loaders_region(_: tuple[Endpoint, ...]) -> str:
    """docs/architecture.md: the checkpoint formats, in the order they are tried."""
    rows = [(f"`{entry.name}`", code(entry.serves), "yes" if entry.hub else "local only",
             first_sentence(inspect.getdoc(entry.load)) or "—") for entry in LOADERS]
    return table(("format", "serves kinds", "Hub ids", "what it loads"), rows)


def recipes_region(_: tuple[Endpoint, ...]) -> str:
    """docs/lab.md: the recipes, what each builds and which spaces.yml task a build serves offline."""
    tasks = default_manifest().tasks.values()
    rows = []
    for r in RECIPES:
        serves = [t.key for t in tasks if t.trained_name in r.builds]
        rows.append((f"`{r.name}`", code(f"models/{b}" for b in r.builds), code(serves), code(r.needs),
                     str(r.minutes), r.summary.replace("|", "\\|")))
    return table(("recipe", "builds", "serves", "needs first", "≈ min (2-core CPU)", "what it trains"), rows)


REGIONS: dict[str, Callable[[tuple[Endpoint, ...]], str]] = {
    "tabs": tabs_region, "api": api_region, "endpoints": endpoints_region,
    "loaders": loaders_region, "recipes": recipes_region,
}


# ------------------------------------------------------------------------------------------------ rewriting
def marked(name: str) -> re.Pattern:
    return re.compile(rf"(<!-- generated:{name} -->\n)(.*?)(<!-- /generated:{name} -->)", flags=re.S)


def fill(text: str, name: str, body: str, *, where: str = "text") -> str:
    """``text`` with region ``name`` holding ``body``; a missing or repeated region is an error."""
    found = marked(name).findall(text)
    if len(found) != 1:
        raise ValueError(f"{where} must hold the region <!-- generated:{name} --> … <!-- /generated:{name} --> "
                         f"exactly once (found {len(found)})")
    return marked(name).sub(lambda m: m.group(1) + body.rstrip("\n") + "\n" + m.group(3), text)


def rendered(root: Path = REPO_ROOT, demo=None) -> dict[str, tuple[str, str]]:
    """file -> (current text, text with every region regenerated)."""
    eps = endpoints(demo)
    out = {}
    for rel, names in FILES.items():
        current = (root / rel).read_text(encoding="utf-8")
        new = current
        for name in names:
            new = fill(new, name, REGIONS[name](eps), where=rel)
        out[rel] = (current, new)
    return out


def stale(root: Path = REPO_ROOT, demo=None) -> list[str]:
    """The files whose generated regions differ from what the code's tables give now."""
    return [rel for rel, (current, new) in rendered(root, demo).items() if current != new]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bertvariants.ui.doc_tables", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="rewrite nothing; exit 1 if a region is stale")
    args = parser.parse_args(argv)
    texts = rendered()
    changed = [rel for rel, (current, new) in texts.items() if current != new]
    if args.check:
        for rel in changed:
            print(f"stale generated table in {rel}: run python -m bertvariants.ui.doc_tables", file=sys.stderr)
        return 1 if changed else 0
    for rel in changed:
        (REPO_ROOT / rel).write_text(texts[rel][1], encoding="utf-8")
    print("rewrote: " + (", ".join(changed) or "nothing (every table is current)"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
