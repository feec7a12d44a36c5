"""Distillation tab: the temperature explorer, the loss calculator, and teacher vs student side by side
(public API `compare_sentiment`)."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import gradio as gr
import pandas as pd
import torch

from ..checks import number, text
from .. import distillation as kd
from ..inference import classify
from ..io import weights_size
from ..serving import get_model, ModelUnavailable
from .common import action, in_place, readable, safe

TEACHER, STUDENT = "distillation-teacher", "distillation-student"
MAX_CHARS = 2000
DEFAULT_LOGITS = "4.0, 1.5, -0.5, -2.0"


def _labels(model, n: int) -> list[str]:
    id2label = getattr(getattr(model, "config", None), "id2label", None) or {}
    return [str(id2label.get(i, f"class {i}")) for i in range(n)]


# --------------------------------------------------------------------------------------------
# Handlers
# --------------------------------------------------------------------------------------------
@safe
def teacher_logits(sentence: str):
    """The distillation teacher's logits for a sentence, to explore at different temperatures (public API
    `distillation_teacher_logits`).

    Args:
        sentence: the text to classify (sentiment).

    Returns: the logits as comma-separated text, the class names, and which model served (markdown)."""
    sentence = text(sentence, "Sentence", max_chars=MAX_CHARS)
    m = get_model(TEACHER)
    z = classify(m.model, m.tokenizer, [sentence])[0]
    labels = _labels(m.model, len(z))
    return ", ".join(f"{v:.3f}" for v in z.tolist()), ", ".join(labels), f"Logits of the teacher {m.label}."


@safe
def explore(logits: str, labels: str, temperature: float):
    """Soft targets softmax(z / T) of a teacher's logits and their "dark knowledge" (Hinton et al. 2015 §2;
    public API `distillation_explore`).

    Args:
        logits: comma-separated logits, e.g. "5, 2, 1, -1".
        labels: optional comma-separated class names, one per logit.
        temperature: the temperature T (> 0, ≤ 100).

    Returns: a bar chart of the probabilities at T = 1 and at T, and the dark knowledge (markdown)."""
    z = kd.parse_logits(logits)
    t = kd.check_temperature(number(temperature, "Temperature T", lo=-1e6, hi=100))
    names = [s.strip() for s in (labels or "").split(",") if s.strip()]
    if names and len(names) != len(z):
        raise ValueError(f"got {len(names)} class names for {len(z)} logits; give one name per logit or none")
    fig = kd.temperature_figure(z, temperature=t, labels=names or None)
    p = kd.softmax_t(torch.tensor(z), temperature=t)
    dk = kd.dark_knowledge(p).item()
    md = (f"**Dark knowledge at T = {t:g}: {dk:.4f}** (probability mass on the non-argmax classes; "
          f"{kd.dark_knowledge(kd.softmax_t(torch.tensor(z))).item():.4f} at T = 1). Higher T spreads the mass, "
          "exposing how the teacher ranks the wrong classes (Hinton et al. §2).")
    return fig, md


@safe
def loss_calculator(teacher: str, student: str, gold: float, hard_target: str, alpha: float, beta: float,
                    temperature: float):
    """The distillation loss and its terms for one example (Hinton et al. 2015 §2; public API
    `distillation_loss`).

    Args:
        teacher: the teacher's logits, comma-separated.
        student: the student's logits, comma-separated (same number of classes).
        gold: the gold class index.
        hard_target: "gold" (the label) or "teacher" (the teacher's argmax) as the hard target.
        alpha: weight of the soft (distillation) term.
        beta: weight of the hard (student) term.
        temperature: the temperature T.

    Returns: a table of the loss terms."""
    t_z, s_z = kd.parse_logits(teacher), kd.parse_logits(student)
    if len(t_z) != len(s_z):
        raise ValueError(f"teacher has {len(t_z)} logits but student has {len(s_z)}; they need the same classes")
    t = kd.check_temperature(number(temperature, "Temperature T", lo=-1e6, hi=100))
    a = number(alpha, "α", lo=-1e6, hi=1e6)
    b = number(beta, "β", lo=-1e6, hi=1e6)
    if hard_target not in kd.HARD_TARGETS:
        raise ValueError(f"hard targets must be one of {', '.join(kd.HARD_TARGETS)}")
    gold = number(gold, "Gold label", lo=0, hi=len(t_z) - 1, integer=True)  # validated even when unused
    labels = torch.tensor([gold]) if hard_target == "gold" else None
    out = kd.distillation_objective(torch.tensor([s_z]), torch.tensor([t_z]), labels=labels, temperature=t,
                                    alpha=a, beta=b, hard_target=hard_target)
    rows = [
        ("soft targets p = softmax(z_teacher / T)",
         ", ".join(f"{v:.4f}" for v in kd.softmax_t(torch.tensor(t_z), temperature=t).tolist())),
        ("soft predictions q = softmax(z_student / T)",
         ", ".join(f"{v:.4f}" for v in kd.softmax_t(torch.tensor(s_z), temperature=t).tolist())),
        (f"hard target ({'gold label' if hard_target == 'gold' else 'teacher argmax'})", str(int(out.hard_targets[0]))),
        ("distillation loss T²·CE(p, q)", f"{out.distill.item():.4f}"),
        ("student loss CE(hard, softmax(z_student)) at T = 1", f"{out.student.item():.4f}"),
        (f"total = {a:g}·distill + {b:g}·student", f"{out.loss.item():.4f}"),
    ]
    return pd.DataFrame(rows, columns=["term", "value"])


def _measure(model, tok, sentence: str, repeats: int = 5) -> tuple[torch.Tensor, float]:
    classify(model, tok, [sentence])  # warm-up (first call allocates)
    times, logits = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        logits = classify(model, tok, [sentence])[0]
        times.append((time.perf_counter() - t0) * 1000)
    return logits, statistics.median(times)


def stored_as(location: str) -> str:
    """What a checkpoint directory's weight files hold: a shipped model may store only what it adds to the packaged
    MiniLM (a LoRA adapter, a low-rank embedding update), rebuilt over it at load."""
    import json

    path = Path(location)
    try:
        base = json.loads((path / "shipped.json").read_text(encoding="utf-8")).get("base")
    except (OSError, ValueError):
        base = None
    if (path / "adapter_config.json").is_file():
        return "a LoRA adapter + head; the base MiniLM is the packaged one"
    if base:
        return f"what it adds to the packaged MiniLM (base `{base}`)"
    return "all its weights"


@safe
def compare(sentence: str):
    """Teacher and student on the same sentence: prediction, live latency, parameters (the token-embedding table
    and the rest, counted the same way for both), weights in memory (public API `compare_sentiment`).

    Args:
        sentence: the text to classify (sentiment).

    Returns: a side-by-side table and a note on what each column compares (markdown)."""
    sentence = text(sentence, "Sentence", max_chars=MAX_CHARS)
    rows, notes = [], []
    for role, task in (("teacher", TEACHER), ("student", STUDENT)):
        try:
            m = get_model(task)  # the resolver loads any format, Tang et al.'s BiLSTM student included
        except ModelUnavailable as exc:
            notes.append(f"- **{role}** unavailable: {exc}")
            rows.append({"role": role, "prediction": "—", "model": "unavailable"})
            continue
        logits, ms = _measure(m.model, m.tokenizer, sentence)
        p = torch.softmax(logits, -1)
        k = int(p.argmax())
        split = kd.parameter_split(m.model)
        size = weights_size(m.resolution.location)
        stored = (f"{size / 2**20:.2f} MB on disk: {stored_as(m.resolution.location)}" if size else "not on disk")
        notes.append(f"- **{role}**: {m.label} · files: {stored}")
        short = m.resolution.name  # a Hub repo id (a cached snapshot too), else the folder's name
        rows.append({"role": role, "prediction": _labels(m.model, len(p))[k], "confidence": float(p[k]),
                     "latency (ms, median of 5)": round(ms, 2),
                     "layers (M params)": round(split.rest / 1e6, 2),
                     "token embeddings (M params)": round(split.embeddings / 1e6, 2),
                     "in memory (MB, fp32)": round(split.total * 4 / 2**20, 1),
                     "model": short})  # its class and source are in the note under the table
    have = [r for r in rows if "layers (M params)" in r]
    ratio = (f" Here the student's layers are **{have[0]['layers (M params)'] / have[1]['layers (M params)']:.0f}× "
             "smaller** than the teacher's." if len(have) == 2 and have[1]["layers (M params)"] else "")
    md = ("Both models are counted the same way. **Layers** = every parameter but the token-embedding table (the "
          "transformer or LSTM layers, position embeddings, the heads): what computes, and what distillation shrinks. "
          "**Token embeddings** = the V×d lookup table (read, not computed; a low-rank update of it counted with it). "
          "**In memory** = all parameters in fp32 as loaded." + ratio + " What each model stores on disk differs by "
          "format, so it is listed below rather than compared. Latency is measured now, on this server, for one "
          "sentence.\n\n" + "\n".join(notes))
    return readable(pd.DataFrame(rows)), md


def build(spec, tab) -> None:
    gr.Markdown("_The explorer and the loss calculator need no model; the side-by-side view needs the teacher and "
                "student checkpoints (see \"Paper and the model serving this tab\" above)._")
    with gr.Tab("Temperature explorer"):
        gr.Markdown("Soft targets: `softmax(z / T)`. Enter logits, or take them from the teacher model for a sentence.")
        with gr.Row():
            sentence = gr.Textbox(label="Sentence for the teacher", value="A gripping, beautifully acted film.",
                                  scale=3)
            with gr.Column(scale=1, min_width=160):
                take = action("Use the teacher's logits", variant="secondary")
        with gr.Row():
            logits = gr.Textbox(label="Teacher logits (comma-separated)", value=DEFAULT_LOGITS)
            labels = gr.Textbox(label="Class names (optional, comma-separated)", value="")
        temp = gr.Slider(1, 20, value=4, step=0.5, label="Temperature T")
        show = action("Show distribution", variant="secondary")
        plot = gr.Plot()
        dk = gr.Markdown()
        take_md = gr.Markdown()
        take.click(teacher_logits, [sentence], [logits, labels, take_md], api_name="distillation_teacher_logits")
        redraw = in_place(explore, 2)  # bad logits typed in: the message under the button, the inputs stay usable
        for trigger in (temp.change, logits.submit, labels.submit):
            trigger(redraw, [logits, labels, temp], [plot, dk, show.error], api_visibility="private")
        show.click(explore, [logits, labels, temp], [plot, dk], api_name="distillation_explore")
        # draw the default logits on arrival
        tab.select(redraw, [logits, labels, temp], [plot, dk, show.error], api_visibility="private")
    with gr.Tab("Loss calculator"):
        gr.Markdown("Hinton et al. §2: total = α · T² · CE(soft targets, soft predictions) + β · CE(hard targets, "
                    "student at T = 1). T² keeps the soft term's gradients comparable as T changes.")
        with gr.Row():
            t_logits = gr.Textbox(label="Teacher logits", value=DEFAULT_LOGITS)
            s_logits = gr.Textbox(label="Student logits", value="2.0, 2.0, 0.0, -1.0")
        with gr.Row():
            hard = gr.Radio(list(kd.HARD_TARGETS), value="gold", label="Hard targets: gold label or teacher argmax")
            gold = gr.Number(value=0, step=1, label="Gold label (class index)")
        with gr.Row():
            alpha = gr.Number(value=0.5, label="α (distillation weight)")
            beta = gr.Number(value=0.5, label="β (student weight)")
            t_loss = gr.Number(value=2.0, label="T")
        loss_btn = action("Compute losses")
        out = gr.Dataframe(label="Loss terms", visible=False)
        loss_btn.click(loss_calculator, [t_logits, s_logits, gold, hard, alpha, beta, t_loss], [out],
                       api_name="distillation_loss")
    with gr.Tab("Teacher vs student"):
        cmp_sentence = gr.Textbox(label="Sentence", value="The plot is thin, but the performances are wonderful.")
        cmp_btn = action("Run both")
        cmp_df = gr.Dataframe(label="Side by side", visible=False)
        cmp_md = gr.Markdown(visible=False)
        cmp_btn.click(compare, [cmp_sentence], [cmp_df, cmp_md], api_name="compare_sentiment", concurrency_limit=1)
