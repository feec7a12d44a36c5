"""Where models run and whether the Hub is reachable: decided once per process, fast, never at import.

Nothing here imports gradio or loads a model.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from functools import lru_cache

log = logging.getLogger(__name__)


def truthy(name: str) -> bool:
    """An environment flag: 1 / true / yes / on."""
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


@lru_cache(maxsize=1)
def hub_online(timeout: float = 1.5) -> bool:
    """True when the Hugging Face Hub is reachable. Decided once per process, in ≤ ``timeout`` s.

    HF_HUB_OFFLINE=1 (or TRANSFORMERS_OFFLINE / BERTVARIANTS_OFFLINE) short-circuits to False. When the probe
    fails we set HF_HUB_OFFLINE=1 so that no later hub call sits through its ~70 s of retries.
    """
    if any(truthy(v) for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "BERTVARIANTS_OFFLINE")):
        return False
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection(("huggingface.co", 443), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)  # DNS lookups ignore socket timeouts
    thread.start()
    thread.join(timeout)
    online = bool(result and result[0])
    if not online:
        os.environ["HF_HUB_OFFLINE"] = "1"
        log.info("Hugging Face Hub unreachable: offline mode (HF_HUB_OFFLINE=1)")
    return online


@lru_cache(maxsize=1)
def pick_device() -> str:
    """'cuda' when present, else 'cpu'; BERTVARIANTS_DEVICE overrides (e.g. 'cpu', 'cuda:1')."""
    forced = os.environ.get("BERTVARIANTS_DEVICE")
    if forced:
        return forced
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def default_dtype(device: str):
    """bf16 on CUDA when supported (else fp16), fp32 on CPU (bf16 autocast is an inference option)."""
    import torch

    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32
