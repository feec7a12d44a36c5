"""Where models run and whether the Hub is reachable: decided once per process, fast, never at import.

Nothing here imports gradio or loads a model.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass
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


@dataclass(frozen=True)
class CpuCapabilities:
    """What this CPU computes natively, from its flags (x86 /proc/cpuinfo, Arm ``Features``). The one place the
    project reads them: bf16 autocast is a speed-up only with native bf16; int8 matmuls use VNNI / AMX-INT8."""

    native_bf16: bool  # AVX-512 BF16, AMX-BF16 or Arm BF16: bf16 matmuls faster than fp32
    int8_dot: bool  # AVX-512 VNNI, AVX-VNNI, AMX-INT8 or Arm dot products: int8 matmuls in hardware
    amx: bool
    model: str  # the CPU's name, for reports

    def describe(self) -> str:
        has = [name for name, on in (("native bf16", self.native_bf16), ("int8 dot products", self.int8_dot),
                                      ("AMX", self.amx)) if on]
        return f"{self.model or 'unknown CPU'} ({', '.join(has) or 'no bf16 or int8 matmul units'})"


@lru_cache(maxsize=1)
def cpu_capabilities() -> CpuCapabilities:
    """This CPU's capabilities, read once per process (an unreadable /proc/cpuinfo means none)."""
    import platform

    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            info = f.read()
    except OSError:
        info = ""
    return parse_cpuinfo(info, machine=platform.machine(), fallback_model=platform.processor())


def parse_cpuinfo(info: str, *, machine: str = "x86_64", fallback_model: str = "") -> CpuCapabilities:
    """:class:`CpuCapabilities` from the text of /proc/cpuinfo (x86 ``flags``, Arm ``Features``)."""
    import re

    flags = set(re.findall(r"[a-z0-9_]+", " ".join(re.findall(r"^(?:flags|Features)\s*:(.*)$", info, re.M))))
    model = next(iter(re.findall(r"^model name\s*:\s*(.+)$", info, re.M)), fallback_model)
    arm = machine.lower() in ("aarch64", "arm64")
    return CpuCapabilities(
        native_bf16=bool(flags & {"avx512_bf16", "amx_bf16"}) or (arm and "bf16" in flags),
        int8_dot=bool(flags & {"avx512_vnni", "avx_vnni", "amx_int8"}) or (arm and "asimddp" in flags),
        amx=bool(flags & {"amx_bf16", "amx_int8", "amx_tile"}), model=model.strip())
