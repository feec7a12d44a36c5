"""bertvariants: the BERT variants explained, implemented to their papers, and run.

Library code only (PyTorch / tokenizers / transformers); the Gradio UI lives in ``bertvariants.ui``.
"""

__version__ = "0.1.0"
