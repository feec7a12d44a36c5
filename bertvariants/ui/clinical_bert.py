"""ClinicalBERT tab: long-note scoring with the §3.4 aggregate (public API `clinical_score`), and a t-SNE map of
medical term embeddings (public API `clinical_terms`)."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from ..checks import number, text
from .. import clinical_bert as cb
from ..inference import encode
from ..serving import get_model, ModelUnavailable, packaged_tokenizer
from .common import action, safe

CLASSIFIER, EMBEDDINGS = "clinical-classifier", "clinical-embeddings"
MAX_EXTRA_TERMS = 100
# the default is clearly Surgery (an operative note), the second example clearly not (a medical discharge summary);
# the shipped `clinical` model (head on frozen MiniLM) scores them P(Surgery) = 0.259 (5 chunks: the operation
# 0.22-0.32, the closing plan 0.04 — what the max/mean aggregate is for) and 0.016 at the tab's defaults: it ranks
# notes well (AUROC 86.5) but its probabilities are low overall (none of 400 MTSamples notes tried here passed 0.46),
# so the tab compares the two examples rather than reading 0.5
EXAMPLE_LABELS = ("Surgery: modified radical mastectomy (operative note)", "Not surgery: pneumonia (discharge summary)")
EXAMPLE_NOTE = (
    'PREOPERATIVE DIAGNOSIS: Invasive ductal carcinoma of the left breast. POSTOPERATIVE DIAGNOSIS: Invasive ductal '
    'carcinoma of the left breast. OPERATION PERFORMED: Left modified radical mastectomy with axillary lymph node '
    'dissection. ANESTHESIA: General endotracheal. ESTIMATED BLOOD LOSS: 150 mL. SPECIMENS: Left breast and axillary '
    'contents to pathology. DRAINS: Two 15-French Blake drains. COMPLICATIONS: None. INDICATIONS: The patient is a '
    '58-year-old woman with a 3 cm invasive ductal carcinoma of the upper outer quadrant of the left breast and a '
    'biopsy-proven positive axillary node, who chose mastectomy after discussion of breast conservation. DESCRIPTION '
    'OF OPERATION: The patient was brought to the operating room and placed supine with the left arm abducted on an '
    'arm board. After induction of general anesthesia, the left chest, axilla and arm were prepped and draped in the '
    'usual sterile fashion. An elliptical incision encompassing the nipple-areolar complex and the biopsy scar was '
    'made. Skin flaps were raised superiorly to the clavicle, medially to the sternum, inferiorly to the inframammary'
    ' fold and laterally to the latissimus dorsi, using electrocautery. The breast was dissected off the pectoralis '
    'major muscle together with its fascia. The axillary dissection was carried out, preserving the long thoracic and'
    ' thoracodorsal nerves and the axillary vein; level I and II lymph nodes were removed en bloc with the breast. '
    'Hemostasis was obtained with electrocautery and clips. The wound was irrigated with warm saline. Two drains were'
    ' placed, one in the axilla and one under the skin flaps, and secured to the skin. The skin was closed with '
    'interrupted 3-0 Vicryl deep dermal sutures and a running 4-0 Monocryl subcuticular suture. Sterile dressings '
    'were applied. Sponge and needle counts were correct. The patient tolerated the procedure well and was taken to '
    'the recovery room in stable condition. FINDINGS: A firm 3 cm mass in the upper outer quadrant of the left '
    'breast, clear of the pectoralis fascia; several enlarged level I axillary lymph nodes. POSTOPERATIVE PLAN: Admit'
    ' to the surgical floor overnight, drains to bulb suction with output recorded every shift, arm exercises with '
    'physical therapy from the first postoperative day, oral analgesics, and discharge home tomorrow if drain output '
    'is acceptable. She will be seen in the surgery clinic in one week for a wound check and pathology results, and '
    'referred to medical oncology and radiation oncology.')
OTHER_NOTE = (
    "DISCHARGE DIAGNOSES: Community-acquired pneumonia, right lower lobe. Chronic obstructive pulmonary disease. "
    "HOSPITAL COURSE: The patient is a 72-year-old man admitted with fever, productive cough and hypoxia. Chest x-ray "
    "showed right lower lobe consolidation. He was treated with ceftriaxone and azithromycin, nebulized "
    "bronchodilators and supplemental oxygen. Blood cultures were negative. His fever resolved on day two and oxygen "
    "saturation improved to 94% on room air by day four. DISCHARGE MEDICATIONS: Amoxicillin-clavulanate for five more "
    "days, tiotropium inhaler, albuterol as needed. FOLLOW-UP: Primary care in one week with a repeat chest x-ray in "
    "six weeks.")


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
        return None, (f"**No clinical classifier here**: {exc}\n\n"
                      f"The note still splits into **{len(chunks)} chunk(s)** "
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
                           **{f"P({lbl})": round(float(res.chunk_probs[ch.index, j]), 4)
                              for j, lbl in enumerate(res.labels)},
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
        gr.Markdown("A note longer than the model's limit is split into chunks; each chunk is scored and the scores "
                    "are combined as **P = (P_max + P_mean·n/c) / (1 + n/c)** (§3.4). Offline the classifier is the "
                    "one this project trains on MTSamples transcriptions (clearly a specialty classifier, not "
                    "readmission). Its probabilities run low overall: read P(Surgery) against the second example, not "
                    "against 0.5.")
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
