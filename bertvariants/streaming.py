"""Generation that shows itself: a ``generate`` stopping criterion that reports the text so far after every token.

Used by the summarizers (:func:`bertvariants.bart.summarize`, :func:`bertvariants.smollm.summarize`) so the BART tab
can stream a summary to the page while it is written, beam search included.
"""

from __future__ import annotations

import torch


class StepReporter:
    """A ``generate`` stopping criterion that never stops: after every generated token it calls ``on_step`` with the
    first sequence's new tokens decoded (under beam search the first running beam), so a page can show a summary
    while it is being written. ``prompt_length``: tokens before the generated ones (a decoder-only prompt)."""

    def __init__(self, tokenizer, on_step, prompt_length: int = 0):
        self.tokenizer, self.on_step, self.prompt_length = tokenizer, on_step, prompt_length

    def __call__(self, input_ids: torch.Tensor, scores, **kwargs) -> torch.Tensor:
        self.on_step(self.tokenizer.decode(input_ids[0, self.prompt_length:], skip_special_tokens=True))
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)


def step_criteria(tokenizer, on_step, prompt_length: int = 0):
    """``stopping_criteria`` for ``generate``: a :class:`StepReporter` when ``on_step`` is given, else None."""
    if on_step is None:
        return None
    from transformers import StoppingCriteria, StoppingCriteriaList

    reporter = type("Reporter", (StepReporter, StoppingCriteria), {})(tokenizer, on_step, prompt_length)
    return StoppingCriteriaList([reporter])
