"""The Leaderboard's first screen answers "which variant is best at what" (issue 23): one matrix of tasks × variant
families with tie-aware ranks coloured by rank, one task in detail on demand, filter defaults a reader understands,
every run name explained from its own result file, one hue per training run; and two phone fixes: ELECTRA's main
sub-tab in view at 390 px, VideoBERT's storyboard captions whole at 390 px.

The browser tests (Debian Chromium) save screenshots in ``artifacts/screenshots/leaderboard-first-screen/``.
"""

from __future__ import annotations

import json
import re

import pandas as pd

from evaluation import dashboard, results, run_notes, summary
from evaluation import leaderboard as lb
from evaluation.record import Result

from .conftest import ARTIFACTS, needs_chromium, opened_page

SHOTS = ARTIFACTS / "screenshots" / "leaderboard-first-screen"
LAPTOP = {"width": 1400, "height": 900}
PHONE = {"width": 390, "height": 844}
WAIT_MS = 180_000  # the first VideoBERT click loads its image CNN on a shared 2-core box


def _board(rows) -> pd.DataFrame:
    cols = ("model", "variant", "task", "split", "source", "primary_metric", "score", "ci95_low", "ci95_high",
            "higher_is_better")
    out = pd.DataFrame([dict(zip(cols, r)) for r in rows])
    return out.assign(file="", predictions_file=None)


# ------------------------------------------------------------------------------------------------ the matrix, as data
def test_matrix_keeps_each_familys_best_row_and_ranks_the_families_tie_aware():
    board = _board([
        ("bert-a", "BERT", "sst2", "dev", "measured", "accuracy", 90.0, 88.0, 92.0, True),
        ("bert-b", "BERT", "sst2", "dev", "measured", "accuracy", 80.0, 78.0, 82.0, True),  # not BERT's best
        ("albert", "ALBERT", "sst2", "dev", "measured", "accuracy", 89.0, 87.5, 90.5, True),  # CIs overlap: tie
        ("roberta", "RoBERTa", "sst2", "dev", "measured", "accuracy", 70.0, 68.0, 72.0, True),
        ("mlm-a", "RoBERTa", "wikipedia-mlm", "heldout", "measured", "heldout_mlm_loss", 4.0, 3.9, 4.1, False),
        ("mlm-b", "ELECTRA", "wikipedia-mlm", "heldout", "measured", "heldout_mlm_loss", 5.0, 4.9, 5.1, False),
    ])
    m = summary.summary_matrix(board)
    cells = m.cells
    assert cells[("BERT", "sst2")].model == "bert-a" and cells[("BERT", "sst2")].rank == 1
    assert cells[("ALBERT", "sst2")].rank == 1 and "95% CIs overlap" in cells[("ALBERT", "sst2")].note
    assert cells[("RoBERTa", "sst2")].rank == 3 and cells[("RoBERTa", "sst2")].of == 3  # competition ranks
    assert cells[("RoBERTa", "wikipedia-mlm")].rank == 1 and cells[("ELECTRA", "wikipedia-mlm")].rank == 2  # ↓
    assert m.tasks == ["sst2", "wikipedia-mlm"]  # the benchmark table's order
    assert m.families == ["ALBERT", "BERT", "RoBERTa", "ELECTRA"]  # most first ranks first, then by name
    page = summary.matrix_html(m, {("bert-a", "sst2"): "BERT trained here (recipe glue)"})
    assert page.count('data-rank="1"') == 3 and 'data-rank="3"' in page and "wikipedia-<wbr>mlm&nbsp;↓" in page
    assert "bert-a (measured here) with 90" in page and "BERT trained here (recipe glue)" in page  # the tooltip
    assert summary.RANK_COLORS[0][0] in page and summary.RANK_COLORS[2][0] in page  # coloured by rank
    assert "No scored rows" in summary.matrix_html(summary.summary_matrix(board.iloc[0:0]))


def test_scores_read_easily_and_the_detail_starts_on_a_task_with_rows():
    assert [summary.format_score(v) for v in (96.94, 4.0652, 1234.5, float("nan"))] == ["96.9", "4.07", "1,234.5",
                                                                                       "–"]
    board = _board([("a", "BERT", "rte", "dev", "paper", "accuracy", 66.0, None, None, True)] * 2
                   + [("b", "BERT", "cola", "dev", "paper", "mcc", 50.0, None, None, True)])
    assert summary.default_task(board) == "rte" and summary.default_task(lb.board()) == "sst2"
    assert summary.task_label("rte", board) == "RTE (rte) · 2 rows"
    assert len(summary.task_label("mtsamples-subset", board).split(" (")[0]) <= 32  # a phone's dropdown


# ------------------------------------------------------------------------------------------------ run names explained
def test_a_run_is_explained_from_its_own_record():
    record = {"task": "rte", "model": "glue-rte", "split": "dev", "variant": "BERT",
              "details": {"method": "fine-tuned classification head"},
              "training": {"recipe": "glue", "steps": 200, "config": {"batch_size": 32, "lr": 5e-5, "lora_rank": 0,
                                                                      "base_model": "models/cmp-mlm"}}}
    note = run_notes.describe_record(Result.from_dict(record), seeds=["42", "43", "44"])
    assert note == ("BERT trained here (recipe glue): 200 steps × batch 32, lr 5e-05, all weights, from "
                    "models/cmp-mlm; mean of 3 seeds (42, 43, 44); scored by fine-tuned classification head")
    probe = {"task": "sst2", "model": "minilm", "split": "dev", "variant": "Sentence-BERT",
             "details": {"method": "x" * 300}}
    shipped = run_notes.describe_record(Result.from_dict(probe))
    assert shipped.startswith("Sentence-BERT checkpoint evaluated as is") and len(shipped) < 200
    assert run_notes.explain_row({"source": "paper", "citation": "Devlin et al. 2019"}) == \
        "published number (Devlin et al. 2019)"


def test_every_run_name_of_the_real_board_has_an_explanation_from_its_record():
    board = lb.board()
    notes = run_notes.run_notes(board)
    assert set(notes) == set(zip(board["model"].astype(str), board["task"].astype(str)))
    measured = {k: v for k, v in notes.items() if "published number" not in v}
    assert measured and not [k for k, v in measured.items() if "missing" in v]
    assert "recipe electra" in notes[("cmp-rtd", "wikipedia-rtd")]  # the example, from its training block
    seeded = board[pd.to_numeric(board["seeds"], errors="coerce") > 1]
    assert all("mean of" in notes[(r.model, r.task)] for r in seeded.itertuples())
    runs = results.training_runs()
    legend = run_notes.training_notes(list(runs["run"]))
    assert all(f"**{r}** — " in legend and "not in the results" not in legend for r in runs["run"])


# ------------------------------------------------------------------------------------------------ training colours
def test_training_curves_give_each_run_its_own_hue():
    names = ("mlm-dynamic", "mlm-static", "cmp-mlm")  # one model family: the board gave them one hue's shades
    rows = [{"run": run, "model": run, "file": f"{run}.json", "step": s, "seconds": s, "metric": "loss",
             "value": 10.0 / s + k} for k, run in enumerate(names) for s in (1, 2, 3)]
    fig = dashboard.training_curves_figure(pd.DataFrame(rows), metric="loss", smooth=0.5)
    lines = [t for t in fig.data if t.mode == "lines" and t.showlegend is not False]
    assert len(lines) == 3 and len({t.line.color for t in lines}) == 3
    raw = {t.legendgroup: t.line.color for t in fig.data if t.showlegend is False}
    assert all(raw[t.legendgroup] == t.line.color for t in lines)  # the faint raw curve in its run's hue


# ------------------------------------------------------------------------------------------------ filter defaults
def test_no_filter_default_reads_a_million(tmp_path, monkeypatch):
    import gradio as gr

    from bertvariants.ui import leaderboard as ui

    monkeypatch.setenv("BERTVARIANTS_RESULTS_DIR", str(tmp_path))
    with gr.Blocks() as demo:
        with gr.Tab("Leaderboard") as tab:
            ui.build(None, tab)
    numbers = {c.label: c.value for c in demo.blocks.values() if isinstance(c, gr.Number)}
    assert numbers["Max size (M params)"] is None and numbers["Min size (M params)"] == 0
    sort = next(c for c in demo.blocks.values() if isinstance(c, gr.Dropdown) and str(c.label).startswith("Sort by"))
    assert sort.value == lb.RANK_SORT  # best first in every task's own direction

    class Request:
        query_params: dict = {}

    assert ui.from_query(Request())[5] is None  # a link without a size limit leaves the box empty
    Request.query_params = {"max_params": "200"}
    assert ui.from_query(Request())[5] == 200.0


# ------------------------------------------------------------------------------------------------ in the browser
def _open(page, app_url: str, key: str) -> None:
    page.goto(f"{app_url}?tab={key}", wait_until="domcontentloaded")
    page.wait_for_function("() => [...document.querySelectorAll('button')].some(e => e.offsetParent && "
                           "/^bv-button-/.test(e.id || ''))", timeout=60_000)


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), animations="disabled")


def _leaderboard(page, app_url: str) -> None:
    page.goto(f"{app_url}?tab=leaderboard", wait_until="domcontentloaded")
    page.wait_for_selector("#bv-matrix table", timeout=120_000)
    page.wait_for_function("() => document.querySelectorAll('#bv-run-notes li').length > 0", timeout=120_000)


DETAIL = """() => ({
  tasks: [...document.querySelectorAll('.table-wrap')].filter(t => t.offsetParent)
           .map(t => { const heads = [...t.querySelectorAll('thead th')]
                                     .map(h => h.textContent.replace('⋮', '').trim());
                       const i = heads.indexOf('task'), j = heads.indexOf('model');
                       return [...t.querySelectorAll('tr')].filter(r => r.querySelector('td'))
                         .map(r => [r.children[i]?.textContent.trim(), r.children[j]?.textContent.trim()]); })[0],
  notes: [...document.querySelectorAll('#bv-run-notes li strong')].map(s => s.textContent.trim()),
  plots: [...document.querySelectorAll('.js-plotly-plot')].map(p => JSON.stringify(p.layout?.meta ?? {})) })"""


@needs_chromium
def test_the_matrix_is_the_first_screen_and_the_selector_switches_the_detail(app_url, browser):
    with opened_page(browser, LAPTOP["width"], LAPTOP["height"]) as page:
        _leaderboard(page, app_url)
        box = page.locator("#bv-matrix table").bounding_box()
        _shot(page, "leaderboard-1400")
        assert box["y"] >= 0 and box["y"] + box["height"] <= LAPTOP["height"], f"matrix at {box}: below the fold"
        assert box["width"] <= LAPTOP["width"] - 100  # every variant in view, no sideways scrolling
        cells = page.locator("#bv-matrix td[data-rank]")
        assert cells.count() >= 20 and all(t for t in cells.evaluate_all("cs => cs.map(c => c.title)"))
        values = page.evaluate("() => [...document.querySelectorAll('input')].map(i => i.value + ' ' + i.placeholder)")
        assert not [v for v in values if re.search(r"1000000|1e\+?6", v)], values
        first = page.evaluate(DETAIL)
        assert {t for t, _ in first["tasks"]} == {"sst2"}
        page.locator("#bv-detail-task input").click()
        page.get_by_role("option", name=re.compile(r"^RTE \(rte\)")).click()
        page.wait_for_function("() => [...document.querySelectorAll('.table-wrap tbody tr')]"
                               ".some(r => r.offsetParent && r.textContent.includes('rte'))", timeout=60_000)
        page.wait_for_timeout(1500)
        shown = page.evaluate(DETAIL)
        assert {t for t, _ in shown["tasks"]} == {"rte"}, shown["tasks"]
        # every run name in the detail has an explanation, and the task's bars are the only ones drawn
        assert {m for _, m in shown["tasks"]} <= set(shown["notes"]), (shown["tasks"], shown["notes"])
        assert any(json.loads(p).get("tasks") == ["rte"] for p in shown["plots"]), shown["plots"]


@needs_chromium
def test_training_runs_are_explained_and_drawn_in_distinct_hues(app_url, browser):
    with opened_page(browser, LAPTOP["width"], LAPTOP["height"]) as page:
        _leaderboard(page, app_url)
        page.wait_for_function("() => document.querySelectorAll('#bv-training-notes li').length >= 2", timeout=120_000)
        found = page.evaluate("""() => {
          const plot = [...document.querySelectorAll('.js-plotly-plot')].find(p => p.layout?.meta?.runs);
          return { runs: plot.layout.meta.runs,
                   colours: plot.data.filter(t => t.mode === 'lines' && t.showlegend !== false).map(t => t.line.color),
                   notes: [...document.querySelectorAll('#bv-training-notes li strong')]
                            .map(s => s.textContent) }; }""")
        assert len(found["runs"]) >= 2 and len(set(found["colours"])) == len(found["colours"]) == len(found["runs"])
        assert set(found["runs"]) <= set(found["notes"])


@needs_chromium
def test_the_matrix_scrolls_visibly_on_a_phone(app_url, browser):
    with opened_page(browser, PHONE["width"], PHONE["height"]) as page:
        _leaderboard(page, app_url)
        _shot(page, "leaderboard-390")
        frame = page.evaluate("""() => { const f = document.querySelector('#bv-matrix .bv-matrix');
          const hint = document.querySelector('#bv-matrix .bv-matrix-scroll');
          return { scroll: f.scrollWidth, client: f.clientWidth, overflow: getComputedStyle(f).overflowX,
                   hint: hint.offsetParent !== null, right: f.getBoundingClientRect().right }; }""")
        assert frame["right"] <= PHONE["width"]  # the page itself never scrolls sideways
        assert frame["scroll"] <= frame["client"] or (frame["overflow"] == "auto" and frame["hint"]), frame


@needs_chromium
def test_electra_main_subtab_is_in_view_on_a_phone(app_url, browser):
    with opened_page(browser, PHONE["width"], PHONE["height"]) as page:
        _open(page, app_url, "electra")
        tab = page.get_by_role("tab", name="Generator + discriminator", exact=True).filter(visible=True)
        assert tab.count() == 1 and tab.first.get_attribute("aria-selected") == "true"
        box = tab.first.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
        main = page.get_by_role("button", name="Generator replaces → discriminator detects")
        assert main.filter(visible=True).count()
        _shot(page, "electra-390")


@needs_chromium
def test_videobert_captions_are_whole_on_a_phone(app_url, browser):
    with opened_page(browser, PHONE["width"], PHONE["height"]) as page:
        _open(page, app_url, "video_bert")
        page.get_by_role("button", name="Tokenize the video", exact=True).filter(visible=True).first.click()
        page.wait_for_selector(".bv-storyboard .caption-label", timeout=WAIT_MS)
        page.wait_for_timeout(1000)
        labels = page.evaluate("""() => [...document.querySelectorAll('.bv-storyboard .caption-label')].map(l => ({
            text: l.textContent.trim(), scroll: l.scrollWidth, client: l.clientWidth,
            fits: l.getBoundingClientRect().right <= l.parentElement.getBoundingClientRect().right + 1 }))""")
        page.locator(".bv-storyboard").scroll_into_view_if_needed()
        _shot(page, "video_bert-390")
        assert labels and all(re.fullmatch(r"\[V\d+\] [\d.]+–[\d.]+ s", x["text"]) for x in labels), labels
        assert all(x["scroll"] <= x["client"] + 1 and x["fits"] for x in labels), labels
        clipped = page.evaluate("() => { const w = document.querySelector('.bv-storyboard .grid-wrap');"
                                " return w.scrollHeight - w.clientHeight; }")
        assert clipped <= 2  # the storyboard grows with its rows: no row hidden behind an inner scroll
