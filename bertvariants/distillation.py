"""Knowledge distillation: Hinton et al. 2015, DistilBERT (Sanh et al. 2019), TinyBERT (Jiao et al. 2020),
and Tang et al. 2019's logit-regression objective (the BiLSTM student itself: :mod:`bertvariants.students`).

Every loss is a pure tensor function with keyword-only hyper-parameters; modules (the BiLSTM student,
TinyBERT's projection) only hold weights. The training recipes import from here.

Hinton §2: a temperature T softens the softmax, ``q_i = exp(z_i/T) / Σ_j exp(z_j/T)``; the student is
trained on the teacher's soft targets (both at the same T) and on hard targets (at T = 1):

    total = α · T² · CE(softmax(z_t/T), softmax(z_s/T))  +  β · CE(hard, softmax(z_s))

>>> import torch
>>> out = distillation_objective(torch.tensor([[2.0, 0.0]]), torch.tensor([[3.0, 0.0]]),
...                              labels=torch.tensor([0]), temperature=2.0, alpha=0.5, beta=0.5)
>>> round(out.loss.item(), 4)
1.0548
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal, Sequence

import plotly.graph_objects as go
import torch
import torch.nn.functional as F
from torch import nn

from .checks import number
from .figures import finish
from .figures import title as make_title

HARD_TARGETS = ("gold", "teacher")
MAX_CLASSES = 50  # user-entered logits in the explorer


# --------------------------------------------------------------------------------------------
# Hinton et al. 2015: temperature, soft targets, the two-term objective
# --------------------------------------------------------------------------------------------
def check_temperature(temperature: float) -> float:
    return number(temperature, "temperature T", lo=0.0, lo_open=True)


def softmax_t(logits: torch.Tensor, *, temperature: float = 1.0) -> torch.Tensor:
    """Softmax at temperature T (Hinton §2, eq. 1): ``softmax(z / T)`` over the last dim. (..., C) -> (..., C)."""
    return torch.softmax(logits.float() / check_temperature(temperature), dim=-1)


def soft_cross_entropy(student_logits: torch.Tensor, teacher_logits: torch.Tensor, *,
                       temperature: float = 1.0) -> torch.Tensor:
    """Mean over the batch of ``-Σ_c p_t(c) log p_s(c)`` with both distributions at temperature T. (B, C) -> ()

    Differs from KL(p_t || p_s) only by the teacher's entropy, a constant w.r.t. the student: same gradients.
    """
    t = check_temperature(temperature)
    soft_targets = torch.softmax(teacher_logits.float() / t, dim=-1).detach()  # (B, C): the teacher is not trained
    log_q = torch.log_softmax(student_logits.float() / t, dim=-1)  # (B, C)
    return -(soft_targets * log_q).sum(-1).mean()


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, *,
                      temperature: float = 2.0) -> torch.Tensor:
    """Soft-target loss of Hinton §2: cross-entropy at temperature T, multiplied by T². (B, C), (B, C) -> ()

    Why T²: the gradient of the soft cross-entropy w.r.t. the student logits is (q_i − p_i)/T, and in the
    high-temperature limit ≈ (z_i − v_i)/(N·T²). Multiplying by T² keeps the soft term's gradient magnitude
    roughly independent of T, so the balance between soft and hard targets does not change when T is tuned.
    """
    t = check_temperature(temperature)
    return soft_cross_entropy(student_logits, teacher_logits, temperature=t) * t * t


def hard_targets(teacher_logits: torch.Tensor, labels: torch.Tensor | None = None, *,
                 source: Literal["gold", "teacher"] = "gold") -> torch.Tensor:
    """The hard targets of the student loss: ``gold`` labels (Hinton §2) or the teacher's argmax (pseudo-labels,
    as in the seed code and useful on unlabelled transfer sets). (B, C) [, (B,)] -> (B,) long."""
    if source not in HARD_TARGETS:
        raise ValueError(f"hard targets must be one of {', '.join(HARD_TARGETS)}, got {source!r}")
    if source == "teacher":
        return teacher_logits.argmax(-1)
    if labels is None:
        raise ValueError("hard targets 'gold' need labels; pass labels=... or use hard_target='teacher'")
    return labels.long()


def student_loss(student_logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the student at T = 1 against hard targets (Hinton §2, the second objective). -> ()"""
    return F.cross_entropy(student_logits.float(), targets.long())


def check_weights(alpha: float, beta: float) -> tuple[float, float]:
    a, b = number(alpha, "α", lo=0.0), number(beta, "β", lo=0.0)
    if a + b == 0:
        raise ValueError("α + β = 0: both loss terms would be switched off; give at least one a positive weight")
    return a, b


@dataclass(frozen=True)
class DistillationLosses:
    """The terms of Hinton's objective: ``loss = alpha * distill + beta * student``."""

    loss: torch.Tensor
    distill: torch.Tensor  # T² · CE(soft targets, soft predictions)
    student: torch.Tensor  # CE(hard targets, student at T=1)
    hard_targets: torch.Tensor  # (B,)
    hard_target_source: str
    temperature: float
    alpha: float
    beta: float


def distillation_objective(student_logits: torch.Tensor, teacher_logits: torch.Tensor, *,
                           labels: torch.Tensor | None = None, temperature: float = 2.0, alpha: float = 0.5,
                           beta: float = 0.5, hard_target: Literal["gold", "teacher"] = "gold") -> DistillationLosses:
    """α · distillation + β · student loss (Hinton §2). ``hard_target`` says whether gold labels or the teacher's
    argmax serve as hard targets. (B, C), (B, C) -> DistillationLosses."""
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student logits {tuple(student_logits.shape)} and teacher logits "
                         f"{tuple(teacher_logits.shape)} must have the same shape")
    t = check_temperature(temperature)
    a, b = check_weights(alpha, beta)
    targets = hard_targets(teacher_logits, labels, source=hard_target)
    distill = distillation_loss(student_logits, teacher_logits, temperature=t)
    student = student_loss(student_logits, targets)
    return DistillationLosses(loss=a * distill + b * student, distill=distill, student=student, hard_targets=targets,
                              hard_target_source=hard_target, temperature=t, alpha=a, beta=b)


def dark_knowledge(probs: torch.Tensor) -> torch.Tensor:
    """The mass the distribution puts on the non-argmax classes, ``1 − max_c p(c)`` (Hinton §1: the relative
    probabilities of wrong answers carry what the teacher learned about similarity). (..., C) -> (...)"""
    return 1.0 - probs.max(-1).values


def parse_logits(text: str) -> list[float]:
    """Parse user-entered logits ("2.1, -0.3 1.7") into floats, with clear errors."""
    parts = [p for p in re.split(r"[\s,;]+", (text or "").strip()) if p]
    if not parts:
        raise ValueError("enter at least two logits separated by commas, e.g. 3.0, 1.0, -1.0")
    values = []
    for p in parts:
        try:
            v = float(p)
        except ValueError:
            raise ValueError(f"{p!r} is not a number; logits are numbers separated by commas") from None
        if not math.isfinite(v):
            raise ValueError(f"logits must be finite numbers, got {p!r}")
        values.append(v)
    if not 2 <= len(values) <= MAX_CLASSES:
        raise ValueError(f"need between 2 and {MAX_CLASSES} logits (one per class), got {len(values)}")
    return values


# --------------------------------------------------------------------------------------------
# DistilBERT (Sanh et al. 2019): triple loss and student initialisation
# --------------------------------------------------------------------------------------------
def cosine_embedding_loss(student_hidden: torch.Tensor, teacher_hidden: torch.Tensor,
                          attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """DistilBERT's L_cos (§3): ``mean(1 − cos(h_s, h_t))`` over non-padding tokens, aligning the directions of
    the student's and teacher's hidden states (torch's CosineEmbeddingLoss with target +1). (B, T, H) x2 -> ()"""
    if student_hidden.shape != teacher_hidden.shape:
        raise ValueError(f"hidden states must match: student {tuple(student_hidden.shape)} vs teacher "
                         f"{tuple(teacher_hidden.shape)} (DistilBERT keeps the teacher's hidden size)")
    cos = F.cosine_similarity(student_hidden.float(), teacher_hidden.float(), dim=-1)  # (B, T)
    if attention_mask is None:
        return (1 - cos).mean()
    mask = attention_mask.to(cos.dtype)
    return ((1 - cos) * mask).sum() / mask.sum().clamp(min=1)


def mlm_loss(mlm_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Masked-LM cross-entropy over positions whose label is not -100. (B, T, V), (B, T) -> ()"""
    return F.cross_entropy(mlm_logits.float().reshape(-1, mlm_logits.size(-1)), labels.reshape(-1), ignore_index=-100)


@dataclass(frozen=True)
class TripleLoss:
    """DistilBERT's training loss: ``loss = alpha_ce·L_ce + alpha_mlm·L_mlm + alpha_cos·L_cos``."""

    loss: torch.Tensor
    ce: torch.Tensor  # soft-target distillation over masked positions, × T²
    mlm: torch.Tensor
    cos: torch.Tensor


def distilbert_triple_loss(student_mlm_logits: torch.Tensor, teacher_mlm_logits: torch.Tensor, labels: torch.Tensor,
                           student_hidden: torch.Tensor, teacher_hidden: torch.Tensor,
                           attention_mask: torch.Tensor | None = None, *, temperature: float = 2.0,
                           alpha_ce: float = 5.0, alpha_mlm: float = 2.0, alpha_cos: float = 1.0) -> TripleLoss:
    """DistilBERT §3: L = α_ce·L_ce + α_mlm·L_mlm + α_cos·L_cos. Defaults are the official training script's
    (T=2, α_ce=5, α_mlm=2, α_cos=1). L_ce is computed on the masked positions (labels ≠ -100), like the
    official distiller. Logits (B, T, V), labels (B, T), hidden (B, T, H) -> TripleLoss."""
    sel = labels != -100  # (B, T)
    if not bool(sel.any()):
        raise ValueError("no masked positions (all labels are -100): the MLM and distillation terms are undefined")
    ce = distillation_loss(student_mlm_logits[sel], teacher_mlm_logits[sel], temperature=temperature)  # (M, V)
    mlm = mlm_loss(student_mlm_logits, labels)
    cos = cosine_embedding_loss(student_hidden, teacher_hidden, attention_mask)
    return TripleLoss(loss=alpha_ce * ce + alpha_mlm * mlm + alpha_cos * cos, ce=ce, mlm=mlm, cos=cos)


def every_other_layer(num_teacher_layers: int) -> list[int]:
    """DistilBERT §3 "taking one layer out of two": teacher layers 0, 2, 4, ... (12 -> 6 layers)."""
    if num_teacher_layers < 1:
        raise ValueError(f"teacher needs at least one layer, got {num_teacher_layers}")
    return list(range(0, num_teacher_layers, 2))


def init_student_from_teacher(teacher, *, layers: Sequence[int] | None = None):
    """Build a smaller ``BertModel`` from a teacher ``BertModel`` (DistilBERT §3, student initialisation).

    The student keeps the teacher's hidden size, embeddings and pooler, and copies the encoder layers listed
    in ``layers`` (default: every other layer). A model with a ``.bert`` attribute (a BERT task model) is
    accepted and its encoder is used. Returns a new BertModel; the teacher is unchanged.
    """
    from transformers import BertModel

    base = getattr(teacher, "bert", teacher)
    if not isinstance(base, BertModel):
        raise ValueError("teacher must be a transformers BertModel (or have a .bert one), "
                         f"got {type(teacher).__name__}")
    n = base.config.num_hidden_layers
    layers = list(every_other_layer(n) if layers is None else layers)
    if not layers or any(not 0 <= i < n for i in layers):
        raise ValueError(f"layers must be a non-empty list of teacher layer indices in [0, {n}), got {layers}")
    config = base.config.__class__(**{**base.config.to_dict(), "num_hidden_layers": len(layers)})
    student = BertModel(config, add_pooling_layer=base.pooler is not None)
    student.embeddings.load_state_dict(base.embeddings.state_dict())
    for s, t in enumerate(layers):
        student.encoder.layer[s].load_state_dict(base.encoder.layer[t].state_dict())
    if base.pooler is not None:
        student.pooler.load_state_dict(base.pooler.state_dict())
    return student


# --------------------------------------------------------------------------------------------
# TinyBERT (Jiao et al. 2020): layer mapping and layer-wise losses
# --------------------------------------------------------------------------------------------
def uniform_layer_map(num_student_layers: int, num_teacher_layers: int) -> list[int]:
    """TinyBERT §3.1 uniform strategy n = g(m) = m·N/M for m = 0..M, in ``hidden_states`` indices
    (0 = embedding output, which g(0) = 0 maps to the teacher's embeddings). 4-layer student, 12-layer teacher:
    [0, 3, 6, 9, 12]."""
    m, n = int(num_student_layers), int(num_teacher_layers)
    if m < 1 or n < 1:
        raise ValueError(f"layer counts must be ≥ 1, got student {m}, teacher {n}")
    if n % m:
        raise ValueError(f"the uniform map needs the teacher depth ({n}) to be a multiple of the student's ({m})")
    return [i * (n // m) for i in range(m + 1)]


class HiddenProjection(nn.Module):
    """TinyBERT's learnable W (§3.1, eq. 8–9): maps student states (d') into the teacher's space (d)."""

    def __init__(self, student_dim: int, teacher_dim: int):
        super().__init__()
        self.proj = nn.Linear(student_dim, teacher_dim)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:  # (B, T, d') -> (B, T, d)
        return self.proj(hidden)


def hidden_mse_loss(student_hidden: torch.Tensor, teacher_hidden: torch.Tensor,
                    projection: nn.Module | None = None) -> torch.Tensor:
    """TinyBERT eq. 8/9: MSE(H_S·W_h, H_T) (hidden layers) or MSE(E_S·W_e, E_T) (embeddings).
    (B, T, d'), (B, T, d) -> ()"""
    projected = projection(student_hidden) if projection is not None else student_hidden
    if projected.shape != teacher_hidden.shape:
        raise ValueError(f"projected student states {tuple(projected.shape)} do not match teacher states "
                         f"{tuple(teacher_hidden.shape)}: pass a HiddenProjection(student_dim, teacher_dim)")
    return F.mse_loss(projected.float(), teacher_hidden.float())


def attention_mse_loss(student_attention: torch.Tensor, teacher_attention: torch.Tensor,
                       attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """TinyBERT eq. 7: (1/h) Σ_i MSE(A_i^S, A_i^T) over the h heads. (B, h, T, T) x2 -> ()

    The paper distils the unnormalised attention scores; transformers returns softmax-normalised attentions,
    which the caller may pass instead (the loss is the same formula). With ``attention_mask`` (B, T) only
    (query, key) pairs of real tokens count, so padding never contributes.
    """
    if student_attention.shape != teacher_attention.shape:
        raise ValueError(f"attention maps must match (TinyBERT keeps the teacher's head count): student "
                         f"{tuple(student_attention.shape)} vs teacher {tuple(teacher_attention.shape)}")
    diff2 = (student_attention.float() - teacher_attention.float()) ** 2  # (B, h, T, T)
    if attention_mask is None:
        return diff2.mean()
    m = attention_mask.float()
    pair = (m[:, None, :, None] * m[:, None, None, :]).expand_as(diff2)  # (B, h, T, T)
    return (diff2 * pair).sum() / pair.sum().clamp(min=1)


@dataclass(frozen=True)
class TinyBertLosses:
    """TinyBERT's intermediate-layer losses (§3.1): ``loss = embedding + attention + hidden``."""

    loss: torch.Tensor
    embedding: torch.Tensor
    attention: torch.Tensor
    hidden: torch.Tensor
    layer_map: list[int]


def tinybert_layer_losses(student_hidden_states: Sequence[torch.Tensor], teacher_hidden_states: Sequence[torch.Tensor],
                          student_attentions: Sequence[torch.Tensor], teacher_attentions: Sequence[torch.Tensor],
                          attention_mask: torch.Tensor | None = None, *, projection: nn.Module | None = None,
                          layer_map: Sequence[int] | None = None) -> TinyBertLosses:
    """Embedding + attention + hidden-state MSE over the mapped layers (TinyBERT §3.1, eq. 7–9, 11).

    Inputs are a model's ``hidden_states`` (L+1 tensors (B, T, d), index 0 = embeddings) and ``attentions``
    (L tensors (B, h, T, T)), as returned with ``output_hidden_states=True, output_attentions=True``.
    Student layer m is matched to teacher layer ``layer_map[m]`` (default: the uniform map).
    """
    m = len(student_hidden_states) - 1
    n = len(teacher_hidden_states) - 1
    if len(student_attentions) != m or len(teacher_attentions) != n:
        raise ValueError("need one attention map per layer and L+1 hidden states (embeddings first)")
    layer_map = list(uniform_layer_map(m, n) if layer_map is None else layer_map)
    if len(layer_map) != m + 1 or layer_map[0] != 0 or any(not 0 <= j <= n for j in layer_map):
        raise ValueError(f"layer_map must have {m + 1} teacher indices in [0, {n}] starting with 0, got {layer_map}")
    emb = hidden_mse_loss(student_hidden_states[0], teacher_hidden_states[0], projection)
    hid = torch.stack([hidden_mse_loss(student_hidden_states[i], teacher_hidden_states[layer_map[i]], projection)
                       for i in range(1, m + 1)]).sum()
    # attentions[k] belongs to hidden_states[k + 1]
    att = torch.stack([attention_mse_loss(student_attentions[i - 1], teacher_attentions[layer_map[i] - 1],
                                          attention_mask) for i in range(1, m + 1)]).sum()
    return TinyBertLosses(loss=emb + att + hid, embedding=emb, attention=att, hidden=hid, layer_map=layer_map)


# --------------------------------------------------------------------------------------------
# Tang et al. 2019: a BiLSTM student and the logit MSE loss
# --------------------------------------------------------------------------------------------
def logit_mse_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """Tang et al. §3.2: L_distill = ||z_B − z_S||², the MSE between teacher and student logits. (B, C) x2 -> ()"""
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"logit shapes differ: student {tuple(student_logits.shape)}, "
                         f"teacher {tuple(teacher_logits.shape)}")
    return F.mse_loss(student_logits.float(), teacher_logits.float().detach())


def tang_objective(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, *,
                   alpha: float = 0.0) -> DistillationLosses:
    """Tang et al. §3.2: L = α·L_CE + (1 − α)·L_distill (they report α = 0, i.e. pure logit MSE, working best)."""
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    distill = logit_mse_loss(student_logits, teacher_logits)
    student = student_loss(student_logits, labels)
    return DistillationLosses(loss=alpha * student + (1 - alpha) * distill, distill=distill, student=student,
                              hard_targets=labels.long(), hard_target_source="gold", temperature=1.0,
                              alpha=1 - alpha, beta=alpha)


# --------------------------------------------------------------------------------------------
# Figures and model facts for the explorer
# --------------------------------------------------------------------------------------------
def num_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@dataclass(frozen=True)
class ParameterSplit:
    """A classifier's parameters in two parts that compare like with like across architectures: the token-embedding
    lookup (V × d rows, read not computed; a low-rank update of it, U·V, counted with it) and the rest (the
    transformer or LSTM layers and the heads: where a distilled student saves compute)."""

    embeddings: int
    rest: int

    @property
    def total(self) -> int:
        return self.embeddings + self.rest


def parameter_split(model: nn.Module) -> ParameterSplit:
    """Split ``model``'s parameters into the token-embedding table (``get_input_embeddings()``, else a top-level
    ``embedding`` module, plus parameters named ``embedding_delta*``) and everything else."""
    table = (model.get_input_embeddings() if hasattr(model, "get_input_embeddings")
             else getattr(model, "embedding", None))
    in_table = {id(p) for p in table.parameters()} if isinstance(table, nn.Module) else set()
    emb = rest = 0
    for name, p in model.named_parameters():
        if id(p) in in_table or name.rsplit(".", 1)[-1].startswith("embedding_delta"):
            emb += p.numel()
        else:
            rest += p.numel()
    return ParameterSplit(embeddings=emb, rest=rest)


def temperature_figure(logits: Sequence[float], *, temperature: float,
                       labels: Sequence[str] | None = None) -> go.Figure:
    """Bars of softmax(z) at T = 1 and softmax(z / T), side by side, with the dark knowledge in the title."""
    z = torch.tensor(list(logits), dtype=torch.float32)
    labels = list(labels) if labels else [f"class {i}" for i in range(len(z))]
    p1 = softmax_t(z, temperature=1.0)
    pt = softmax_t(z, temperature=temperature)
    hover = "%{x}: %{y:.3f}<extra>%{fullData.name}</extra>"  # the float32 probabilities, rounded
    fig = go.Figure([
        go.Bar(name="T = 1 (hard-ish)", x=labels, y=p1.tolist(), text=[f"{v:.3f}" for v in p1.tolist()],
               textangle=0, hovertemplate=hover),
        go.Bar(name=f"T = {temperature:g} (soft targets)", x=labels, y=pt.tolist(),
               text=[f"{v:.3f}" for v in pt.tolist()], textangle=0, hovertemplate=hover),
    ])
    return finish(fig, title=make_title("Soft targets softmax(z / T)",
                                        f"dark knowledge (non-argmax mass) {dark_knowledge(p1).item():.3f} at T=1 "
                                        f"→ {dark_knowledge(pt).item():.3f} at T={temperature:g}"),
                  barmode="group", xaxis_title="class", yaxis=dict(title="probability", range=[0, 1]),
                  uniformtext=dict(minsize=8, mode="hide"))  # many classes: numbers too small to read stay on hover
