"""SpanBERT: span-length law, span masking rates, SBO head, QA decoding with sliding window + null answer."""

from __future__ import annotations

import pytest
import torch

from bertvariants import qa as qa_mod
from bertvariants import spanbert as sp
from bertvariants.common import IGNORE_INDEX, REPLACE_KEEP, REPLACE_MASK, REPLACE_RANDOM, make_generator


def test_clipped_geometric_mean_is_3_8_analytically_and_empirically():
    assert sp.mean_span_length() == pytest.approx(3.797, abs=1e-3)  # §3.1: "mean 3.8"
    lengths = sp.sample_span_lengths(200_000, generator=make_generator(0))
    assert lengths.max().item() == 10 and lengths.min().item() == 1
    assert lengths.double().mean().item() == pytest.approx(3.8, abs=0.1)
    pmf = sp.span_length_pmf()
    freq = torch.bincount(lengths, minlength=11)[1:].double() / len(lengths)
    assert torch.allclose(freq, pmf, atol=0.005)


def words_of(n_words, rng, max_pieces=3):
    """word_ids for [CLS] w0 w0 w1 ... [SEP] with 1..max_pieces tokens per word."""
    wid = [None]
    for w in range(n_words):
        wid += [w] * int(torch.randint(1, max_pieces + 1, (1,), generator=rng))
    return wid + [None]


def test_span_masking_rates_whole_words_and_lengths():
    rng = make_generator(1)
    total = selected = 0
    kinds = {REPLACE_MASK: 0, REPLACE_RANDOM: 0, REPLACE_KEEP: 0}
    all_lengths = []
    for _ in range(600):
        wid = words_of(120, rng)
        ids = torch.randint(5, 99, (len(wid),), generator=rng)
        out = sp.span_mask(ids, wid, mask_token_id=3, vocab_size=99, generator=rng)
        total += len(wid) - 2
        selected += int(out.selected.sum())
        assert not out.selected[0] and not out.selected[-1]
        for (s, e), k in zip(out.spans, out.span_kinds):
            kinds[k] += 1
            # whole words: the token before / after a span belongs to another word
            assert wid[s - 1] != wid[s] and wid[e] != wid[e - 1]
            if k == REPLACE_MASK:
                assert (out.input_ids[s:e] == 3).all()
            if k == REPLACE_KEEP:
                assert torch.equal(out.input_ids[s:e], ids[s:e])
        # spans never overlap or touch: both boundary tokens stay unmasked for the SBO
        for (s1, e1), (s2, _) in zip(out.spans, out.spans[1:]):
            assert e1 < s2
        assert (out.labels[~out.selected] == IGNORE_INDEX).all()
        all_lengths += out.span_words
    assert selected / total == pytest.approx(0.15, abs=0.005)
    n_spans = sum(kinds.values())
    assert kinds[REPLACE_MASK] / n_spans == pytest.approx(0.8, abs=0.03)  # ~7,000 spans: per-span decisions
    assert max(all_lengths) <= 10
    # realised lengths: the law, shortened only where the budget cuts the last span of a sequence
    assert 3.3 < sum(all_lengths) / len(all_lengths) < 3.9


def test_span_kinds_80_10_10_per_span():
    kinds = sp.draw_replacement_kinds((100_000,), generator=make_generator(2))  # one draw per span (§3.1)
    for k, rate in ((REPLACE_MASK, 0.8), (REPLACE_RANDOM, 0.1), (REPLACE_KEEP, 0.1)):
        assert (kinds == k).float().mean().item() == pytest.approx(rate, abs=0.01)


def test_seed_determinism():
    wid = [None] + list(range(50)) + [None]
    ids = torch.arange(10, 62)
    a = sp.span_mask(ids, wid, mask_token_id=3, vocab_size=99, generator=make_generator(9))
    b = sp.span_mask(ids, wid, mask_token_id=3, vocab_size=99, generator=make_generator(9))
    c = sp.span_mask(ids, wid, mask_token_id=3, vocab_size=99, generator=make_generator(10))
    assert a.spans == b.spans and torch.equal(a.input_ids, b.input_ids)
    assert a.spans != c.spans


def test_bad_inputs():
    with pytest.raises(ValueError, match="no maskable words"):
        sp.span_mask(torch.tensor([1, 2]), [None, None], mask_token_id=3, vocab_size=99, generator=make_generator(0))
    with pytest.raises(ValueError, match="one word id per token"):
        sp.span_mask(torch.tensor([1, 2, 3]), [None, 0], mask_token_id=3, vocab_size=99, generator=make_generator(0))
    with pytest.raises(ValueError, match="p must be"):
        sp.span_length_pmf(p=0)


def test_sbo_head_forward_backward_tiny_odd():
    torch.manual_seed(0)
    b, t, h, v = 2, 13, 36, 99
    hidden = torch.randn(b, t, h, requires_grad=True)
    labels = torch.full((b, t), IGNORE_INDEX)
    spans = [[(2, 5), (8, 9)], [(4, 11)]]
    for r, row in enumerate(spans):
        for s, e in row:
            labels[r, s:e] = torch.randint(0, v, (e - s,))
    targets = sp.sbo_targets(spans, labels)
    assert targets.target.numel() == 3 + 1 + 7
    assert targets.left.tolist()[:3] == [1, 1, 1] and targets.right.tolist()[:3] == [5, 5, 5]
    assert targets.relative.tolist()[:3] == [0, 1, 2]
    emb = torch.nn.Embedding(v, h)
    head = sp.SpanBoundaryHead(h, v, decoder_weight=emb.weight)
    assert head.decoder.weight is emb.weight
    logits = head(hidden, targets)
    assert logits.shape == (11, v)
    mlm_logits = torch.randn(b, t, v, requires_grad=True)
    loss = sp.spanbert_loss(mlm_logits, labels, logits, targets)
    assert torch.allclose(loss.loss, loss.mlm_loss + loss.sbo_loss)
    loss.loss.backward()
    assert hidden.grad[0, 1].abs().sum() > 0 and hidden.grad[0, 3].abs().sum() == 0  # only boundaries feed the SBO
    assert head.position.weight.grad is not None


def test_span_mask_text_and_figures(tiny_tokenizer_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    text = ("SpanBERT masks contiguous spans of complete words rather than single random tokens, and it predicts "
            "each masked token from the two tokens just outside the span boundary. ") * 2
    out = sp.span_mask_text(text, tok, generator=make_generator(0))
    tokens = tok.convert_ids_to_tokens(tok(text)["input_ids"])
    pairs = sp.highlight_spans(tokens, out)
    assert sum(lab is not None for _, lab in pairs) == int(out.selected.sum())
    fig = sp.length_histogram_figure([1, 2, 2, 3, 10])
    assert len(fig.data) == 2
    with pytest.raises(ValueError, match="empty"):
        sp.span_mask_text("  ", tok, generator=make_generator(0))


@pytest.fixture(scope="module")
def qa(tiny_checkpoint):
    from bertvariants.serving import load_checkpoint

    return load_checkpoint(str(tiny_checkpoint("question-answering")), "question-answering")


def test_answer_questions_sliding_window_and_null(qa):
    context = " ".join(f"Sentence number {i} talks about topic {i % 7} in some detail." for i in range(30))
    res = qa_mod.answer_questions(qa.model, qa.tokenizer, ["What does sentence 5 talk about?"], [context],
                              max_length=64, stride=16, n_best=5, max_answer_len=8, allow_impossible=False)[0]
    assert res.num_windows > 5  # the long context was split into overlapping windows
    assert res.answer == context[res.start_char:res.end_char] and res.answer
    assert len(res.candidates) <= 5 and all(len(qa.tokenizer.tokenize(c["text"])) <= 8 for c in res.candidates)
    # SQuAD 2.0: a huge threshold never answers, a hugely negative one always does
    never = qa_mod.answer_questions(qa.model, qa.tokenizer, ["q?"], [context], max_length=64, stride=16,
                                null_threshold=-1e9)[0]
    assert never.answer == "" and never.is_impossible and never.start_char == -1
    always = qa_mod.answer_questions(qa.model, qa.tokenizer, ["q?"], [context], max_length=64, stride=16,
                                 null_threshold=1e9)[0]
    assert always.answer
    assert (always.answer, "answer") in qa_mod.highlight_answer(always)
    # deterministic and batched in input order
    two = qa_mod.answer_questions(qa.model, qa.tokenizer, ["q?", "What does sentence 5 talk about?"], [context, context],
                              max_length=64, stride=16, null_threshold=1e9)
    assert two[0].answer == always.answer and two[1].question.startswith("What")


def test_null_decision_follows_threshold(qa):
    res = qa_mod.answer_questions(qa.model, qa.tokenizer, ["Who?"], ["Alice met Bob in Paris in 1999."])[0]
    diff = res.null_score - res.best_span_score
    just_below = qa_mod.answer_questions(qa.model, qa.tokenizer, ["Who?"], ["Alice met Bob in Paris in 1999."],
                                     null_threshold=diff - 1e-3)[0]
    just_above = qa_mod.answer_questions(qa.model, qa.tokenizer, ["Who?"], ["Alice met Bob in Paris in 1999."],
                                     null_threshold=diff + 1e-3)[0]
    assert just_below.is_impossible and not just_above.is_impossible


@pytest.mark.parametrize("q, c, match", [("", "ctx", "question 1 is empty"), ("Who?", "  ", "has no context")])
def test_qa_bad_input(qa, q, c, match):
    with pytest.raises(ValueError, match=match):
        qa_mod.answer_questions(qa.model, qa.tokenizer, [q], [c])


def test_qa_non_latin_and_emoji(qa):
    res = qa_mod.answer_questions(qa.model, qa.tokenizer, ["誰が来ましたか？ 🙂"], ["東京に田中さんが来ました 🙂 Привет мир."],
                              null_threshold=1e9)[0]
    assert res.answer == res.context[res.start_char:res.end_char]


# ------------------------------------------------------------------ UI handlers
def test_ui_spans_handler():
    import gradio as gr

    from bertvariants.ui import spanbert as ui

    md, hl, fig = ui.spans(ui.EXAMPLE, 0, 0.2, 10)
    assert "3.797" in md and any(label for _, label in hl) and len(fig.data) == 2
    with pytest.raises(gr.Error, match="empty"):
        ui.spans("", 0, 0.2, 10)
    with pytest.raises(gr.Error, match="limit"):
        ui.spans("x " * 5000, 0, 0.2, 10)


def test_ui_qa_handler(tiny_checkpoint, monkeypatch):
    import gradio as gr

    from bertvariants.ui import spanbert as ui

    monkeypatch.setenv("BERTVARIANTS_MODEL_SPANBERT_QA", str(tiny_checkpoint("question-answering")))
    md, hl, nbest = ui.qa("Who released SpanBERT?", ui.EXAMPLE * 4, 100, 64)
    assert "window(s)" in md and any(label == "answer" for _, label in hl)  # threshold 100: always answers
    md, hl, _ = ui.qa("Who released SpanBERT?", ui.EXAMPLE, -100, 64)
    assert "No answer" in md and hl == [(ui.EXAMPLE, None)]
    with pytest.raises(gr.Error, match="no context"):
        ui.qa("Who?", "   ", 0, 128)
    with pytest.raises(gr.Error, match="Question is empty"):
        ui.qa("", "ctx", 0, 128)


def test_served_start_reads_the_served_models_record(tmp_path, monkeypatch, tiny_checkpoint):
    import json

    from bertvariants.serving import manifest as mf
    from bertvariants.ui import spanbert as ui

    ckpt = tiny_checkpoint("question-answering")
    monkeypatch.setenv("BERTVARIANTS_MODEL_SPANBERT_QA", str(ckpt))
    assert ui.served_start() == ""  # an explicit local checkpoint: no project record to read
    folder = tmp_path / "squad"
    folder.mkdir()
    for f in ckpt.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    (folder / "result.json").write_text(json.dumps({
        "model": "squad-from-span", "task": "squad_v1", "split": "dev", "primary_metric": "f1", "score": 61.234,
        "metrics": {"f1": 61.234}, "timestamp": "2026-12-01T00:00:00+00:00",  # what every record has
        "training": {"steps": 300, "config": {"base_model": "models/cmp-span"}}}))
    monkeypatch.delenv("BERTVARIANTS_MODEL_SPANBERT_QA")
    monkeypatch.setenv("BERTVARIANTS_MODELS_DIR", str(tmp_path))  # a trained squad overrides the shipped one
    mf.default_manifest.cache_clear()  # the manifest reads the models directory once
    try:
        text = ui.served_start()
        (folder / "result.json").write_text("{broken")
        broken = ui.served_start()
    finally:
        mf.default_manifest.cache_clear()
    assert "`squad-from-span`" in text and "300 SQuAD steps fine-tuned from models/cmp-span" in text
    assert "F1 **61.23**" in text
    assert broken == ""  # an unreadable record hides the line, never breaks the tab


def test_span_mask_batch_feeds_sbo():
    rng = make_generator(4)
    wid = [[None] + list(range(30)) + [None] * 4, [None] + [w // 2 for w in range(32)] + [None] * 2]
    ids = torch.randint(5, 99, (2, 35), generator=rng)
    out = sp.span_mask_batch(ids, wid, mask_token_id=3, vocab_size=99, generator=rng)
    assert out.input_ids.shape == (2, 35) and not out.selected[:, -2:].any()
    targets = sp.sbo_targets(out.spans, out.labels)
    assert targets.target.numel() == int(out.selected.sum())
    assert torch.equal(targets.target, out.labels[targets.batch_index, targets.left + 1 + targets.relative])
    with pytest.raises(ValueError, match="one word-id list per row"):
        sp.span_mask_batch(ids, wid[:1], mask_token_id=3, vocab_size=99, generator=rng)


# ------------------------------------------------------------------ the null threshold chosen for a model
def test_choose_null_threshold_maximises_squad2_f1_and_sits_between_examples():
    import random

    rng = random.Random(0)
    has = [rng.random() < 0.5 for _ in range(400)]
    diffs = [rng.gauss(-2.0 if h else 1.0, 1.5) for h in has]  # answerable questions: lower s_null − s_best
    f1 = [rng.random() if h else 0.0 for h in has]
    chosen = qa_mod.choose_null_threshold(diffs, f1, has)

    def squad2_f1(tau):
        return sum((f if d <= tau else 0.0) if h else float(d > tau) for d, f, h in zip(diffs, f1, has)) / len(has)

    grid = [x / 20 for x in range(-200, 200)]
    assert chosen.f1 == pytest.approx(squad2_f1(chosen.threshold))
    assert chosen.f1 >= max(squad2_f1(t) for t in grid) - 1e-9  # no threshold on a fine grid does better
    assert chosen.abstain_f1 == pytest.approx(1 - sum(has) / len(has)) and chosen.f1 > chosen.abstain_f1
    assert chosen.answer_all_f1 == pytest.approx(squad2_f1(float("inf")))
    assert all(abs(d - chosen.threshold) > 1e-6 for d in diffs)
    # all unanswerable: abstain on everything, τ below the smallest difference
    none = qa_mod.choose_null_threshold([0.5, 2.0], [0.0, 0.0], [False, False])
    assert none.f1 == 1.0 and none.threshold < 0.5
    # a question without any candidate span (s_best = −∞) can never be answered
    inf = qa_mod.choose_null_threshold([float("inf"), -1.0], [0.0, 1.0], [True, True])
    assert inf.f1 == 0.5 and inf.threshold == pytest.approx(0.0)
    with pytest.raises(ValueError, match="one span F1"):
        qa_mod.choose_null_threshold([1.0], [], [True])


def test_null_threshold_is_read_from_the_models_decoding_record(tmp_path):
    import json

    assert qa_mod.null_threshold_of(tmp_path) == 0.0  # none stored: §4.3's plain rule
    (tmp_path / qa_mod.DECODING_FILE).write_text(json.dumps({"null_threshold": -2.5}))
    assert qa_mod.null_threshold_of(tmp_path) == -2.5
    (tmp_path / qa_mod.DECODING_FILE).write_text(json.dumps({"null_threshold": "nan"}))
    with pytest.raises(ValueError, match="finite"):
        qa_mod.null_threshold_of(tmp_path)
    (tmp_path / qa_mod.DECODING_FILE).write_text("{")
    with pytest.raises(ValueError, match="not a readable QA decoding record"):
        qa_mod.null_threshold_of(tmp_path)


def test_shipped_qa_model_carries_a_hashed_null_threshold_that_the_tab_defaults_to():
    from bertvariants.serving.shipped import ShippedSpec, shipped_dir
    from bertvariants.ui import spanbert as ui

    folder = shipped_dir("squad")
    spec = ShippedSpec.read(folder)
    assert qa_mod.DECODING_FILE in spec.files  # sha256-checked at load, copied by `ship`
    tau = qa_mod.null_threshold_of(folder)
    assert tau != 0.0
    if ui.resolve(ui.TASK).source == "shipped":
        assert ui.served_null_threshold() == tau


def test_unanswerable_pairs_hold_no_answer_and_articles_split_stably():
    from bertvariants.train import squad_null as sn

    assert {sn.split_of(f"article {i}") for i in range(400)} == {"calibrate", "report", "train"}
    assert sn.split_of("Normans") == sn.split_of("Normans")
    context = "Paris is in France. It is large. The Seine flows through it. Many people visit."
    qa = {"question": "Where is Paris?", "answers": [{"text": "France", "answer_start": context.index("France")}]}
    cut = sn.answer_cut(context, qa)
    assert cut == "It is large. The Seine flows through it. Many people visit." and "France" not in cut
    assert sn.answer_cut("Paris is in France. Nice.", qa) is None  # too little left
    paragraphs = [context, "Berlin is in Germany and Paris is far.", "Paris hosts the Louvre; France loves it."]
    other = sn.unanswerable_context(qa, context, paragraphs, "other-paragraph")
    assert other == paragraphs[1]  # shares a word with the question and does not hold the answer
    with pytest.raises(ValueError, match="unknown kind"):
        sn.unanswerable_context(qa, context, paragraphs, "nonsense")
    articles = [{"title": f"article {i}", "paragraphs": [
        {"context": f"Alpha {i} met Beta in Gamma town. They talked. Then they left. It rained.",
         "qas": [{"id": f"q{i}", "question": f"Whom did Alpha {i} meet?",
                  "answers": [{"text": "Beta", "answer_start": len(f"Alpha {i} met ")}]}]},
        {"context": f"Alpha {i} lives far away. The river is long.", "qas": []}]} for i in range(200)]
    pairs = sn.build_pairs(articles, split="report", n_questions=50, seed=0)
    assert pairs and all(sn.split_of(p.title) == "report" for p in pairs)
    assert all("Beta" not in p.context for p in pairs if not p.answers)
    assert all(p.context[p.context.index(p.answers[0]):].startswith("Beta") for p in pairs if p.answers)
    data = sn.as_squad_v2(pairs)
    assert sum(q["is_impossible"] for a in data["data"] for para in a["paragraphs"] for q in para["qas"]) == \
        sum(not p.answers for p in pairs)
    assert sn.build_pairs(articles, split="report", n_questions=50, seed=0) == pairs  # seeded
