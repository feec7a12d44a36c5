"""Which source tokens each generated token of a summary rests on: gradient × input of its probability.

For a summarizer p(y | x) and its greedy output y_1..y_n, each generated token's probability
F_t = p(y_t | x, y_<t) is attributed to the source tokens' input embeddings by gradient × input (Shrikumar et al.
2016 §2; the method inseq, Sarti et al. 2023, calls "input x gradient" for generators): a_t,i = x_i · ∂F_t/∂x_i
summed over the embedding dimensions. One forward pass over source + summary (teacher-forced), then one backward
pass per generated token through the same graph: cheap enough for a CPU at a few dozen tokens.

- a **decoder-only** instruction model (the SmolLM2 stand-in offline): the source is the document's tokens inside
  its chat prompt (:func:`bertvariants.smollm.build_prompt`); the instruction's own tokens are left out of the map;
- an **encoder-decoder** (BART online): the source is the encoder's input.

A bf16 model runs on a float32 copy here (made once per model): CPUs without native bf16 emulate it slowly, and
gradients of a probability are better taken in fp32.
"""

from __future__ import annotations

import copy
import threading
import weakref
from dataclasses import dataclass

import numpy as np
import torch

from .checks import text as checked_text, token_count
DEFAULT_NEW_TOKENS = 8  # ≈ 25 s for SmolLM2-135M on 2 CPU cores (fp32); a GPU does it in well under a second
MAX_NEW_TOKENS = 24  # one backward pass each
MAX_SOURCE_TOKENS = 256
MAX_WORDS = 120  # of the document, in the prompt (the view attributes the lead of a long article)

_FLOAT_COPIES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def float_copy(model):
    """``model`` itself when it computes in float32, else a float32 copy made once (shares nothing mutable)."""
    if next(model.parameters()).dtype == torch.float32:
        return model
    with _LOCK:
        if model not in _FLOAT_COPIES:
            _FLOAT_COPIES[model] = copy.deepcopy(model).float().eval()
        return _FLOAT_COPIES[model]


@dataclass(frozen=True)
class GenerationAttribution:
    source_tokens: list[str]  # the document's tokens
    generated_tokens: list[str]
    probabilities: np.ndarray  # (n,) p(y_t | x, y_<t)
    scores: np.ndarray  # (n, S) gradient × input of p(y_t) per source token
    text: str  # the generated continuation, decoded
    architecture: str

    def top_sources(self, t: int, k: int = 3) -> list[tuple[str, float]]:
        order = np.argsort(-self.scores[t], kind="stable")[:k]
        return [(self.source_tokens[i], float(self.scores[t, i])) for i in order]


def _decoder_source(tokenizer, document: str) -> tuple[torch.Tensor, list[int]]:
    """The prompt's ids and the positions of the document's tokens inside it."""
    from .smollm import build_prompt

    if getattr(tokenizer, "chat_template", None):
        prompt = build_prompt(tokenizer, document, max_words=MAX_WORDS)
    else:
        prompt = " ".join(document.split()[:MAX_WORDS])
    doc = " ".join(document.split()[:MAX_WORDS])
    start = prompt.find(doc)
    enc = tokenizer(prompt, add_special_tokens=False, return_offsets_mapping=True, return_tensors="pt")
    spans = enc["offset_mapping"][0].tolist()
    inside = [i for i, (a, b) in enumerate(spans) if b > a and start <= a and b <= start + len(doc)]
    return enc["input_ids"], inside


def _check(tokenizer, n_source: int, max_new_tokens: int) -> None:
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or \
            not 1 <= max_new_tokens <= MAX_NEW_TOKENS:
        raise ValueError(f"the number of generated tokens must be a whole number between 1 and {MAX_NEW_TOKENS}, "
                         f"got {max_new_tokens!r}")
    if n_source == 0:
        raise ValueError("the document has no tokens to attribute to")
    token_count(n_source, "the document", limit=MAX_SOURCE_TOKENS,
                why="for the attribution (one backward pass per generated token through all of them)")


def attribute_generation(model, tokenizer, document: str, *,
                         max_new_tokens: int = DEFAULT_NEW_TOKENS) -> GenerationAttribution:
    """Greedy generation from ``document``, then gradient × input of each generated token's probability with
    respect to the source tokens' embeddings (see the module docstring)."""
    checked_text(document, "the document", hint="please paste some text")
    seq2seq = bool(getattr(model.config, "is_encoder_decoder", False))
    net = float_copy(model)
    device = next(net.parameters()).device
    if seq2seq:
        ids = tokenizer(" ".join(document.split()[:MAX_WORDS]), return_tensors="pt")["input_ids"]
        source = list(range(ids.shape[1]))
    else:
        ids, source = _decoder_source(tokenizer, document)
    _check(tokenizer, len(source), max_new_tokens)
    ids = ids.to(device)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    with torch.no_grad():
        out = net.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False, num_beams=1,
                           max_new_tokens=max_new_tokens, pad_token_id=pad)
        table = net.get_input_embeddings()
        x = table(ids)[0].clone()  # (P, E) the source side's input embeddings
    x.requires_grad_(True)
    with torch.enable_grad():
        if seq2seq:
            dec = out[:, :-1]
            targets = out[0, 1:]
            logits = net(inputs_embeds=x[None], attention_mask=torch.ones_like(ids), decoder_input_ids=dec).logits[0]
        else:
            new = out[:, ids.shape[1]:]
            targets = new[0]
            full = torch.cat([x, table(new)[0].detach()])  # the summary's own embeddings are not attributed
            logits = net(inputs_embeds=full[None]).logits[0, ids.shape[1] - 1:-1]
        probs = logits.float().softmax(-1).gather(-1, targets[:, None])[:, 0]  # (n,)
        rows = []
        for t in range(len(targets)):
            (grad,) = torch.autograd.grad(probs[t], x, retain_graph=t + 1 < len(targets))
            rows.append((x.detach() * grad).sum(-1)[source].double().cpu().numpy())
    src = [str(s) for s in tokenizer.convert_ids_to_tokens(ids[0, source].tolist())]
    gen = [str(s) for s in tokenizer.convert_ids_to_tokens(targets.tolist())]
    text = tokenizer.decode(targets, skip_special_tokens=True).strip()
    return GenerationAttribution(src, gen, probs.detach().double().cpu().numpy(), np.stack(rows), text,
                                 type(model).__name__)
