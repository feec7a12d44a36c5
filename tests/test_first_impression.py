"""What a new user sees first: defaults that show each mechanism working with the shipped models, ELECTRA's colours
as its legend says, the first input in a phone's first screen, and no table header split inside a word.

The default checks pin the shipped models' answers on the tabs' default inputs: a reshipped model that answers them
differently fails here, and whoever reshipped it picks defaults that teach again. The browser tests (Debian
Chromium) save screenshots of each tab they open in ``artifacts/screenshots/first-impression/``.
"""

from __future__ import annotations

import pytest

from .conftest import ARTIFACTS, needs_chromium

SHOTS = ARTIFACTS / "screenshots" / "first-impression"
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1400, "height": 900}
WAIT_MS = 180_000  # a first click loads its model on a shared 2-core box


# ----------------------------------------------------------------------------------------- defaults, shipped models
@pytest.fixture()
def shipped_models(tmp_path, monkeypatch):
    """The models a fresh clone serves: the shipped ones (no locally trained checkpoint in ``models/`` overrides)."""
    from bertvariants import serving
    from bertvariants.serving import manifest as mf

    monkeypatch.setenv("BERTVARIANTS_MODELS_DIR", str(tmp_path / "no-trained-models"))
    for task in mf.default_manifest().tasks.values():
        monkeypatch.delenv(task.env_var, raising=False)
    mf.default_manifest.cache_clear()
    serving.CACHE.clear()
    yield
    mf.default_manifest.cache_clear()
    serving.CACHE.clear()


def test_electra_default_shows_a_replacement_caught_and_the_truth(shipped_models):
    from bertvariants.ui import electra as ui

    md, hl, corrupted, table, source = ui.replace_and_detect(ui.DEFAULT_SENTENCE, 0, 0.15)
    # the page's default corrupted sentence is the generator's own seed-0 corruption
    assert corrupted.lower() == ui.DEFAULT_EDITED.lower() and source["corrupted"] == corrupted
    caught = table[(table["verdict"] == "replaced") & table["truth"].str.startswith("replaced")]
    assert len(caught) >= 1 and any(v == ui.REPLACED for _, v in hl)  # at least one replaced word flagged in red
    md2, _, table2 = ui.detect(ui.DEFAULT_EDITED, {"original": ui.DEFAULT_SENTENCE, "corrupted": ui.DEFAULT_EDITED})
    assert "truth:" in md2 and (table2["truth"] != "original").sum() == (table["truth"] != "original").sum()


def test_fill_mask_defaults_answer_sensibly_and_differently_per_tab(shipped_models):
    from bertvariants.ui import albert, roberta

    md, df = albert.fill(albert.FILL_EXAMPLE, 5)
    assert df["token"].iloc[0] == "coffee" and df["E = 128: token"].iloc[0] == "coffee"
    assert "factorized" in md and "same checkpoint serves the RoBERTa tab" in md
    label, df = roberta.fill(roberta.FILL_EXAMPLE, 5)
    assert df["token"].iloc[0] == "hospital" and df["byte-level BPE pieces"].iloc[0] == "Ġhospital"
    assert "same checkpoint serves the ALBERT tab" in label


def test_clinical_defaults_one_clearly_surgery_one_clearly_not(shipped_models):
    """Re-check when the clinical model is reshipped: pick notes its scores separate clearly."""
    from bertvariants import clinical_bert as cb
    from bertvariants.serving import get_model
    from bertvariants.ui import clinical_bert as ui

    m = get_model(ui.CLASSIFIER)
    surgery = {v: k for k, v in m.model.config.id2label.items()}["Surgery"]
    scores = [cb.score_note(m.model, m.tokenizer, note, max_tokens=128, stride=0, c=2, positive=surgery)
              for note in (ui.EXAMPLE_NOTE, ui.OTHER_NOTE)]
    assert scores[0].aggregate.n >= 3  # long enough to show the chunking
    # the shipped head's probabilities run low (the tab says so): the operative note scores 0.26, the discharge
    # summary 0.016; the surgical note must stand well apart
    surgical, other = (s.aggregate.probability for s in scores)
    assert surgical > 0.2 and other < 0.05 and surgical > 10 * other


# ------------------------------------------------------------------------------------------------------- browser
def open_view(page, app_url: str, key: str, subtab: str | None) -> None:
    """Open a tab by its share link and a sub-tab (at 390 px a sub-tab may sit in its "More tabs" menu)."""
    page.goto(f"{app_url}?tab={key}", wait_until="domcontentloaded")
    page.wait_for_function("() => [...document.querySelectorAll('button, textarea')].some(e => e.offsetParent && "
                           "/^bv-button-/.test(e.id || ''))", timeout=60_000)  # the tab's own buttons are drawn
    page.wait_for_timeout(1000)
    if not subtab:
        return
    tab = page.locator("[role=tab]").filter(has_text=subtab).filter(visible=True)
    if tab.count():
        tab.first.click()
        return
    for more in page.locator('button[aria-label="More tabs"]').filter(visible=True).all():
        more.click()
        page.wait_for_timeout(400)
        item = page.locator(".overflow-dropdown button").filter(has_text=subtab).filter(visible=True)
        if item.count():
            item.first.click()
            page.wait_for_timeout(400)
            return
        more.click()
        page.wait_for_timeout(200)
    raise AssertionError(f"sub-tab {subtab!r} not found")


def click_and_wait(page, button: str) -> None:
    page.get_by_role("button", name=button, exact=True).filter(visible=True).first.click()
    page.wait_for_timeout(300)
    page.wait_for_function("() => !document.querySelector('.bv-pending')", timeout=WAIT_MS)
    page.wait_for_timeout(700)


# every header and cell word of every visible table, as rendered: a word whose characters lie on more than one line
# was split (Range.getClientRects gives one box per line a word occupies)
SPLIT_WORDS = """() => { const split = [];
  for (const cell of document.querySelectorAll('table th, table td')) {
    if (!cell.offsetParent) continue;
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const m of node.textContent.matchAll(/\\S+/g)) {
        const r = document.createRange(); r.setStart(node, m.index); r.setEnd(node, m.index + m[0].length);
        const tops = new Set([...r.getClientRects()].filter(b => b.width > 0).map(b => Math.round(b.top)));
        if (tops.size > 1) split.push(m[0]);
      } } }
  return split; }"""

# (tab key, sub-tab, buttons clicked in order): the tables each tab shows with its default inputs
DEFAULT_VIEWS = (
    ("albert", "Parameter explorer", ("Count parameters",)),  # with the paper's Table 1, shown on load
    ("albert", "Use ALBERT like BERT", ("Fill mask",)),
    ("roberta", "Fill mask", ("Fill mask",)),
    ("electra", "Generator + discriminator", ("Generator replaces → discriminator detects", "Detect replaced words")),
    ("distillation", "Teacher vs student", ("Run both",)),
    ("clinical_bert", "Long-note scoring", ("Score the note",)),
)


@needs_chromium
@pytest.mark.parametrize("viewport", (LAPTOP, PHONE), ids=lambda v: f"{v['width']}px")
@pytest.mark.parametrize("view", DEFAULT_VIEWS, ids=lambda v: f"{v[0]}-{v[2][0]}")
def test_no_dataframe_header_or_cell_is_split_inside_a_word(view, viewport, app_url, browser):
    key, subtab, buttons = view
    page = browser.new_page(viewport=viewport)
    try:
        open_view(page, app_url, key, subtab)
        for button in buttons:
            click_and_wait(page, button)
        n_tables = page.evaluate("() => [...document.querySelectorAll('.table-wrap table')]"
                                 ".filter(t => t.offsetParent).length")
        assert n_tables >= 1, f"{key}: no table shown after {buttons}"
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{key}-{buttons[0].split()[0].lower()}-{viewport['width']}.png"),
                        full_page=True)
        split = [w for w in page.evaluate(SPLIT_WORDS)]
        # a markdown table (gradio's prose) may still split; gr.Dataframe headers and cells must not
        frames = page.evaluate(SPLIT_WORDS.replace("table th, table td", ".table-wrap th, .table-wrap td"))
        assert frames == [], f"{key} at {viewport['width']} px: words split across lines: {frames} (all: {split})"
    finally:
        page.close()


@needs_chromium
def test_electra_colours_match_the_legend(app_url, browser, client):
    """Red = flagged as replaced (P > 0.5), blue = original: every token, and the legend's own swatches."""
    from bertvariants.ui import electra as ui

    expected = client.predict(ui.DEFAULT_SENTENCE, 0, 0.15, api_name="/electra_replace")[1]
    page = browser.new_page(viewport=LAPTOP)
    try:
        open_view(page, app_url, "electra", "Generator + discriminator")
        click_and_wait(page, "Generator replaces → discriminator detects")
        shown = page.evaluate("""() => { const hl = [...document.querySelectorAll('[data-testid="highlighted-text"]')]
            .filter(e => e.offsetParent)[0];
          const rgb = el => getComputedStyle(el).backgroundColor.match(/[\\d.]+/g).slice(0, 3).map(Number);
          return { legend: [...hl.querySelectorAll('.legend-item')].map(b => [b.textContent.trim(), rgb(b)]),
                   tokens: [...hl.querySelectorAll('.token')].map(t => [t.textContent.trim(), rgb(t)]) }; }""")
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "electra-colours-1400.png"), full_page=True)
    finally:
        page.close()

    def colour(rgb) -> str:
        r, _, b = rgb
        return "red" if r > b + 60 else "blue" if b > r + 60 else "neither"

    assert {name: colour(rgb) for name, rgb in shown["legend"]} == {ui.REPLACED: "red", ui.ORIGINAL: "blue"}
    want = [(d["token"].strip(), "red" if d["class_or_confidence"] == ui.REPLACED else "blue") for d in expected]
    assert [(text, colour(rgb)) for text, rgb in shown["tokens"]] == want


@needs_chromium
@pytest.mark.parametrize("key", ("electra", "spanbert"))
def test_first_input_is_in_a_phones_first_screen(key, app_url, browser):
    page = browser.new_page(viewport=PHONE)
    try:
        page.goto(f"{app_url}?tab={key}", wait_until="domcontentloaded")
        page.locator("textarea").filter(visible=True).first.wait_for(timeout=30_000)
        page.wait_for_timeout(1000)
        top = page.evaluate("() => [...document.querySelectorAll('textarea, input[type=number]')]"
                            ".filter(e => e.offsetParent)[0].getBoundingClientRect().top")
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{key}-first-screen-390.png"))
        # in the first screen with room to type: its first three lines (60 px) visible without scrolling
        assert top + 60 <= PHONE["height"], f"{key}: the first input starts at {top:.0f} px, below the first screen"
    finally:
        page.close()
