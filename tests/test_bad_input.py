"""The bad-input matrix: every public endpoint × every kind of hostile input, through the real app.

The matrix is data. :data:`TEXT_INPUTS`, :data:`NUMBER_INPUTS`, :data:`CHOICE_INPUTS` and :data:`FILE_INPUTS`
are sent to every parameter of that component type of every endpoint the app exposes (discovered from the
API, so a new tab is covered the moment it lands), one parameter at a time with the others at their
defaults. Each outcome must be either a normal answer or a readable message (``gr.Error`` /
``ValidationError``: no traceback, no "Internal error", not empty), and the endpoint must answer its
default request right after. :data:`EXPECT` pins the specific message for the rows that matter
(endpoint, parameter, input → regex); :data:`MUST_REJECT` lists inputs that must never be accepted.

Models: every task without a packaged model is pointed at a tiny random checkpoint of its kind
(``BERTVARIANTS_MODEL_<TASK>``), so the matrix tests input handling, not which checkpoints were trained.
The full outcome table is written to ``artifacts/bad_input_matrix.md``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import ARTIFACTS, REPO, save_tiny

CALL_TIMEOUT = 120  # seconds; a request that takes longer is a defect (the input should have been limited)

# ----------------------------------------------------------------------------------------------- the inputs
_SENT = "The quick brown fox jumps over the lazy dog. "
TEXT_INPUTS: dict[str, str] = {
    "empty": "",
    "whitespace": " \t \n  \u00a0 ",
    "1 MB text": (_SENT * (1_000_000 // len(_SENT) + 1))[:1_000_000],
    "10,000 sentences": "\n".join(f"Sentence number {i} is here." for i in range(10_000)),
    "emoji/CJK/RTL": "I love this 😀👍🏽🧬 — 我喜欢自然语言处理 — أحب معالجة اللغة — אני אוהב את זה",
    "control chars": "a\x00b\x01c\x07d\x1b[31me\u202ef\ufeffg\x7fh\r\ni\x0bj",
}
# sent as raw JSON tokens (gradio_client refuses NaN): "NaN" and "Infinity" are what a hostile client can post
NUMBER_INPUTS: dict[str, str] = {"NaN": "NaN", "Infinity": "Infinity", "-1e12": "-1e12", "1e12": "1e12"}
CHOICE_INPUTS: dict[str, str] = {"unknown choice": "no-such-option-☃"}
FILE_INPUTS = ("wrong file type", "zero-length .mp4", "truncated .mp4", "binary renamed .mp4")

TEXT_COMPONENTS = {"Textbox", "Code"}
NUMBER_COMPONENTS = {"Number", "Slider"}
CHOICE_COMPONENTS = {"Radio", "Dropdown"}
FILE_COMPONENTS = {"Video", "File", "Uploadbutton"}


@dataclass(frozen=True)
class Expect:
    """A pinned row of the matrix: this input on this parameter gives a message matching ``message``."""

    endpoint: str
    param: str  # parameter_name as the API lists it
    input: str  # a key of one of the *_INPUTS tables
    message: str  # regex searched in the message


EXPECT: tuple[Expect, ...] = (
    # Sentence-BERT
    Expect("/similarity", "first", "empty", r"Sentence A is empty"),
    Expect("/similarity", "second", "whitespace", r"Sentence B is empty"),
    Expect("/similarity", "first", "1 MB text", r"Sentence A has 1,000,000 characters; the limit is 5,000"),
    Expect("/similarity", "second", "10,000 sentences", r"Sentence B has [\d,]+ characters; the limit is 5,000"),
    Expect("/pair_view", "pooling", "unknown choice", r"not in the list of choices"),
    Expect("/heatmap", "sentences", "empty", r"Sentences is empty"),
    Expect("/heatmap", "sentences", "10,000 sentences", r"limit is|at most"),
    Expect("/search", "query", "empty", r"Query is empty"),
    Expect("/search", "top_k", "NaN", r"top-k must be a finite number"),
    Expect("/search", "top_k", "Infinity", r"greater than maximum value 20"),
    Expect("/search", "top_k", "-1e12", r"less than minimum value 1"),
    Expect("/search", "corpus", "1 MB text", r"limit is"),
    Expect("/cluster", "k", "NaN", r"number of clusters must be a finite number"),
    Expect("/cluster", "sentences", "10,000 sentences", r"limit is|at most"),
    # the other tabs: empty main input, a 1 MB input, NaN through the API
    Expect("/albert_features", "sentence", "empty", r"Sentence is empty"),
    Expect("/albert_fill_mask", "sentence", "1 MB text", r"limit is"),
    Expect("/roberta_fill_mask", "sentences", "empty", r"Sentence is empty"),
    Expect("/roberta_fill_mask", "top_ks", "NaN", r"top-k must be a finite number"),
    Expect("/roberta_fill_mask", "top_ks", "1e12", r"top-k must be a whole number between 1 and 20"),
    Expect("/roberta_fill_mask", "sentences", "emoji/CJK/RTL", r"no mask token"),
    Expect("/electra_replace", "sentence", "whitespace", r"is empty"),
    Expect("/electra_detect", "sentence", "1 MB text", r"limit is"),
    Expect("/spanbert_qa", "context", "empty", r"the question has no context"),
    Expect("/spanbert_qa", "question", "empty", r"[Qq]uestion is empty"),
    Expect("/spanbert_qa", "context", "1 MB text", r"limit is"),
    Expect("/compare_sentiment", "sentence", "empty", r"is empty"),
    Expect("/distillation_loss", "alpha", "NaN", r"finite number"),
    Expect("/clinical_score", "note", "empty", r"is empty"),
    Expect("/clinical_score", "note", "1 MB text", r"limit is"),
    Expect("/video_tokenize", "upload", "zero-length .mp4", r"is empty \(0 bytes\)"),
    Expect("/video_tokenize", "upload", "binary renamed .mp4", r"not a video"),
    Expect("/video_tokenize", "upload", "wrong file type", r"not a video \(its content is text\)"),
    Expect("/video_tokenize", "upload", "truncated .mp4", r"truncated|incomplete|corrupt|could not"),
    Expect("/summarize", "doc", "empty", r"is empty"),
    Expect("/summarize", "doc", "1 MB text", r"limit is"),
    Expect("/bart_noise", "doc", "empty", r"is empty"),
    Expect("/leaderboard", "min_params", "NaN", r"finite number"),
    # the Interpret tab
    Expect("/attention", "sentence", "empty", r"is empty"),
    Expect("/attention", "layer", "NaN", r"finite number"),
    Expect("/saliency", "sentence", "1 MB text", r"limit is"),
    Expect("/saliency", "steps", "NaN", r"finite number"),
    Expect("/saliency", "contrast", "unknown choice", r"unknown contrast class 'no-such-option-☃'"),
    Expect("/attention", "view", "unknown choice", r"not in the list of choices"),
    Expect("/faithfulness", "sentence", "empty", r"Sentence is empty"),
    Expect("/faithfulness", "sentence", "1 MB text", r"limit is 1,000"),
    Expect("/faithfulness", "steps", "NaN", r"finite number"),
    Expect("/faithfulness", "baseline", "unknown choice", r"not in the list of choices"),
    Expect("/mlm_lens", "sentence", "emoji/CJK/RTL", r"the text has no mask token"),
    Expect("/mlm_lens", "sentence", "10,000 sentences", r"limit is 1,000"),
    Expect("/mlm_lens", "answer", "1 MB text", r"Answer has 1,000,000 characters; the limit is 100"),
    Expect("/mlm_lens", "answer", "emoji/CJK/RTL", r"tokens for this model"),
    Expect("/mlm_lens", "top_k", "NaN", r"top-k must be a finite number"),
    Expect("/summary_attribution", "document", "empty", r"Document is empty"),
    Expect("/summary_attribution", "document", "1 MB text", r"Document has 1,000,000 characters; the limit is 20,000"),
    Expect("/summary_attribution", "new_tokens", "NaN", r"Generated tokens must be a finite number"),
    Expect("/similarity_attribution", "a", "empty", r"Sentence A is empty"),
    Expect("/similarity_attribution", "b", "1 MB text", r"Sentence B has 1,000,000 characters"),
    Expect("/similarity_attribution", "a", "emoji/CJK/RTL", r"the sentence has \d+ tokens; the limit is 32"),
    Expect("/similarity_attribution", "steps", "Infinity", r"finite number|greater than maximum"),
    # the compare views
    Expect("/compare_fill_mask", "sentence", "empty", r"Sentence is empty"),
    Expect("/compare_fill_mask", "sentence", "emoji/CJK/RTL", r"no mask token"),
    Expect("/compare_fill_mask", "top_k", "NaN", r"top-k must be a finite number"),
    Expect("/compare_summarization", "doc", "empty", r"is empty"),
    Expect("/compare_summarization", "doc", "1 MB text", r"limit is"),
)

# Inputs no endpoint may accept silently (they must come back as a message), except where ACCEPTED says
# why accepting it is the design.
MUST_REJECT = ("empty", "whitespace", "1 MB text", "NaN", "Infinity", "unknown choice") + FILE_INPUTS
_OPTIONAL = ("empty", "whitespace")
ACCEPTED: dict[tuple[str, str, str], str] = {
    **{("/clinical_terms", "extra", i): "extra terms to add to the map are optional" for i in _OPTIONAL},
    **{("/distillation_explore", "labels", i): "class names are optional" for i in _OPTIONAL},
    **{("/leaderboard", "search", i): "no search text = every row" for i in _OPTIONAL},
    **{("/mlm_lens", "answer", i): "no answer to follow: the lens shows the top-k only" for i in _OPTIONAL},
    ("/leaderboard", "variants", "unknown choice"): "free-form filter (allow_custom_value): no row matches",
}


# ----------------------------------------------------------------------------------------------- fixtures
# How the matrix gets a tiny model of each manifest kind (manifest.KINDS): "bert" = conftest's tiny_checkpoint
# (a tiny BertModel / BertFor<head>), "bart" / "electra" / "llama" = the tiny models below.
TINY_MAKERS: dict[str, str] = {
    "sentence-embedding": "bert", "feature-extraction": "bert", "masked-lm": "bert",
    "sequence-classification": "bert", "question-answering": "bert", "seq2seq": "bart",
    "electra-discriminator": "electra", "causal-lm": "llama",
}


def test_every_model_kind_has_a_tiny_maker():
    from bertvariants.serving.manifest import KINDS

    missing = sorted(set(KINDS) - set(TINY_MAKERS))
    assert not missing, f"manifest.KINDS has {missing}: add a tiny-model maker to TINY_MAKERS in tests/test_bad_input.py"
    assert not set(TINY_MAKERS) - set(KINDS), "TINY_MAKERS names kinds manifest.KINDS no longer has"


@pytest.fixture(scope="module")
def tiny_models(tiny_checkpoint, tiny_tokenizer_dir, tiny_bert_config, tmp_path_factory):
    """Point every task that the packaged MiniLM cannot serve at a tiny checkpoint of its kind."""
    import transformers as tf

    from bertvariants.serving.manifest import default_manifest

    def bart(kind):
        cfg = tf.BartConfig(vocab_size=30522, d_model=36, encoder_layers=1, decoder_layers=1, encoder_attention_heads=3,
                            decoder_attention_heads=3, encoder_ffn_dim=37, decoder_ffn_dim=37, max_position_embeddings=128,
                            pad_token_id=0, bos_token_id=101, eos_token_id=102, decoder_start_token_id=102,
                            forced_eos_token_id=102)
        return save_tiny(tf.BartForConditionalGeneration, cfg, tiny_tokenizer_dir, tmp_path_factory.mktemp("bart"))

    def electra(kind):
        cfg = tf.ElectraConfig(vocab_size=30522, embedding_size=36, hidden_size=36, num_hidden_layers=2,
                               num_attention_heads=3, intermediate_size=37, max_position_embeddings=128)
        return save_tiny(tf.ElectraForPreTraining, cfg, tiny_tokenizer_dir, tmp_path_factory.mktemp("electra"))

    def llama(kind):  # a decoder-only instruction model (the BART tab's offline stand-in is one)
        cfg = tf.LlamaConfig(vocab_size=30522, hidden_size=36, intermediate_size=37, num_hidden_layers=1,
                             num_attention_heads=3, num_key_value_heads=1, max_position_embeddings=128,
                             pad_token_id=0, bos_token_id=101, eos_token_id=102)
        out = tmp_path_factory.mktemp("llama")
        tok = tf.AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
        tok.chat_template = "{% for m in messages %}{{ m['content'] }} [SEP] {% endfor %}"
        tok.save_pretrained(out)  # kept: save_tiny copies only the tokenizer files not already there
        return save_tiny(tf.LlamaForCausalLM, cfg, tiny_tokenizer_dir, out)

    makers = {"bert": tiny_checkpoint, "bart": bart, "electra": electra, "llama": llama}
    saved = dict(os.environ)
    for task in default_manifest().tasks.values():
        if task.offline == "packaged":
            continue
        assert task.kind in TINY_MAKERS, f"task {task.key}: add kind {task.kind!r} to TINY_MAKERS"
        os.environ[task.env_var] = str(makers[TINY_MAKERS[task.kind]](task.kind))
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="module")
def api(client, tiny_models) -> dict:
    """Every public endpoint and its parameters, as the app's API describes them."""
    return client.view_api(print_info=False, return_format="dict")["named_endpoints"]


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> dict[str, Path]:
    import imageio_ffmpeg

    d = tmp_path_factory.mktemp("badfiles")
    good = d / "good.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc=size=32x32:rate=4", "-t", "1", str(good)], check=True, timeout=60)
    files = {
        "wrong file type": d / "notes.txt",
        "zero-length .mp4": d / "empty.mp4",
        "truncated .mp4": d / "truncated.mp4",
        "binary renamed .mp4": d / "binary.mp4",
    }
    files["wrong file type"].write_text("This is a plain text file, not a video.\n" * 20)
    files["zero-length .mp4"].write_bytes(b"")
    files["truncated .mp4"].write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    files["binary renamed .mp4"].write_bytes(bytes(range(256)) * 64)
    files["good"] = good
    return files


# ----------------------------------------------------------------------------------------------- calling
@dataclass
class Outcome:
    kind: str  # "ok" | "message" | "defect"
    text: str
    ms: float = 0.0  # round trip, for the report


TRACEBACK_MARKERS = ("Traceback (most recent call last)", 'File "/', "Internal error (")


def judge_message(message: str) -> Outcome:
    msg = (message or "").strip()
    if not msg or msg == "None" or msg == "Error":
        return Outcome("defect", f"empty/unhelpful message {message!r}")
    if any(m in msg for m in TRACEBACK_MARKERS):
        return Outcome("defect", f"traceback or internal error leaked: {msg[:300]!r}")
    if len(msg) > 800:
        return Outcome("defect", f"message too long to read ({len(msg)} chars): {msg[:200]!r}")
    return Outcome("message", msg)


def call(client, endpoint: str, kwargs: dict) -> Outcome:
    """One request through gradio_client; errors come back as AppError / ValidationError."""
    from gradio_client.exceptions import AppError, ValidationError

    import concurrent.futures

    try:
        try:
            result = client.submit(api_name=endpoint, **kwargs).result(timeout=CALL_TIMEOUT)
        except concurrent.futures.CancelledError:
            # gradio_client cancels its own job when its event stream drops (seen only on a CPU loaded by other
            # processes, on a 1 MB upload); the server's answer is what is judged, so ask once more
            result = client.submit(api_name=endpoint, **kwargs).result(timeout=CALL_TIMEOUT)
    except (AppError, ValidationError) as exc:
        return judge_message(getattr(exc, "message", None) or str(exc))
    except TimeoutError:
        return Outcome("defect", f"no answer within {CALL_TIMEOUT} s")
    except Exception as exc:  # noqa: BLE001 - anything else (HTTP 400/500, protocol error) is a defect
        return Outcome("defect", f"{type(exc).__name__}: {str(exc)[:300]}")
    return Outcome("ok", str(result)[:300])


def raw_call(app_url: str, endpoint: str, body: str) -> Outcome:
    """POST a hand-written JSON body (NaN / Infinity tokens) to /gradio_api/call and read the SSE answer."""
    import httpx

    name = endpoint.lstrip("/")
    r = httpx.post(f"{app_url}gradio_api/call/{name}", content=body, headers={"content-type": "application/json"},
                   timeout=CALL_TIMEOUT)
    if r.status_code == 422:  # a validator's answer: the messages of the inputs that failed
        detail = r.json().get("detail") or []
        return judge_message("; ".join(d.get("message", "") for d in detail if not d.get("is_valid", True)))
    if r.status_code != 200:
        return Outcome("defect", f"HTTP {r.status_code}: {r.text[:300]}")
    event_id = r.json()["event_id"]
    event, data = None, None
    with httpx.stream("GET", f"{app_url}gradio_api/call/{name}/{event_id}", timeout=CALL_TIMEOUT) as s:
        for line in s.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                data = line.split(":", 1)[1].strip()
                if event in ("complete", "error"):
                    break
    if event == "complete":
        return Outcome("ok", (data or "")[:300])
    if event == "error":
        try:
            payload = json.loads(data) if data and data != "null" else None
        except json.JSONDecodeError:
            payload = data
        msg = payload.get("error") if isinstance(payload, dict) else payload
        return judge_message(str(msg) if msg is not None else "")
    return Outcome("defect", f"stream ended without a result (last event {event!r})")


def file_value(component: str, path: Path):
    from gradio_client import handle_file

    return {"video": handle_file(str(path)), "subtitles": None} if component == "Video" else handle_file(str(path))


EXAMPLE_TEXT = "The chef cooked the meal in the kitchen and served it to the guests."


def example_value(p: dict):
    """The page's value for a parameter; a plain sentence for a text box the page leaves empty (one filled by
    another step, e.g. ELECTRA's detector input), None otherwise (e.g. a dropdown with no choices yet)."""
    if p["parameter_has_default"]:
        return p["parameter_default"]
    return EXAMPLE_TEXT if p["component"] in TEXT_COMPONENTS else None


def default_kwargs(params: list[dict]) -> dict:
    return {p["parameter_name"]: example_value(p) for p in params if p["component"] not in FILE_COMPONENTS}


def default_body(params: list[dict], override: tuple[int, str] | None = None) -> str:
    parts = [json.dumps(example_value(p)) for p in params]
    if override is not None:
        parts[override[0]] = override[1]
    return '{"data": [' + ", ".join(parts) + "]}"


def cases_for(params: list[dict], bad_files: dict[str, Path]):
    """(param name, input name, how to send it) for every parameter of the endpoint."""
    for i, p in enumerate(params):
        comp, name = p["component"], p["parameter_name"]
        if comp in TEXT_COMPONENTS:
            for key, value in TEXT_INPUTS.items():
                yield name, key, ("client", {name: value})
        elif comp in NUMBER_COMPONENTS:
            for key, token in NUMBER_INPUTS.items():
                yield name, key, ("raw", (i, token))
        elif comp in CHOICE_COMPONENTS:
            for key, value in CHOICE_INPUTS.items():
                yield name, key, ("client", {name: value})
        elif comp in FILE_COMPONENTS:
            for key in FILE_INPUTS:
                yield name, key, ("client", {name: file_value(comp, bad_files[key])})


def good_request_ok(client, app_url, endpoint: str, params: list[dict], bad_files) -> Outcome:
    """The endpoint still serves: its default request (a good file for file inputs) gets an answer."""
    kwargs = default_kwargs(params)
    for p in params:
        if p["component"] in FILE_COMPONENTS and not p["parameter_has_default"]:
            kwargs[p["parameter_name"]] = file_value(p["component"], bad_files["good"])
    return call(client, endpoint, kwargs)


# ----------------------------------------------------------------------------------------------- the matrix
@pytest.fixture(scope="module")
def matrix(client, app_url, api, bad_files) -> dict[tuple[str, str, str], Outcome]:
    """Run the whole matrix once; tests below judge it from different angles."""
    results: dict[tuple[str, str, str], Outcome] = {}

    def one_endpoint(endpoint: str, params: list[dict]) -> dict:
        """Its bad inputs one after another, then its default request (the endpoint still serves)."""
        out: dict[tuple[str, str, str], Outcome] = {}
        for name, key, (how, what) in cases_for(params, bad_files):
            t0 = time.perf_counter()
            if how == "client":
                o = call(client, endpoint, {**default_kwargs(params), **what})
            else:
                o = raw_call(app_url, endpoint, default_body(params, what))
            o.ms = (time.perf_counter() - t0) * 1000
            out[(endpoint, name, key)] = o
        out[(endpoint, "(default request after)", "-")] = good_request_ok(client, app_url, endpoint, params, bad_files)
        return out

    # endpoints in parallel (each has its own queue), inputs of one endpoint in order
    with ThreadPoolExecutor(4) as ex:
        for part in ex.map(lambda item: one_endpoint(item[0], item[1]["parameters"]), sorted(api.items())):
            results.update(part)
    write_report(results)
    return results


def write_report(results: dict[tuple[str, str, str], Outcome]) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    lines = ["| endpoint | parameter | input | outcome | ms | message / answer |", "|---|---|---|---|---|---|"]
    for (ep, param, key), out in sorted(results.items()):
        text = out.text.replace("|", "\\|").replace("\n", " ")[:140]
        lines.append(f"| `{ep}` | {param} | {key} | {out.kind} | {out.ms:.0f} | {text} |")
    (ARTIFACTS / "bad_input_matrix.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_matrix_covers_every_endpoint_and_input_kind(api, matrix):
    assert len(api) >= 5
    covered = defaultdict(set)
    for ep, _, key in matrix:
        covered[ep].add(key)
    for ep, info in api.items():
        comps = {p["component"] for p in info["parameters"]}
        if comps & TEXT_COMPONENTS:
            assert set(TEXT_INPUTS) <= covered[ep], ep
        if comps & NUMBER_COMPONENTS:
            assert set(NUMBER_INPUTS) <= covered[ep], ep
        if comps & FILE_COMPONENTS:
            assert set(FILE_INPUTS) <= covered[ep], ep


def test_no_traceback_no_internal_error_anywhere(matrix):
    defects = {k: o.text for k, o in matrix.items() if o.kind == "defect"}
    assert not defects, "defects:\n" + "\n".join(f"{k}: {v}" for k, v in sorted(defects.items()))


def test_every_endpoint_serves_the_next_request(matrix):
    after = {k[0]: o for k, o in matrix.items() if k[1] == "(default request after)"}
    failing = {ep: o.text for ep, o in after.items() if o.kind != "ok"}
    assert not failing, failing


def test_hostile_inputs_are_rejected_with_a_message(matrix):
    accepted = [k for k, o in matrix.items() if k[2] in MUST_REJECT and o.kind == "ok" and k not in ACCEPTED]
    stale = [k for k in ACCEPTED if k not in matrix]
    assert not accepted, f"accepted without a message: {accepted}"
    assert not stale, f"ACCEPTED names inputs the API no longer has: {stale}"


@pytest.mark.parametrize("row", EXPECT, ids=lambda r: f"{r.endpoint}:{r.param}:{r.input}")
def test_pinned_messages(matrix, row):
    out = matrix.get((row.endpoint, row.param, row.input))
    assert out is not None, f"{row.endpoint} has no parameter {row.param!r} (API changed?)"
    assert out.kind == "message" and re.search(row.message, out.text), (out.kind, out.text)


# batching: ui.guard's per-request validator and /similarity under a burst are tested in tests/test_app.py
# ----------------------------------------------------------------------------------------------- the CLI
def _cli(*args, cwd=REPO, timeout=120):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("BERTVARIANTS_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "evaluation", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def _squad_refs(path: Path) -> Path:
    data = {"version": "1.1", "data": [{"title": "t", "paragraphs": [{
        "context": "Ann Smith founded the company in 1999 in Paris.",
        "qas": [{"id": "q1", "question": "Who founded the company?", "answers": [{"text": "Ann Smith", "answer_start": 0}]},
                {"id": "q2", "question": "When?", "answers": [{"text": "1999", "answer_start": 33}]},
                {"id": "q3", "question": "Where?", "answers": [{"text": "Paris", "answer_start": 41}]}]}]}]}
    path.write_text(json.dumps(data))
    return path


CLI_CASES = {
    # name: (files to write, argv, expected one-line reason regex)
    "squad missing ids": (
        {"pred.json": json.dumps({"q1": "Ann Smith"})},
        ["score", "--metric", "squad", "--predictions", "{pred.json}", "--references", "{refs.json}"],
        r"(?i)missing.*(q2|q3|2 (of|question|id))|q2|2 .*missing"),
    "squad predictions not json": (
        {"pred.json": '{"q1": "Ann'},
        ["score", "--metric", "squad", "--predictions", "{pred.json}", "--references", "{refs.json}"],
        r"(?i)pred\.json.*(json|parse|valid)|(json|parse|valid).*pred\.json"),
    "rouge mismatched line counts": (
        {"pred.txt": "a summary\nanother one\n", "ref.txt": "a reference\nanother\nthird\n"},
        ["score", "--metric", "rouge", "--predictions", "{pred.txt}", "--references", "{ref.txt}"],
        r"(?i)2 .*3|3 .*2|mismatch|same number"),
    "rouge empty predictions": (
        {"pred.txt": "", "ref.txt": "a reference\n"},
        ["score", "--metric", "rouge", "--predictions", "{pred.txt}", "--references", "{ref.txt}"],
        r"(?i)empty|no (predictions|lines)|0 .*1|1 .*0|mismatch"),
    "run unknown task": ({}, ["run", "--task", "nope", "--model", "minilm"], r"unknown task 'nope'; one of sst2"),
    "run missing data file": ({}, ["run", "--task", "stsb", "--model", "minilm", "--data", "{nope.txt}"],
                              r"data file not found: .*nope\.txt"),
    "run limit 0": ({}, ["run", "--task", "stsb", "--model", "minilm", "--limit", "0"], r"--limit must be ≥ 1, got 0"),
    "squad references not json": (
        {"pred.json": json.dumps({"q1": "Ann Smith"}), "ref.txt": "not json at all\n"},
        ["score", "--metric", "squad", "--predictions", "{pred.json}", "--references", "{ref.txt}"],
        r"ref\.txt: not valid JSON"),
    "missing file": (
        {},
        ["score", "--metric", "rouge", "--predictions", "{nope.txt}", "--references", "{nope.txt}"],
        r"(?i)nope\.txt.*(not found|no such|does not exist|missing)|(not found|no such|does not exist).*nope\.txt"),
}


@pytest.mark.parametrize("name", sorted(CLI_CASES))
def test_cli_bad_files_exit_nonzero_with_one_line_reason(name, tmp_path):
    files, argv, reason = CLI_CASES[name]
    _squad_refs(tmp_path / "refs.json")
    for fname, content in files.items():
        (tmp_path / fname).write_text(content)
    argv = [str(tmp_path / a[1:-1]) if a.startswith("{") else a for a in argv]
    out = _cli(*argv)
    assert out.returncode != 0, out.stdout
    err = out.stderr.strip()
    assert "Traceback" not in err, err
    last = err.splitlines()[-1] if err else ""
    assert re.search(reason, last), f"stderr last line: {last!r}"
    assert len(last) < 400


def test_uploads_are_judged_by_content_not_name(client, tiny_models, bad_files, tmp_path):
    """A real video named .txt is tokenized; a text file named .mp4 is refused (see the matrix)."""
    from gradio_client import handle_file

    renamed = tmp_path / "holiday.txt"
    renamed.write_bytes(bad_files["good"].read_bytes())
    gallery, joint, md = client.predict(upload=handle_file(str(renamed)), api_name="/video_tokenize")
    assert "holiday.txt" in md and len(gallery) >= 1
