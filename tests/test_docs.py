"""README is computed from the tables, not kept in step by hand: its tab list follows registry.TABS, its
Public API table names every endpoint the built app exposes, and its ``sdk_version`` is the gradio version
requirements.txt pins (which bertvariants.ui.guard's patches are checked against)."""

from __future__ import annotations

import re

import pytest
import yaml

from bertvariants.registry import TABS

from .conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    """The text of README's ``## title`` section (up to the next ``## ``)."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, flags=re.M | re.S)
    assert match, f"README.md has no '## {title}' section"
    return match.group(1)


def front_matter() -> dict:
    match = re.match(r"---\n(.*?)\n---\n", README, flags=re.S)
    assert match, "README.md has no YAML front matter (the Space's settings)"
    return yaml.safe_load(match.group(1))


@pytest.fixture(scope="module")
def endpoints() -> set[str]:
    """The public API of the built app, as gradio_client sees it (``/name``)."""
    from bertvariants.ui import build_demo

    return set(build_demo().get_api_info()["named_endpoints"])


def test_readme_lists_every_tab_in_order():
    bullets = re.findall(r"^- \*\*(.+?)\*\*", section("The tabs"), flags=re.M)
    missing = [t.label for t in TABS if t.label not in bullets]
    assert not missing, f"README.md '## The tabs' has no bullet for {missing}: add '- **{missing[0]}** — …'"
    listed = [b for b in bullets if b in {t.label for t in TABS}]
    assert listed == [t.label for t in TABS], "README.md '## The tabs' should list the tabs in registry.TABS order"


def test_readme_public_api_names_every_endpoint(endpoints):
    documented = set(re.findall(r"`(/[A-Za-z0-9_]+)`", section("Public API")))
    missing = sorted(endpoints - documented)
    assert not missing, f"README.md '## Public API' does not document {missing}: add a table row for each"
    stale = sorted(documented - endpoints)
    assert not stale, f"README.md '## Public API' documents endpoints the app no longer has: {stale}"


def test_gradio_pin_matches_the_space_and_the_guard():
    from bertvariants.ui.guard import PINNED_GRADIO

    pins = re.findall(r"^gradio(?:\[mcp\])?==(\S+)", (REPO / "requirements.txt").read_text(), flags=re.M)
    assert pins == [PINNED_GRADIO], "requirements.txt must pin gradio exactly (ui/guard.py patches its internals)"
    assert str(front_matter()["sdk_version"]) == PINNED_GRADIO, "README sdk_version must equal the gradio pin"
