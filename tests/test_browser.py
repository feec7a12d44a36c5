"""Every tab in a real browser (Playwright + Debian Chromium): open the tab, perform its main action with the
page's example input, wait for the output and check its content against the same request made through the
API; save one screenshot per tab in ``artifacts/screenshots/<tab>.png``. One more test checks that a
server-side error reaches the page as a readable message.

Tasks whose offline model must be trained here are pointed at tiny random checkpoints (as in the bad-input
matrix), so every tab really runs its model; their outputs are deterministic (seeded weights).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest

from bertvariants.registry import tab, TABS

from .conftest import ARTIFACTS, needs_chromium
from .test_bad_input import tiny_models as _tiny_models_all  # noqa: F401 - the fixture, reused below

SHOTS = ARTIFACTS / "screenshots"
WIDTHS = (1400, 390)  # a laptop and a phone
ELECTRA_EDIT_LABEL = ("The corrupted sentence — edit words yourself (or type any sentence), then ask the "
                      "discriminator")
RAW_FLOAT = re.compile(r"\d\.\d{9,}")  # float32 printed in full, e.g. 0.6899999976158142
WAIT_MS = 120_000  # first use loads a model on a shared 2-core CI box


def squash(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip()


def md_snippet(md: str, n: int = 48) -> str:
    """The start of a markdown answer as the page renders it (emphasis and code marks dropped)."""
    plain = re.sub(r"[*_`#]", "", md.split("\n")[0])
    plain = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", plain)  # links show their text
    return squash(plain)[:n].strip()


def first_text_cell(df: dict, column: str | None = None) -> str:
    """The first non-empty string cell of a Dataframe answer (optionally of one column)."""
    cols = df["headers"]
    for row in df["data"]:
        for name, cell in zip(cols, row):
            if (column is None or name == column) and isinstance(cell, str) and cell.strip():
                return cell.strip()
    raise AssertionError(f"no text cell in {df}")


@dataclass(frozen=True)
class Check:
    """What the page must show: ``text`` somewhere visible, or ``value`` in the input labelled ``label``."""

    text: str | None = None
    label: str | None = None
    value: str | None = None


@dataclass(frozen=True)
class TabAction:
    key: str  # registry.TABS key
    button: str | None  # the main action's button (None: the tab renders on select)
    expected: Callable[[Any], list[Check]]  # from the API's answer to the same request
    api: str | None = None  # endpoint whose answer (page defaults) gives the expected output
    subtab: str | None = None
    api_kwargs: dict = field(default_factory=dict)


ACTIONS: tuple[TabAction, ...] = (
    TabAction("albert", "Count parameters", lambda a: [Check(text=md_snippet(a[0]))], api="/albert_parameters",
              subtab="Parameter explorer"),
    TabAction("roberta", "Fill mask", lambda a: [Check(text=md_snippet(a[0], 30)), Check(text=first_text_cell(a[1]))],
              api="/roberta_fill_mask", subtab="Fill mask"),
    TabAction("electra", "Generator replaces → discriminator detects",
              lambda a: [Check(text=md_snippet(a[0], 40)), Check(label=ELECTRA_EDIT_LABEL, value=a[2])],
              api="/electra_replace", subtab="Generator + discriminator"),
    TabAction("spanbert", "Answer", lambda a: [Check(text=md_snippet(a[0], 40)), Check(text=first_text_cell(a[2]))],
              api="/spanbert_qa", subtab="Question answering"),
    TabAction("distillation", "Run both", lambda a: [Check(text=first_text_cell(a[0], "prediction"))],
              api="/compare_sentiment", subtab="Teacher vs student"),
    TabAction("sentence_bert", "Compare", lambda a: [Check(label="Cosine similarity", value=f"{a:.4f}".rstrip("0"))],
              api="/similarity"),
    TabAction("clinical_bert", "Score the note", lambda a: [Check(text=md_snippet(a[1], 40))], api="/clinical_score",
              subtab="Long-note scoring"),
    TabAction("video_bert", "Tokenize the video", lambda a: [Check(text=md_snippet(a[2], 40)),
                                                             Check(text=re.search(r"\[V\d+\]", a[0][0]["caption"])[0])],
              api="/video_tokenize"),
    TabAction("bart", "Summarize", lambda a: [Check(label="Summary", value=a[0]), Check(text=md_snippet(a[1], 30))],
              api="/summarize", subtab="Summarization"),
    TabAction("interpret", "Show attention", lambda a: [Check(text=md_snippet(a[0], 40))], api="/attention",
              subtab="Attention"),
    # the table's top row and the training view's comparison sentence (both render when the tab is selected)
    TabAction("leaderboard", None, lambda a: [Check(text=leaderboard_top_model()),
                                              Check(text=md_snippet(a[1].split(":**", 1)[-1], 40))],
              api="/leaderboard_training"),
)


@pytest.fixture(scope="module")
def tiny_models(_tiny_models_all):
    """Tiny checkpoints for trained-model tasks, but the real extractive fallback for summarization."""
    saved = os.environ.pop("BERTVARIANTS_MODEL_SUMMARIZATION", None)
    yield
    if saved is not None:
        os.environ["BERTVARIANTS_MODEL_SUMMARIZATION"] = saved


def leaderboard_top_model() -> str:
    """The first row the Leaderboard tab shows with its default filters (sorted by score, descending)."""
    from bertvariants.ui.leaderboard import leaderboard_table
    from evaluation import leaderboard as lb

    view, _ = leaderboard_table("", [], [], list(lb.SOURCES), 0, lb.MAX_PARAMS, list(lb.DEFAULT_COLUMNS), "score",
                                False)
    assert len(view), "the leaderboard has no rows (evaluation/references.csv missing?)"
    return str(view.iloc[0]["model"])


def open_tab(page, app_url: str, label: str, subtab: str | None):
    page.goto(app_url, wait_until="domcontentloaded")
    page.get_by_role("tab", name=label, exact=True).click(timeout=60_000)
    if subtab:
        page.get_by_role("tab", name=subtab, exact=True).click(timeout=30_000)


def action_for(key: str) -> TabAction:
    found = [a for a in ACTIONS if a.key == key]
    assert len(found) == 1, (f"registry.TABS has the tab {key!r}: add one TabAction for it to ACTIONS in "
                             f"tests/test_browser.py (its main button, the API call whose answer the page must show)")
    return found[0]


def test_actions_cover_every_tab():
    for spec in TABS:
        action_for(spec.key)
    stale = {a.key for a in ACTIONS} - {t.key for t in TABS}
    assert not stale, f"ACTIONS has rows for tabs registry.TABS no longer has: {sorted(stale)}"


@needs_chromium
@pytest.mark.parametrize("spec", TABS, ids=lambda t: t.key)
def test_tab_main_action_in_the_browser(spec, app_url, browser, client, tiny_models):
    from playwright.sync_api import expect

    action = action_for(spec.key)
    answer = client.predict(api_name=action.api, **action.api_kwargs)
    checks = action.expected(answer)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        open_tab(page, app_url, spec.label, action.subtab)
        if action.button:
            page.get_by_role("button", name=action.button, exact=True).click(timeout=30_000)
        for check in checks:
            if check.text is not None:
                visible = page.get_by_text(check.text, exact=False).filter(visible=True)
                expect(visible.first).to_be_visible(timeout=WAIT_MS)
            else:
                expect(page.get_by_label(check.label, exact=True)).to_have_value(check.value, timeout=WAIT_MS)
        body = page.locator("body").inner_text()
        assert "Traceback" not in body and "Internal error" not in body
        assert not RAW_FLOAT.search(body), RAW_FLOAT.search(body)[0]  # numbers are rounded for display
        assert not page.locator(".bv-error").filter(visible=True).count(), "an error line is showing"
        SHOTS.mkdir(parents=True, exist_ok=True)
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 1000})
            page.wait_for_timeout(300)  # plots re-lay out to the new width
            page.screenshot(path=str(SHOTS / f"{action.key}-{width}.png"), full_page=True, animations="disabled")
    finally:
        page.close()
    assert not errors, errors


@needs_chromium
def test_server_side_error_is_a_readable_message_in_the_page(app_url, browser):
    """An empty query to Sentence-BERT's semantic search: the page shows the handler's message in place, under the
    button (no traceback, no "Error" badge over the inputs or outputs), and the same page can run a good request
    right after, which clears the message."""
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        open_tab(page, app_url, tab("sentence_bert").label, "Semantic search")
        query = page.get_by_label("Query", exact=True)
        query.fill("   ")
        page.get_by_role("button", name="Search", exact=True).click()
        message = page.locator(".bv-error").get_by_text("Query is empty: please enter some text").filter(visible=True)
        expect(message.first).to_be_visible(timeout=WAIT_MS)
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "error_message.png"), full_page=False, animations="disabled")
        body = page.locator("body").inner_text()
        assert "Traceback" not in body and 'File "' not in body
        expect(query).to_be_editable()  # the input is not covered
        assert not page.locator(".error").filter(visible=True).count(), "an error badge covers a component"
        query.fill("Somebody is playing music.")
        page.get_by_role("button", name="Search", exact=True).click()
        hit = page.get_by_role("gridcell", name="A person plays a string instrument.").filter(visible=True)
        expect(hit.first).to_be_visible(timeout=WAIT_MS)
        expect(message.first).to_be_hidden(timeout=WAIT_MS)
    finally:
        page.close()


@needs_chromium
def test_a_share_link_opens_its_tab_and_selecting_a_tab_updates_the_link(app_url, browser):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(app_url + "?tab=electra", wait_until="domcontentloaded")
        selected = page.get_by_role("tab", name=tab("electra").label, exact=True)
        expect(selected).to_have_attribute("aria-selected", "true", timeout=WAIT_MS)
        expect(page).to_have_url(re.compile(r"[?&]tab=electra\b"), timeout=WAIT_MS)  # the opened tab's link
        bart = page.get_by_role("tab", name=tab("bart").label, exact=True)
        bart.click()
        expect(bart).to_have_attribute("aria-selected", "true", timeout=WAIT_MS)
        expect(page).to_have_url(re.compile(r"[?&]tab=bart\b"), timeout=WAIT_MS)
    finally:
        page.close()


@dataclass(frozen=True)
class View:
    """A view beyond a tab's main action: open its sub-tab and accordion, press its button, see its content."""

    key: str
    subtab: str | None
    accordion: str | None
    button: str | None  # None: the view draws itself when its sub-tab opens
    texts: tuple[str, ...]  # visible text it must show (a regex each)
    choose: tuple[str, ...] = ()  # radio options to pick first (by label), e.g. the attention view's "rollout"
    shot: str = ""  # screenshot name (artifacts/screenshots/<shot>-<width>.png); "" for none


VIEWS: tuple[View, ...] = (
    View("roberta", "Fill mask", "Compare every fill-mask model here on this sentence (latency, size)",
         "Compare fill-mask models", (r"roberta-fill-mask", r"latency \(ms, median of 5\)")),
    View("bart", "Summarization", "Compare every summarizer here on this document (latency, size)",
         "Compare summarizers", (r"Lead-3 \(extractive\)", r"MiniLM centroid \(extractive\)")),
    View("interpret", "Saliency", None, None, (r"completeness", r"Integrated gradients", r"SmoothGrad × input"),
         shot="interpret-saliency"),
    View("interpret", "Attention", None, None, (r"Attention rollout through layer", r"0\.5·A \+ 0\.5·I"),
         choose=("rollout",), shot="interpret-rollout"),
    View("interpret", "Faithfulness", None, "Check faithfulness",
         (r"Most faithful here", r"AOPC \(deletion", r"random order \(mean of 10"), shot="interpret-faithfulness"),
    View("interpret", "MLM lens", None, "Read every layer", (r"enters the top 5|never enters the top 5",
                                                            r"rank of “paris”", r"Mask 1: final top-5"),
         shot="interpret-mlm-lens"),
    View("interpret", "Summary attribution", None, "Attribute the summary",
         (r"greedy: “", r"top source tokens"), shot="interpret-summary-attribution"),
    View("sentence_bert", None, "Why are A and B similar? Token × token attribution (integrated Jacobians)",
         "Explain the similarity", (r"Completeness gap", r"food · meal", r"Top token pairs"),
         shot="sentence-bert-attribution"),
    View("leaderboard", None, "Compare two runs: paired significance test, settings, disagreements", "Compare",
         (r"95%",)),
)


@needs_chromium
@pytest.mark.parametrize("view", VIEWS, ids=lambda v: f"{v.key}-{v.button or v.subtab}")
def test_new_views_in_the_browser(view, app_url, browser, tiny_models):
    """The compare views, saliency, faithfulness, the MLM lens, rollout, the similarity attribution and the two-run
    comparison render their content in the page (no error line); the interpretability views are screenshot at both
    widths."""
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        open_tab(page, app_url, tab(view.key).label, view.subtab)
        if view.accordion:
            page.get_by_text(view.accordion, exact=True).click(timeout=30_000)
        for option in view.choose:
            page.get_by_label(option, exact=True).filter(visible=True).first.check(timeout=30_000)
        if view.button:
            page.get_by_role("button", name=view.button, exact=True).filter(visible=True).first.click(timeout=30_000)
        for pattern in view.texts:
            expect(page.get_by_text(re.compile(pattern)).filter(visible=True).first).to_be_visible(timeout=WAIT_MS)
        assert not page.locator(".bv-error").filter(visible=True).count(), page.locator(".bv-error").all_inner_texts()
        body = page.locator("body").inner_text()
        assert "Traceback" not in body and not RAW_FLOAT.search(body)
        if view.shot:
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.wait_for_timeout(1500)  # the button's "running" mark clears once the files are served
            for width in WIDTHS:
                page.set_viewport_size({"width": width, "height": 1000})
                page.wait_for_timeout(300)  # plots re-lay out to the new width
                page.screenshot(path=str(SHOTS / f"{view.shot}-{width}.png"), full_page=True, animations="disabled")
    finally:
        page.close()
    assert not errors, errors
