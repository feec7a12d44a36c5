"""What one benchmark run does: a frozen :class:`BenchSettings` (the bench's functions take it, never an
argparse namespace) and the command line that builds one."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from bertvariants.paths import REPO_ROOT

SECTIONS = ("stsb", "flops", "sst2", "summary", "app", "cold", "rss")  # the default run
EXTRA_SECTIONS = ("train",)  # only when asked (--only train): several minutes of training steps
FAST_PRECISION = "fast"  # the "fast" side of every A/B pair: the fastest of fp32 / bf16 / int8 measured per model
# on this machine (bertvariants.inference.fast_path); the bench records which one ran
DEFAULT_OUT = REPO_ROOT / "artifacts" / "bench"
DESCRIPTION = "Performance benchmark of the one inference path, against the tools a user would otherwise pick."


@dataclass(frozen=True)
class BenchSettings:
    """The options of ``python -m evaluation bench`` (the same names, the same defaults).

    ``sections`` run in the order given; ``flops`` times the STS-B encode, so asking for it without ``stsb``
    puts ``stsb`` first. Bad values raise ValueError with the message the command line shows.
    """

    sections: tuple[str, ...] = SECTIONS
    repeats: int = 3  # alternating repeats per A/B pair (median)
    stsb: str | None = None  # STS-B file (test split); None: dev from the shared data
    sst2: str | None = None  # SST-2 file; None: dev from the shared data
    clients: int = 16  # concurrent gradio_client clients (app section)
    requests: int = 256  # requests per app variant
    app_repeats: int = 1  # alternating repeats of the app pair
    max_batch_size: int = 32  # max_batch_size of the batched endpoint
    endpoint_timeout: float = 300  # seconds per endpoint call (app and rss sections)
    threads: int = 0  # torch threads for both sides; 0 = torch's default
    train_batch: int = 32  # train section: sequences per step
    train_tokens: int = 256  # train section: tokens per sequence
    train_loss_steps: int = 0  # train section: also train each side this many steps from one seed (0: skip)
    out: Path = DEFAULT_OUT  # directory for bench.json and the plots

    def __post_init__(self) -> None:
        sections = tuple(self.sections)
        unknown = [s for s in sections if s not in SECTIONS + EXTRA_SECTIONS]
        if unknown:
            raise ValueError(f"unknown section(s) {', '.join(unknown)}; known: {', '.join(SECTIONS + EXTRA_SECTIONS)}")
        if self.repeats < 1 or self.clients < 1 or self.requests < 1:
            raise ValueError("--repeats, --clients and --requests must be ≥ 1")
        if "flops" in sections and "stsb" not in sections:
            sections = ("stsb", *sections)
        object.__setattr__(self, "sections", sections)  # frozen: normalised once, here
        object.__setattr__(self, "out", Path(self.out))


def parse_sections(text: str | None) -> tuple[str, ...]:
    """``"stsb, sst2,"`` -> ``("stsb", "sst2")``; None or empty -> every section."""
    return tuple(s.strip() for s in (text or ",".join(SECTIONS)).split(",") if s.strip())


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m evaluation bench", description=DESCRIPTION)
    p.add_argument("--only", help=f"comma-separated sections (default all but train): "
                                  f"{','.join(SECTIONS + EXTRA_SECTIONS)}")
    p.add_argument("--repeats", type=int, default=3, help="alternating repeats per A/B pair (median; default 3)")
    p.add_argument("--stsb", help="STS-B file (test split; default: dev from the shared data)")
    p.add_argument("--sst2", help="SST-2 file (default: dev from the shared data)")
    p.add_argument("--clients", type=int, default=16, help="concurrent gradio_client clients (default 16)")
    p.add_argument("--requests", type=int, default=256, help="requests per app variant (default 256)")
    p.add_argument("--app-repeats", type=int, default=1, help="alternating repeats of the app pair (default 1)")
    p.add_argument("--max-batch-size", type=int, default=32, help="max_batch_size of the batched endpoint")
    p.add_argument("--endpoint-timeout", type=float, default=300, help="seconds per endpoint in the rss section")
    p.add_argument("--threads", type=int, default=0,
                   help="torch threads, the same for both sides (default 0 = torch's default, one per core, what a "
                        "user gets; on a CPU shared with other jobs pass 1: a multi-threaded OpenMP region stalls "
                        "whenever one of its threads is descheduled)")
    p.add_argument("--train-batch", type=int, default=32, help="train section: sequences per step (default 32)")
    p.add_argument("--train-tokens", type=int, default=256, help="train section: tokens per sequence (default 256)")
    p.add_argument("--train-loss-steps", type=int, default=0,
                   help="train section: steps each side trains from one seed to compare losses (default 0: skip)")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="directory for bench.json and plots")
    return p


def settings_from_argv(argv: list[str] | None = None) -> BenchSettings:
    """Parse the command line; bad values exit with status 2 and argparse's usage message."""
    p = parser()
    args = p.parse_args(argv)
    try:
        return BenchSettings(sections=parse_sections(args.only), repeats=args.repeats, stsb=args.stsb,
                             sst2=args.sst2, clients=args.clients, requests=args.requests,
                             app_repeats=args.app_repeats, max_batch_size=args.max_batch_size,
                             endpoint_timeout=args.endpoint_timeout, threads=args.threads, out=Path(args.out),
                             train_batch=args.train_batch, train_tokens=args.train_tokens,
                             train_loss_steps=args.train_loss_steps)
    except ValueError as exc:
        p.error(str(exc))
