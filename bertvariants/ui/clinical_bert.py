"""ClinicalBERT tab: long-note scoring with the §3.4 aggregate (public API `clinical_score`), and a t-SNE map of
medical term embeddings (public API `clinical_terms`)."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from .. import clinical_bert as cb
from ..inference import encode
from ..models import get_model, ModelUnavailable, packaged_tokenizer
from .common import action, number, safe, text

CLASSIFIER, EMBEDDINGS = "clinical-classifier", "clinical-embeddings"
MAX_EXTRA_TERMS = 100
# the default is clearly Surgery (an operative note), the second example clearly not (a medical discharge summary);
# the shipped `clinical` model scores them P(Surgery) = 0.994 (5 chunks) and 0.057 (2 chunks) at the tab's defaults
EXAMPLE_NOTE = (
    'PREOPERATIVE DIAGNOSIS: Degenerative osteoarthritis of the right knee. POSTOPERATIVE DIAGNOSIS: Same. PROCEDURE:'
    ' Right total knee arthroplasty. ANESTHESIA: Spinal with a femoral nerve block. TOURNIQUET TIME: 78 minutes. '
    'HISTORY OF PRESENT ILLNESS: The patient is a 68-year-old woman with progressive right knee pain for six years, '
    'now limiting her walking to one block and waking her at night. She has had physical therapy, nonsteroidal '
    'anti-inflammatory drugs, three corticosteroid injections and a course of hyaluronic acid injections without '
    'lasting relief. Radiographs show bone-on-bone medial joint space narrowing, osteophytes and a varus deformity of'
    ' 8 degrees. The risks, benefits and alternatives of total knee arthroplasty, including infection, bleeding, '
    'blood clots, stiffness, loosening and the need for revision surgery, were discussed and she wished to proceed. '
    'DESCRIPTION OF PROCEDURE: The patient was brought to the operating room and placed supine. The right lower '
    'extremity was prepped and draped in the usual sterile fashion and the tourniquet was inflated. A midline skin '
    'incision was made and a medial parapatellar arthrotomy performed. The anterior cruciate ligament and menisci '
    'were excised. The distal femur was cut with an intramedullary guide and the proximal tibia with an '
    'extramedullary guide. Flexion and extension gaps were balanced. Trial components showed good stability and range'
    ' of motion. The final cemented femoral, tibial and patellar components were implanted. The wound was irrigated, '
    'the arthrotomy closed with interrupted sutures and the skin closed with staples. A sterile dressing was applied.'
    ' The patient tolerated the procedure well and went to the recovery room in stable condition. FINDINGS: Severe '
    'tricompartmental degenerative changes, most marked in the medial compartment, with full-thickness cartilage loss'
    ' and large marginal osteophytes. IMPLANTS: Cemented posterior-stabilized femoral component, size 5; tibial '
    'baseplate, size 4, with a 10 mm polyethylene insert; cemented patellar button, 35 mm. ESTIMATED BLOOD LOSS: 150 '
    'mL. DRAINS: None. COMPLICATIONS: None. SPECIMENS: Bone cuts to pathology. POSTOPERATIVE PLAN: Weight bearing as '
    'tolerated with a walker, physical therapy starting today, cefazolin for 24 hours, enoxaparin for deep vein '
    'thrombosis prophylaxis for 14 days, and multimodal analgesia. Staples will be removed at the two-week visit in '
    'the orthopedic surgery clinic.')
OTHER_NOTE = (
    "DISCHARGE DIAGNOSES: Community-acquired pneumonia, right lower lobe. Chronic obstructive pulmonary disease. "
    "HOSPITAL COURSE: The patient is a 72-year-old man admitted with fever, productive cough and hypoxia. Chest x-ray "
    "showed right lower lobe consolidation. He was treated with ceftriaxone and azithromycin, nebulized "
    "bronchodilators and supplemental oxygen. Blood cultures were negative. His fever resolved on day two and oxygen "
    "saturation improved to 94% on room air by day four. DISCHARGE MEDICATIONS: Amoxicillin-clavulanate for five more "
    "days, tiotropium inhaler, albuterol as needed. FOLLOW-UP: Primary care in one week with a repeat chest x-ray in "
    "six weeks.")
EXAMPLE_LABELS = ("Surgery: total knee arthroplasty (operative note)", "Not surgery: pneumonia (discharge summary)")


@safe
def score(note: str, max_tokens: float, stride: float, c: float, class_index: float):
    """Chunk a long clinical note, score each chunk with the clinical classifier and aggregate with
    P = (P_max + P_mean·n/c) / (1 + n/c) (Huang et al. 2019 §3.4; public API `clinical_score`).

    Args:
        note: the clinical note (any length up to the server's limit).
        max_tokens: chunk length in tokens (32–512).
        stride: tokens of overlap between chunks (0–64).
        c: the aggregation constant c (the paper uses 2).
        class_index: the class whose per-chunk probabilities are plotted.

    Returns: a per-chunk plot, the aggregated probabilities (markdown), and a per-chunk table."""
    note = text(note, "Note", max_chars=cb.MAX_NOTE_CHARS)
    max_tokens = number(max_tokens, "Chunk length", lo=16, hi=512, integer=True)
    stride = number(stride, "Stride (overlap)", lo=0, hi=max_tokens - 3, integer=True)
    c = number(c, "c", lo=0.1, hi=100)
    k = number(class_index, "Class index", lo=0, hi=1000, integer=True)
    try:
        m = get_model(CLASSIFIER)
    except ModelUnavailable as exc:
        # BERT's uncased WordPiece shows the chunks when no classifier exists
        chunks = cb.chunk_note(packaged_tokenizer(), note, max_tokens=max_tokens, stride=stride)
        table = pd.DataFrame([{"chunk": ch.index + 1, "tokens": ch.num_tokens, "text": ch.text[:160] + "…"}
                              for ch in chunks])
        return None, (f"**No clinical classifier here**: {exc}\n\nThe note still splits into **{len(chunks)} chunk(s)** "
                      f"of ≤ {max_tokens} tokens (stride {stride}); they are listed below without scores."), table
    k = number(k, "Class index", lo=0, hi=m.model.config.num_labels - 1, integer=True)
    res = cb.score_note(m.model, m.tokenizer, note, max_tokens=max_tokens, stride=stride, c=c, positive=k)
    agg = res.aggregate
    per_class = cb.aggregate_chunk_scores(res.chunk_probs, c=c)
    md = (f"Served by {m.label}. **{agg.n} chunk(s)** of ≤ {max_tokens} tokens (stride {stride}).\n\n"
          f"| score for *{res.labels[k]}* | value |\n|---|---|\n"
          f"| aggregate (P_max + P_mean·n/c)/(1 + n/c), c = {c:g} | **{agg.probability:.4f}** |\n"
          f"| max only | {agg.p_max:.4f} |\n| mean only | {agg.p_mean:.4f} |\n\n"
          "Aggregate per class: " + ", ".join(f"{lbl} {v:.3f}" for lbl, v in zip(res.labels, per_class.probability)))
    table = pd.DataFrame([{"chunk": ch.index + 1, "tokens": ch.num_tokens,
                           **{f"P({lbl})": round(float(res.chunk_probs[ch.index, j]), 4) for j, lbl in enumerate(res.labels)},
                           "text": ch.text[:160] + "…"} for ch in res.chunks])
    return cb.chunk_figure(res), md, table


def parse_extra_terms(extra: str) -> list[cb.Term]:
    terms = []
    for i, line in enumerate((extra or "").splitlines()):
        if not line.strip():
            continue
        if "," not in line:
            raise ValueError(f"line {i + 1}: write 'term, category', e.g. 'ibuprofen, drugs'")
        term, category = (part.strip() for part in line.rsplit(",", 1))
        if not term or not category or len(term) > 100 or len(category) > 40:
            raise ValueError(f"line {i + 1}: the term (≤ 100 characters) and the category (≤ 40) must be non-empty")
        terms.append(cb.Term(term, category))
    if len(terms) > MAX_EXTRA_TERMS:
        raise ValueError(f"at most {MAX_EXTRA_TERMS} extra terms, got {len(terms)}")
    return terms


@safe
def term_map(extra: str, perplexity: float, term_set: str = next(iter(cb.TERM_SETS))):
    """t-SNE map of the embeddings of a set of medical terms (+ your own), coloured by category (public
    API `clinical_terms`).

    Args:
        extra: optional extra terms, one "term, category" per line.
        perplexity: t-SNE perplexity (2–50).
        term_set: which terms: the project's 80 (drugs, anatomy, diseases, procedures) or 200 terms of the
            BC5CDR / NCBI-disease corpora (Disease, Chemical).

    Returns: the scatter plot and the same-category nearest-neighbour rate (markdown)."""
    text(extra, "Extra terms", max_chars=10_000, allow_empty=True)
    perplexity = number(perplexity, "Perplexity", lo=2, hi=50)
    if term_set not in cb.TERM_SETS:
        raise ValueError(f"Term set must be one of: {', '.join(cb.TERM_SETS)}")
    terms = cb.load_terms(cb.TERM_SETS[term_set]) + parse_extra_terms(extra)
    m = get_model(EMBEDDINGS)
    emb = encode(m.model, m.tokenizer, [t.term for t in terms]).numpy()
    tmap = cb.tsne_terms(emb, terms, perplexity=perplexity, seed=0)
    fig = cb.tsne_figure(tmap)
    # how well do categories separate? share of terms whose nearest other term shares their category
    cats = [t.category for t in terms]
    in_emb = float(cb.same_category_neighbours(emb, cats, metric="cosine").mean())
    in_map = float(cb.same_category_neighbours(tmap.coords, cats).mean())
    md = (f"{len(terms)} terms embedded by {m.label} (mean pooling). Same-category nearest neighbour: "
          f"**{in_emb:.0%}** in the full embedding space (cosine), **{in_map:.0%}** on the map; "
          f"{cb.chance_neighbour_rate(cats):.0%} by chance.")
    return fig, md


def build(spec, tab) -> None:
    with gr.Tab("Long-note scoring"):
        gr.Markdown("A note longer than the model's limit is split into chunks; each chunk is scored and the scores are "
                    "combined as **P = (P_max + P_mean·n/c) / (1 + n/c)** (§3.4). Offline the classifier is the one "
                    "this project trains on MTSamples transcriptions (clearly a specialty classifier, not readmission).")
        note = gr.Textbox(label="Clinical note", lines=8, value=EXAMPLE_NOTE)
        gr.Examples([[EXAMPLE_NOTE], [OTHER_NOTE]], inputs=[note], example_labels=list(EXAMPLE_LABELS),
                    label="Example notes")
        with gr.Row():
            max_tokens = gr.Slider(32, 512, value=128, step=16, label="Chunk length (tokens, ≤ 512)")
            stride = gr.Slider(0, 64, value=0, step=8, label="Stride (tokens of overlap)")
            c = gr.Number(value=2.0, label="c (paper: 2)")
            k = gr.Number(value=1, step=1, label="Class index to plot")
        btn = action("Score the note")
        plot = gr.Plot(visible=False)
        md = gr.Markdown(visible=False)
        table = gr.Dataframe(label="Chunks", visible=False, max_height=420)  # unwrapped: headers never split
        btn.click(score, [note, max_tokens, stride, c, k], [plot, md, table], api_name="clinical_score",
                  concurrency_limit=2)
    with gr.Tab("Medical term map (t-SNE)"):
        gr.Markdown("Terms embedded (mean pooling) and projected to 2-D with scikit-learn's t-SNE, one colour per "
                    "category; hover for the term. ClinicalBERT (§3.3, Fig. 2) shows clinical terms grouping by "
                    "category; the line under the map measures it: how often a term's nearest neighbour shares its "
                    "category (the harness's `bioterms` task scores 1,000 such terms per model).")
        term_set = gr.Radio(list(cb.TERM_SETS), value=next(iter(cb.TERM_SETS)), label="Terms")
        extra = gr.Textbox(value="", label="Extra terms (one 'term, category' per line, optional)", lines=3,
                           placeholder="ibuprofen, drugs")
        perp = gr.Slider(2, 50, value=15, step=1, label="Perplexity")
        t_btn = action("Embed and project")
        t_plot = gr.Plot(visible=False)
        t_md = gr.Markdown(visible=False)
        t_btn.click(term_map, [extra, perp, term_set], [t_plot, t_md], api_name="clinical_terms", concurrency_limit=1)
