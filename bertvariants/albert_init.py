"""An ALBERT-shaped encoder initialised from a BERT (Lan et al. 2019, §3.1): the two parameter reductions.

- factorized embeddings (§3.1): V×E + E×H with E = 128 instead of V×H. Initialised by truncated SVD of the
  teacher's token-embedding matrix W ≈ U_E Σ_E V_Eᵀ: the V×E table is U_E Σ_E and the E→H projection is
  V_Eᵀ (the best rank-E approximation, Eckart–Young); position and segment tables are projected onto the same
  E-dimensional subspace (P V_E);
- cross-layer sharing (§3.1, "all-shared"): one transformer layer applied L times, initialised from one
  teacher layer (``shared_from``); with ``hidden_groups`` = G > 1 (the ``num_hidden_groups`` of ALBERT's
  configuration), G shared layers, each applied to L / G consecutive positions and initialised from the teacher
  layer ``shared_from`` places into its span.

The SVD's singular vectors are defined only up to sign, and LAPACK builds differ in which sign they return;
:func:`svd_factorize` fixes it (the largest-magnitude entry of each right singular vector is positive), so the
factorization — and a shipped student whose V×E table is recomputed from the packaged MiniLM at load
(:mod:`bertvariants.serving.shipped`, base ``albert-minilm``) — is the same on every machine.
"""

from __future__ import annotations

import torch


def svd_factorize(weight: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Best rank-``rank`` factorization W (V×H) ≈ A (V×E) @ B (E×H), A = U_E Σ_E, B = V_Eᵀ (Eckart–Young),
    with each component's sign fixed (largest-|·| entry of its row of B positive)."""
    if not 1 <= rank <= min(weight.shape):
        raise ValueError(f"rank must be in [1, {min(weight.shape)}], got {rank}")
    u, s, vh = torch.linalg.svd(weight.float(), full_matrices=False)
    u, s, vh = u[:, :rank], s[:rank], vh[:rank]
    pivot = vh.gather(1, vh.abs().argmax(dim=1, keepdim=True)).squeeze(1)  # (E,)
    sign = torch.where(pivot < 0, -1.0, 1.0)
    return u * (s * sign), vh * sign[:, None]


def albert_from_bert(bert, *, embedding_size: int = 128, shared_from: int = 0, hidden_groups: int = 1):
    """An AlbertModel (``hidden_groups`` shared layers, by default one; factorized embeddings) initialised from a
    transformers BertModel."""
    from transformers import AlbertConfig, AlbertModel

    c = bert.config
    if not 0 <= shared_from < c.num_hidden_layers:
        raise ValueError(f"shared_from must be a teacher layer in [0, {c.num_hidden_layers}), got {shared_from}")
    if hidden_groups < 1 or c.num_hidden_layers % hidden_groups:
        raise ValueError(f"hidden_groups must divide the {c.num_hidden_layers} layers, got {hidden_groups}")
    span = c.num_hidden_layers // hidden_groups
    cfg = AlbertConfig(vocab_size=c.vocab_size, embedding_size=embedding_size, hidden_size=c.hidden_size,
                       num_hidden_layers=c.num_hidden_layers, num_hidden_groups=hidden_groups, inner_group_num=1,
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
    for g in range(hidden_groups):  # group g serves layers g·span … (g+1)·span − 1
        t = bert.encoder.layer[g * span + min(shared_from, span - 1)]
        mapping = {  # ALBERT layer name -> BERT layer module
            "attention.query": t.attention.self.query, "attention.key": t.attention.self.key,
            "attention.value": t.attention.self.value, "attention.dense": t.attention.output.dense,
            "attention.LayerNorm": t.attention.output.LayerNorm, "ffn": t.intermediate.dense,
            "ffn_output": t.output.dense, "full_layer_layer_norm": t.output.LayerNorm,
        }
        shared = albert.encoder.albert_layer_groups[g].albert_layers[0]
        for name, src in mapping.items():
            shared.get_submodule(name).load_state_dict(src.state_dict())
    return albert
