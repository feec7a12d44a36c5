"""Evaluation harness: GLUE-style, SQuAD, ROUGE and clinical benchmarks on any registry model.

``python -m evaluation run|score|leaderboard|bench``; see ``evaluation/__main__.py`` and the README.
Modules: ``tasks`` (the benchmark table), ``loaders``, ``metrics``, ``runner``, ``results``, ``dashboard``.
Nothing here imports gradio or loads a model at import time.
"""
