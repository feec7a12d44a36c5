"""README and docs/ are computed from the tables, not kept in step by hand: README's tab list follows registry.TABS,
its Public API names every endpoint the built app exposes, the generated regions (tabs, endpoints, checkpoint
formats, recipes) equal what ``python -m bertvariants.ui.doc_tables`` writes now, and ``sdk_version`` is the gradio
version requirements.txt pins (which bertvariants.ui.guard's patches are checked against). README stays a
five-minute read (≤ 250 lines) whose every docs/ link lands on a file and heading that exist."""

from __future__ import annotations

import re

import pytest
import yaml

from bertvariants.registry import TABS

from .conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")
MAX_README_LINES = 250
REGENERATE = "run python -m bertvariants.ui.doc_tables"


def section(title: str, text: str = README, where: str = "README.md") -> str:
    """The text of a ``## title`` section (up to the next ``## ``)."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, flags=re.M | re.S)
    assert match, f"{where} has no '## {title}' section"
    return match.group(1)


def front_matter() -> dict:
    match = re.match(r"---\n(.*?)\n---\n", README, flags=re.S)
    assert match, "README.md has no YAML front matter (the Space's settings)"
    return yaml.safe_load(match.group(1))


def headings(path) -> set[str]:
    """GitHub's anchors of a markdown file's headings (fenced code skipped: a ``# comment`` is no heading)."""
    from bertvariants.ui.doc_tables import slug

    text = re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.M | re.S)
    return {slug(h) for h in re.findall(r"^#{1,6} (.+)$", text, flags=re.M)}


@pytest.fixture(scope="module")
def demo():
    from bertvariants.ui import build_demo

    return build_demo()


@pytest.fixture(scope="module")
def endpoints(demo) -> set[str]:
    """The public API of the built app, as gradio_client sees it (``/name``)."""
    return set(demo.get_api_info()["named_endpoints"])


def test_readme_lists_every_tab_in_order():
    bullets = re.findall(r"^- \*\*(.+?)\*\*", section("What you can do"), flags=re.M)
    missing = [t.label for t in TABS if t.label not in bullets]
    assert not missing, f"README.md '## What you can do' has no bullet for {missing}: {REGENERATE}"
    listed = [b for b in bullets if b in {t.label for t in TABS}]
    assert listed == [t.label for t in TABS], "README.md '## What you can do' lists the tabs in registry.TABS order"


def test_docs_tabs_has_a_section_per_tab_in_order():
    text = (REPO / "docs" / "tabs.md").read_text(encoding="utf-8")
    sections = re.findall(r"^## (.+)$", text, flags=re.M)
    assert sections == [t.label for t in TABS], "docs/tabs.md: one '## <label>' section per registry.TABS row, in order"


def test_readme_public_api_names_every_endpoint(endpoints):
    documented = set(re.findall(r"`(/[A-Za-z0-9_]+)`", section("Public API")))
    missing = sorted(endpoints - documented)
    assert not missing, f"README.md '## Public API' does not document {missing}: {REGENERATE}"
    stale = sorted(documented - endpoints)
    assert not stale, f"README.md '## Public API' documents endpoints the app no longer has: {stale}"


def test_docs_api_documents_every_endpoint(endpoints):
    text = (REPO / "docs" / "api.md").read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| `(/[A-Za-z0-9_]+)` \|", text, flags=re.M))
    assert rows == endpoints, f"docs/api.md: missing {sorted(endpoints - rows)}, stale {sorted(rows - endpoints)}"


def test_generated_regions_are_current(demo):
    from bertvariants.ui import doc_tables

    stale = doc_tables.stale(REPO, demo)
    assert not stale, f"generated tables are stale in {stale}: {REGENERATE}"


def test_a_stale_region_is_found_and_a_missing_one_is_an_error():
    from bertvariants.ui.doc_tables import fill

    text = "a\n<!-- generated:tabs -->\nold\n<!-- /generated:tabs -->\nb\n"
    assert fill(text, "tabs", "new") == "a\n<!-- generated:tabs -->\nnew\n<!-- /generated:tabs -->\nb\n"
    assert fill(fill(text, "tabs", "new"), "tabs", "new") == fill(text, "tabs", "new")  # idempotent
    with pytest.raises(ValueError, match="exactly once"):
        fill("no markers", "tabs", "new", where="README.md")
    with pytest.raises(ValueError, match="exactly once"):
        fill(text + text, "tabs", "new")


def test_readme_is_a_five_minute_read():
    lines = README.count("\n")
    assert lines <= MAX_README_LINES, (f"README.md has {lines} lines (≤ {MAX_README_LINES}): move details to docs/ "
                                       "and link them")


def test_every_docs_link_resolves_to_a_file_and_heading():
    links = re.findall(r"\]\(((?:docs/)[^)#\s]+)(?:#([^)\s]+))?\)", README)
    assert links, "README.md links no page of docs/"
    for path, anchor in links:
        target = REPO / path
        assert target.is_file(), f"README.md links {path}, which does not exist"
        if anchor:
            assert anchor in headings(target), f"README.md links {path}#{anchor}: {path} has no such heading"
    for doc in sorted((REPO / "docs").glob("*.md")):  # links between docs pages
        for path, anchor in re.findall(r"\]\(([\w\-]+\.md)(?:#([^)\s]+))?\)", doc.read_text(encoding="utf-8")):
            target = doc.parent / path
            assert target.is_file(), f"docs/{doc.name} links {path}, which does not exist"
            if anchor:
                assert anchor in headings(target), f"docs/{doc.name} links {path}#{anchor}: no such heading"


def test_every_repository_path_the_docs_name_exists():
    """A module moved (e.g. into bertvariants/serving/) leaves no README or docs/ sentence pointing at nothing."""
    for doc in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        named = re.findall(r"`((?:bertvariants|evaluation|tests|docs)/[\w./-]*)`", doc.read_text(encoding="utf-8"))
        missing = sorted({p for p in named if not (REPO / p).exists()})
        assert not missing, f"{doc.relative_to(REPO)} names {missing}, which do not exist"


def test_a_newcomer_finds_how_to_add_a_tab_a_recipe_and_a_benchmark_in_one_click():
    for anchor in ("adding-a-tab", "adding-a-recipe", "adding-a-benchmark"):
        assert f"(docs/architecture.md#{anchor})" in README, f"README.md should link docs/architecture.md#{anchor}"


def test_readme_model_table_names_every_manifest_task_and_hub_id():
    raw = yaml.safe_load((REPO / "spaces.yml").read_text(encoding="utf-8"))["tasks"]
    models = section("Models: online and offline")
    for key, task in raw.items():
        assert f"`{key}`" in models, f"README.md's model table has no row for the spaces.yml task {key}"
        assert f"`{task['hub']}`" in models, f"README.md's model table does not name {key}'s Hub id {task['hub']}"
        if task.get("shipped"):
            assert f"`{task['shipped']}`" in models, f"README.md's model table does not name shipped {task['shipped']}"


def test_readme_test_command_is_what_ci_runs():
    """.ci/run runs the line after the first fence that follows the marker (awk): keep it one runnable line."""
    after = README.split("<!-- test-command -->\n", 1)[1].split("\n")
    assert after[0].startswith("```") and after[2].startswith("```"), "the test command is one line in a fence"
    assert "python -m pytest" in after[1] and after[1].startswith("pip install -r requirements.txt"), after[1]


def test_gradio_pin_matches_the_space_and_the_guard():
    from bertvariants.ui.guard import PINNED_GRADIO

    pins = re.findall(r"^gradio(?:\[mcp\])?==(\S+)", (REPO / "requirements.txt").read_text(), flags=re.M)
    assert pins == [PINNED_GRADIO], "requirements.txt must pin gradio exactly (ui/guard.py patches its internals)"
    assert str(front_matter()["sdk_version"]) == PINNED_GRADIO, "README sdk_version must equal the gradio pin"
