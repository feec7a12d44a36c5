"""Term maps: do a model's embeddings group terms by category? (ClinicalBERT, Huang et al. 2019 §3.3, Fig. 2).

Huang et al. show clinical terms embedded by ClinicalBERT and projected with t-SNE, coloured by category; we make
the picture a number. Each term (a few words, no context) is embedded with the model's own pooling (mean for the
packaged MiniLM; a fine-tuned classifier's encoder is mean-pooled), the embeddings are projected to 2-D with
t-SNE (:func:`bertvariants.clinical_bert.tsne_terms`, cosine, perplexity 30, seed 0), and a term scores 1 when its
nearest other term shares its category (:func:`bertvariants.clinical_bert.same_category_neighbours`):

- ``nn_rate_tsne`` (primary): on the 2-D map (what a reader of the figure sees);
- ``nn_rate_embedding``: in the full embedding space (cosine), free of t-SNE's randomness;
- ``chance_rate``: the rate of a random neighbour (½ − 1/(2(N − 1)) for two equal categories).

Rates in percent; the 95% interval resamples terms with their neighbours fixed.
"""

from __future__ import annotations

from bertvariants import clinical_bert as cb
from bertvariants import inference

from ..record import Outcome

PERPLEXITY = 30.0


def term_map(bench, h, ds, *, seed, batch_size, progress, **_) -> Outcome:
    m = h.loaded
    if h.kind not in ("sentence-embedding", "feature-extraction", "sequence-classification", "masked-lm"):
        raise ValueError(f"{bench.key} needs an encoder (sentence-embedding, classifier or masked LM); "
                         f"{h.name} is {h.kind}")
    encoder = m.model if h.kind in ("sentence-embedding", "feature-extraction") else m.model.base_model
    terms = [cb.Term(e.text, str(e.label)) for e in ds.examples]
    cats = [t.category for t in terms]
    emb = inference.encode(encoder, m.tokenizer, [t.term for t in terms], pooling=h.pooling, batch_size=batch_size,
                           max_length=h.max_length, progress=progress).numpy()
    tmap = cb.tsne_terms(emb, terms, perplexity=PERPLEXITY, seed=seed)
    in_map = cb.same_category_neighbours(tmap.coords, cats)
    in_emb = cb.same_category_neighbours(emb, cats, metric="cosine")
    metrics = {"nn_rate_tsne": round(100 * float(in_map.mean()), 4),
               "nn_rate_embedding": round(100 * float(in_emb.mean()), 4),
               "chance_rate": round(100 * cb.chance_neighbour_rate(cats), 4)}
    records = [{"id": e.id, "input": e.text, "prediction": int(a), "reference": e.label, "embedding_match": int(b),
                "x": round(float(x), 3), "y": round(float(y), 3), "error": 1 - int(a)}
               for e, a, b, (x, y) in zip(ds.examples, in_map, in_emb, tmap.coords)]
    counts = {c: cats.count(c) for c in sorted(set(cats))}
    details = {"method": f"mean-pooled term embeddings -> t-SNE (cosine, perplexity {PERPLEXITY:g}, seed {seed}); "
                         "a term scores 1 when its nearest other term (2-D map; full space by cosine) shares its "
                         "category",
               "terms_per_category": counts, "bootstrap": "terms resampled, nearest neighbours fixed",
               **{k: v for k, v in ds.meta.items() if k in ("categories", "per_category", "seed")}}
    return Outcome(metrics, lambda idx: 100 * float(in_map[idx].mean()), records, details)
