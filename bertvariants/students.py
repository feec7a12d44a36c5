"""Students that are not BERT-shaped: Tang et al. 2019's BiLSTM (Distilling Task-Specific Knowledge from BERT
into Simple Neural Networks, §3.1 / §4.2), saved as safetensors + a config.json with ``"architectures":
["BiLSTMStudent"]``. :mod:`bertvariants.serving.formats` recognises that directory format and loads it for the
``sequence-classification`` kind; its ``forward`` accepts a tokenizer's batch, so ``inference.classify`` runs it
like any classifier.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

ARCHITECTURE = "BiLSTMStudent"  # what config.json records; bertvariants.serving.formats recognises it


@dataclass
class BiLSTMConfig:
    """Tang et al. §4.2 single-sentence model: 300-d embeddings, one BiLSTM layer with 150 units per direction,
    the two final states concatenated, a 400-unit ReLU layer, then the classifier."""

    vocab_size: int = 30522
    embedding_dim: int = 300
    hidden_size: int = 150
    fc_size: int = 400
    num_labels: int = 2
    dropout: float = 0.1
    pad_token_id: int = 0
    id2label: dict = field(default_factory=lambda: {0: "NEGATIVE", 1: "POSITIVE"})
    # > 0: the embedding table stays frozen (e.g. the packaged MiniLM's, recomputed at load, not stored) and a
    # trained low-rank correction E + U·V (U: vocab × r, V: r × dim; LoRA's idea, Hu et al. 2021 §4.1) adapts it
    embedding_rank: int = 0

    def to_json(self) -> dict:
        d = asdict(self)
        d["id2label"] = {str(k): v for k, v in self.id2label.items()}
        d["label2id"] = {v: int(k) for k, v in self.id2label.items()}
        return {"architectures": [ARCHITECTURE], "model_type": "bilstm-student", **d}

    @classmethod
    def from_json(cls, d: dict) -> "BiLSTMConfig":
        known = {f for f in cls.__dataclass_fields__}
        kw = {k: v for k, v in d.items() if k in known}
        if "id2label" in kw:
            kw["id2label"] = {int(k): v for k, v in kw["id2label"].items()}
        return cls(**kw)


@dataclass
class StudentOutput:
    logits: torch.Tensor  # (B, C)


class BiLSTMStudent(nn.Module):
    """Tang et al.'s BiLSTM student. ``forward`` accepts a tokenizer's batch, so inference.classify runs it."""

    def __init__(self, config: BiLSTMConfig):
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.embedding_dim, padding_idx=config.pad_token_id)
        if config.embedding_rank:
            r = config.embedding_rank
            self.embedding_delta_u = nn.Parameter(torch.zeros(config.vocab_size, r))  # U = 0: starts at E exactly
            self.embedding_delta_v = nn.Parameter(torch.randn(r, config.embedding_dim) / r ** 0.5)
        self.lstm = nn.LSTM(config.embedding_dim, config.hidden_size, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(config.dropout)
        self.fc = nn.Linear(2 * config.hidden_size, config.fc_size)
        self.classifier = nn.Linear(config.fc_size, config.num_labels)

    def input_embeddings(self, input_ids: torch.Tensor) -> torch.Tensor:
        """E[ids] (+ the low-rank correction U[ids]·V). (B, T) -> (B, T, E)"""
        x = self.embedding(input_ids)  # (B, T, E)
        if self.config.embedding_rank:
            x = x + self.embedding_delta_u[input_ids] @ self.embedding_delta_v  # (B, T, r) @ (r, E)
        return x

    def logits_from_embeddings(self, embeddings: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` after the embedding layer, with no padding (every row has all T tokens): what saliency
        differentiates through (a recurrent model has no ``inputs_embeds``). (B, T, E) -> (B, C)"""
        _, (h_n, _) = self.lstm(self.dropout(embeddings))  # h_n: (2, B, H) final forward / backward states
        h = torch.cat([h_n[0], h_n[1]], dim=-1)  # (B, 2H)
        return self.classifier(self.dropout(torch.relu(self.fc(h))))  # (B, C)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **_) -> StudentOutput:
        x = self.dropout(self.input_embeddings(input_ids))  # (B, T, E)
        if attention_mask is None or bool(attention_mask.all()):
            # no padding (always so at batch 1): the plain LSTM gives the same final states as the packed one
            # without pack/unpack bookkeeping, which dominates a one-sentence forward pass
            _, (h_n, _) = self.lstm(x)
        else:
            lengths = attention_mask.sum(-1).clamp(min=1).cpu()  # (B,)
            packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            _, (h_n, _) = self.lstm(packed)  # h_n: (2, B, H): final forward and backward states
        h = torch.cat([h_n[0], h_n[1]], dim=-1)  # (B, 2H)
        h = self.dropout(torch.relu(self.fc(h)))  # (B, fc)
        return StudentOutput(logits=self.classifier(h))  # (B, C)

    def save_pretrained(self, directory: str | Path, tokenizer=None) -> Path:
        """config.json ("architectures": ["BiLSTMStudent"]) + model.safetensors (+ the tokenizer's files)."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "config.json").write_text(json.dumps(self.config.to_json(), indent=2), encoding="utf-8")
        save_file({k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()},
                  str(directory / "model.safetensors"))
        if tokenizer is not None:
            tokenizer.save_pretrained(directory)
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> "BiLSTMStudent":
        from safetensors.torch import load_file

        directory = Path(directory)
        config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
        if ARCHITECTURE not in config.get("architectures", []):
            raise ValueError(f"{directory} is not a {ARCHITECTURE} checkpoint "
                             f"(architectures: {config.get('architectures')})")
        model = cls(BiLSTMConfig.from_json(config))
        model.load_state_dict(load_file(str(directory / "model.safetensors")))
        return model.eval()
