"""Share links: the Leaderboard's filters are read from the page's URL and written back to it when they change."""

from __future__ import annotations

import json
import shutil
import subprocess
from urllib.parse import parse_qs, urlsplit

import pytest

from evaluation import leaderboard as lb

VIEWS = [
    ("minilm", ["stsb", "sst2"], ["Sentence-BERT"], ["measured"], 0.0, 200.0),
    ("", [], [], ["measured", "paper"], 10.0, lb.MAX_PARAMS),
    ("bert", ["rte"], [], ["paper"], 0.5, 110.0),
    ("", [], [], list(lb.SOURCES), 0.0, lb.MAX_PARAMS),  # the default view: no parameters at all
]


@pytest.mark.parametrize("view", VIEWS)
def test_filters_round_trip_through_the_query(view):
    query = lb.share_query(*view)
    assert set(query) <= set(lb.QUERY_KEYS)
    assert lb.filters_from_query(query) == view


def test_defaults_are_left_out_and_other_parameters_are_kept():
    assert lb.share_query(*VIEWS[3]) == {}
    assert lb.share_query("  ", None, None, [], None, None) == {}
    url = lb.share_url("http://host/app/?tab=leaderboard&task=old&q=x#top", "", ["stsb"], [], ["paper"], 0, 200)
    assert url == "http://host/app/?tab=leaderboard&task=stsb&source=paper&max_params=200#top"
    assert lb.share_url("http://host/?tab=leaderboard&task=stsb", *VIEWS[3]) == "http://host/?tab=leaderboard"


def _run_js(current: str, args: list) -> str:
    """The page's snippet run by node against a stub window: the URL it writes with history.replaceState."""
    script = f"""
    const written = [];
    globalThis.window = {{ location: {{ href: {json.dumps(current)} }},
                           history: {{ state: null, replaceState: (s, t, u) => written.push(u) }} }};
    const fn = eval({json.dumps(lb.SHARE_JS)});
    const out = fn(...{json.dumps(args)});
    console.log(JSON.stringify({{ written, out }}));
    """
    done = subprocess.run(["node", "-e", script], capture_output=True, text=True, timeout=60, check=True)
    result = json.loads(done.stdout)
    assert result["out"] == [] and len(result["written"]) == 1
    return result["written"][0]


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
@pytest.mark.parametrize("view", VIEWS + [("  ", None, None, [], None, None)])
def test_the_page_snippet_writes_what_share_url_computes(view):
    current = "http://host/app/?tab=leaderboard&task=old&other=1#frag"
    written = urlsplit(_run_js(current, list(view)))
    expected = urlsplit(lb.share_url(current, *view))
    assert written.path == expected.path == "/app/" and written.fragment == "frag"
    assert parse_qs(written.query) == parse_qs(expected.query)
    assert parse_qs(written.query)["tab"] == ["leaderboard"] and parse_qs(written.query)["other"] == ["1"]


def test_the_tab_writes_the_url_when_a_filter_changes_and_reads_it_on_load(tmp_path, monkeypatch):
    import gradio as gr

    from bertvariants.ui import leaderboard as ui

    monkeypatch.setenv("BERTVARIANTS_RESULTS_DIR", str(tmp_path))
    with gr.Blocks() as demo:
        with gr.Tab("Leaderboard") as tab:
            ui.build(None, tab)
    writers = [f for f in demo.fns.values() if f.fn is None and f.js and "history.replaceState" in f.js]
    assert len(writers) == 1 and writers[0].js == lb.SHARE_JS
    labels = [c.label for c in writers[0].inputs]
    assert labels == ["Search (model, variant, task, citation)", "Task", "Variant", "Source", "Min size (M params)",
                      "Max size (M params)"]
    assert len(writers[0].targets) == 6  # every filter's change event
    readers = [f for f in demo.fns.values() if f.fn is ui.from_query]
    assert len(readers) == 1 and [c.label for c in readers[0].outputs] == labels

    class Request:
        query_params = lb.share_query(*VIEWS[0])

    assert ui.from_query(Request()) == VIEWS[0]
