"""``python -m bertvariants.ui.gpu_seconds``: each endpoint's seconds for one default request on this machine, and
whether it runs a model — the figures behind :data:`bertvariants.ui.zerogpu.GPU_SECONDS` (ZeroGPU durations)."""

from __future__ import annotations

import logging
import os
import time

from .. import serving
from . import build_demo, queue, serve

log = logging.getLogger("bertvariants.zerogpu")


def measure(host_url: str) -> dict[str, tuple[float, int]]:
    """Each endpoint's default request timed twice against a running app (the second call is kept), with how many
    model-cache lookups it made in-process (0: it runs no model). For ``python -m bertvariants.ui.gpu_seconds``."""
    from gradio_client import Client

    lookups = {"n": 0}
    real_get = serving.CACHE.get

    def counting(key, loader, **kw):
        if key[0] != "object":
            lookups["n"] += 1
        return real_get(key, loader, **kw)

    serving.CACHE.get = counting
    client = Client(host_url, verbose=False)
    out = {}
    for name, info in sorted(client.view_api(print_info=False, return_format="dict")["named_endpoints"].items()):
        kwargs = {p["parameter_name"]: p["parameter_default"] for p in info["parameters"]
                  if p["parameter_has_default"]}
        if len(kwargs) < len(info["parameters"]):
            continue  # an input with no page default (an upload): measured by hand
        seconds = []
        lookups["n"] = 0
        for _ in range(2):
            start = time.perf_counter()
            try:
                client.predict(api_name=name, **kwargs)
            except Exception as exc:  # noqa: BLE001 - reported, the other endpoints still measured
                log.warning("%s: %s", name, exc)
            seconds.append(time.perf_counter() - start)
        out[name.lstrip("/")] = (seconds[-1], lookups["n"])
    serving.CACHE.get = real_get
    return out


def main() -> None:
    demo = queue(build_demo())
    serve(demo, block=False, server_name="127.0.0.1", server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7861")),
          quiet=True)
    try:
        for name, (seconds, n) in sorted(measure(demo.local_url).items()):
            print(f"{name:28s} {seconds:7.2f} s  model lookups {n}")
    finally:
        demo.close()


if __name__ == "__main__":
    main()
