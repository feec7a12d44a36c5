"""``albert-student``: MiniLM distilled into an ALBERT-shaped encoder (Lan et al. 2019, §3.1).

The two parameter reductions of ALBERT, applied to the same teacher, to measure what they cost:

- factorized embeddings (§3.1): V×E + E×H with E = 128 instead of V×H. Initialised by truncated SVD of the
  teacher's token-embedding matrix W ≈ U_E Σ_E V_Eᵀ: the V×E table is U_E Σ_E and the E→H projection is
  V_Eᵀ (the best rank-E approximation, Eckart–Young); position and segment tables are projected onto the same
  E-dimensional subspace (P V_E);
- cross-layer sharing (§3.1, "all-shared"): one transformer layer applied 6 times, initialised from one
  teacher layer (``shared_from``).

Trained with the ``distil-student`` objective (cosine to the teacher's cached sentence embeddings; optional
hidden-state cosine) on the same sentences; reports parameters of both and STS-B dev Spearman from the evaluation harness.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .config import TrainConfig, base_model_path, output_dir
from .distil_student import compare, distillation_sentences, distillation_setup, score_stsb
from .loop import fit, seed_everything
from .records import RunReport, finish, save_checkpoint

NAME = "albert-student"


@dataclass(frozen=True)
class AlbertStudentConfig(TrainConfig):
    steps: int = 1200
    batch_size: int = 32
    lr: float = 2e-4
    max_length: int = 64
    embedding_size: int = 128  # E (ALBERT §3.1; 128 in every ALBERT size)
    shared_from: int = 2  # teacher layer whose weights initialise the one shared layer
    hidden_weight: float = 0.0  # DistilBERT's hidden-state cosine term (> 0 runs the teacher live)
    train_sentences: int = 40000


def svd_factorize(weight: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Best rank-``rank`` factorization W (V×H) ≈ A (V×E) @ B (E×H), A = U_E Σ_E, B = V_Eᵀ (Eckart–Young)."""
    if not 1 <= rank <= min(weight.shape):
        raise ValueError(f"rank must be in [1, {min(weight.shape)}], got {rank}")
    u, s, vh = torch.linalg.svd(weight.float(), full_matrices=False)
    return u[:, :rank] * s[:rank], vh[:rank]


def albert_from_bert(bert, *, embedding_size: int = 128, shared_from: int = 0):
    """An AlbertModel (one shared layer, factorized embeddings) initialised from a transformers BertModel."""
    from transformers import AlbertConfig, AlbertModel

    c = bert.config
    if not 0 <= shared_from < c.num_hidden_layers:
        raise ValueError(f"shared_from must be a teacher layer in [0, {c.num_hidden_layers}), got {shared_from}")
    cfg = AlbertConfig(vocab_size=c.vocab_size, embedding_size=embedding_size, hidden_size=c.hidden_size,
                       num_hidden_layers=c.num_hidden_layers, num_hidden_groups=1, inner_group_num=1,
                       num_attention_heads=c.num_attention_heads, intermediate_size=c.intermediate_size,
                       hidden_act=c.hidden_act, hidden_dropout_prob=c.hidden_dropout_prob,
                       attention_probs_dropout_prob=c.attention_probs_dropout_prob,
                       max_position_embeddings=c.max_position_embeddings, type_vocab_size=c.type_vocab_size,
                       layer_norm_eps=c.layer_norm_eps, pad_token_id=c.pad_token_id, classifier_dropout_prob=0.1)
    albert = AlbertModel(cfg, add_pooling_layer=False)
    word, proj = svd_factorize(bert.embeddings.word_embeddings.weight.detach(), embedding_size)  # (V, E), (E, H)
    with torch.no_grad():
        emb = albert.embeddings
        emb.word_embeddings.weight.copy_(word)
        emb.position_embeddings.weight.copy_(bert.embeddings.position_embeddings.weight @ proj.T)  # (P, E)
        emb.token_type_embeddings.weight.copy_(bert.embeddings.token_type_embeddings.weight @ proj.T)
        albert.encoder.embedding_hidden_mapping_in.weight.copy_(proj.T)  # Linear E -> H: weight (H, E)
        albert.encoder.embedding_hidden_mapping_in.bias.zero_()
    t = bert.encoder.layer[shared_from]
    mapping = {  # ALBERT layer name -> BERT layer module
        "attention.query": t.attention.self.query, "attention.key": t.attention.self.key,
        "attention.value": t.attention.self.value, "attention.dense": t.attention.output.dense,
        "attention.LayerNorm": t.attention.output.LayerNorm, "ffn": t.intermediate.dense,
        "ffn_output": t.output.dense, "full_layer_layer_norm": t.output.LayerNorm,
    }
    shared = albert.encoder.albert_layer_groups[0].albert_layers[0]
    for name, src in mapping.items():
        shared.get_submodule(name).load_state_dict(src.state_dict())
    return albert


def run(cfg: AlbertStudentConfig, *, progress: bool = True) -> RunReport:
    from transformers import AutoTokenizer, BertModel

    seed_everything(cfg.seed)
    base = base_model_path(cfg)
    tokenizer = AutoTokenizer.from_pretrained(base)
    sentences, sources = distillation_sentences(cfg, limit=cfg.train_sentences)
    teacher = BertModel.from_pretrained(base).eval()
    student = albert_from_bert(teacher, embedding_size=cfg.embedding_size, shared_from=cfg.shared_from)
    setup = distillation_setup(cfg, student, teacher, tokenizer, sentences, progress=progress)
    result = fit(setup, cfg, desc=NAME, progress=progress)
    out = output_dir(cfg, NAME)
    save_checkpoint(setup.model, tokenizer, out)
    scored = compare(*score_stsb(cfg, out, base))
    return finish(recipe=NAME, name=NAME, title="ALBERT-shaped student of MiniLM (E=128, one shared layer)", cfg=cfg,
                  fit=result, out=out, result=scored, variant="ALBERT",
                  paper="Lan et al. 2019 (ALBERT) §3.1 factorized embeddings + cross-layer sharing",
                  data={**sources, "sentences": str(len(sentences))},
                  notes=f"AlbertModel: E = {cfg.embedding_size} (truncated SVD of MiniLM's embeddings), one layer "
                        f"(from teacher layer {cfg.shared_from}) applied {student.config.num_hidden_layers}×.")
