"""First impressions in the browser: every click shows a pending state at once, and share links open their tab at
every width (a phone's tab bar shows two tabs; the rest sit in the "More tabs" dropdown)."""

from __future__ import annotations

import re

import pytest

from bertvariants.registry import TABS

from .conftest import needs_chromium, opened_page
from .test_bad_input import tiny_models  # noqa: F401 - the fixture: tiny checkpoints for the trained slots
from .test_browser import ACTIONS, open_tab

FEEDBACK_MS = 300  # click-to-first-visible-change budget for every button
WIDTHS = (390, 800, 1280)

# click every visible project button of the page and time until it shows its pending state (drawn in the browser)
CLICK_AND_TIME = """async (id) => { const b = document.getElementById(id); const t0 = performance.now(); b.click();
  while (!b.classList.contains("bv-pending") && performance.now() - t0 < 2000)
    await new Promise(r => requestAnimationFrame(r));
  return b.classList.contains("bv-pending") ? performance.now() - t0 : null; }"""


@needs_chromium
@pytest.mark.parametrize("width", WIDTHS)
def test_share_links_open_their_tab_at_every_width(width, app_url, browser):
    from playwright.sync_api import expect

    with opened_page(browser, width, 900) as page:
        for spec in TABS:
            page.goto(f"{app_url}?tab={spec.key}", wait_until="domcontentloaded")
            # the tab's own header (what the variant changed) is what shows when the tab is open
            summary = re.split(r"[(:,`*]", spec.summary)[0][:40].strip()
            expect(page.get_by_text(summary, exact=False).filter(visible=True).first).to_be_visible(timeout=30_000)


@needs_chromium
@pytest.mark.parametrize("action", ACTIONS, ids=lambda a: a.key)
def test_every_button_shows_a_pending_state_at_once(action, app_url, browser, tiny_models):  # noqa: F811
    with opened_page(browser, 1400, 1000) as page:
        open_tab(page, app_url, next(t.label for t in TABS if t.key == action.key), action.subtab)
        page.wait_for_timeout(500)
        ids = page.evaluate("""() => [...document.querySelectorAll('button[id^="bv-button-"]')]
                                      .filter(b => b.offsetParent !== null).map(b => b.id)""")
        if action.button is not None:
            assert ids, f"{action.key}: no project button visible"
        for button_id in ids:
            ms = page.evaluate(CLICK_AND_TIME, button_id)
            label = page.evaluate("(id) => document.getElementById(id).textContent", button_id)
            assert ms is not None and ms <= FEEDBACK_MS, f"{action.key} / {label!r}: no pending state ({ms} ms)"
            # cleared when the request is done (an error line or the result)
            page.wait_for_function("(id) => !document.getElementById(id).classList.contains('bv-pending')",
                                   arg=button_id, timeout=120_000)


@needs_chromium
def test_no_plot_title_sits_under_a_component_label(app_url, browser):
    """ALBERT's parameter chart: its title (in the figure's margin) overlaps no visible label of the page."""
    with opened_page(browser, 390, 900) as page:
        open_tab(page, app_url, "ALBERT", "Parameter explorer")
        page.get_by_role("button", name="Count parameters", exact=True).click()
        page.wait_for_selector(".js-plotly-plot .gtitle", timeout=60_000)
        overlaps = page.evaluate("""() => {
          const boxes = [...document.querySelectorAll('.js-plotly-plot .gtitle')].map(t => t.getBoundingClientRect());
          const labels = [...document.querySelectorAll('label[data-testid="block-label"]')]
            .filter(l => l.offsetParent !== null).map(l => l.getBoundingClientRect());
          const hit = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
          return boxes.filter(t => labels.some(l => hit(t, l))).length; }""")
        assert overlaps == 0
