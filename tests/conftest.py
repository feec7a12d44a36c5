"""Test-wide settings: never touch the network; shared tiny checkpoints and the shared data location."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if "BERTVARIANTS_DATA_CACHE" not in os.environ:  # fetched datasets and token-block caches: never the user's ~/.cache
    import tempfile

    os.environ["BERTVARIANTS_DATA_CACHE"] = str(Path(tempfile.mkdtemp(prefix="bertvariants-test-cache-")) / "data")

import pytest  # noqa: E402
import transformers  # noqa: E402

# transformers' lazy module is not thread-safe on first access (ui.guard.preload_lazy_imports): a test that builds
# the app starts that preload in a thread, and a test right after it importing AutoTokenizer raced it ("cannot import
# name 'AutoTokenizer'"; seen when test_docs ran just before test_distillation). Resolve the names used here first.
transformers.AutoTokenizer, transformers.AutoModel, transformers.AutoConfig  # noqa: B018

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("BERTVARIANTS_DATA", REPO.parent / "shared" / "data"))
ARTIFACTS = REPO / "artifacts"

needs_shared_data = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"shared data not present at {SHARED_DATA}")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not present at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    from bertvariants.serving import packaged_model_path

    return packaged_model_path()


@pytest.fixture(scope="session")
def tiny_tokenizer_dir(tmp_path_factory, minilm_path) -> Path:
    """The packaged MiniLM's real WordPiece tokenizer, saved alone (vocab 30,522)."""
    from transformers import AutoTokenizer

    path = tmp_path_factory.mktemp("tok")
    AutoTokenizer.from_pretrained(minilm_path).save_pretrained(path)
    return path


def save_tiny(kind_cls, config, tokenizer_dir: Path, out: Path) -> Path:
    """Save a tiny randomly initialised model of a real transformers class next to a real tokenizer."""
    import shutil

    import torch

    torch.manual_seed(0)
    model = kind_cls(config)
    model.save_pretrained(out)
    for f in tokenizer_dir.iterdir():
        if f.is_file() and not (out / f.name).exists():
            shutil.copy(f, out / f.name)
    return out


@pytest.fixture(scope="session")
def tiny_bert_config():
    """A tiny odd-sized BERT config over the real 30,522-token WordPiece vocab."""
    from transformers import BertConfig

    return BertConfig(vocab_size=30522, hidden_size=36, num_hidden_layers=2, num_attention_heads=3,
                      intermediate_size=37, max_position_embeddings=128)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, tiny_tokenizer_dir, tiny_bert_config):
    """Factory: tiny_checkpoint(kind) -> directory of a tiny saved checkpoint loadable by serving.load_checkpoint."""
    import transformers as tf

    classes = {
        "feature-extraction": tf.BertModel,
        "sentence-embedding": tf.BertModel,
        "masked-lm": tf.BertForMaskedLM,
        "sequence-classification": tf.BertForSequenceClassification,
        "question-answering": tf.BertForQuestionAnswering,
    }
    made: dict[str, Path] = {}

    def make(kind: str, **overrides) -> Path:
        key = kind + repr(sorted(overrides.items()))
        if key not in made:
            cfg = tiny_bert_config.__class__(**{**tiny_bert_config.to_dict(), **overrides})
            made[key] = save_tiny(classes[kind], cfg, tiny_tokenizer_dir, tmp_path_factory.mktemp(kind))
        return made[key]

    return make


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def app_url():
    """The real app (build_demo + the bounded queue) served on loopback for the whole test session."""
    from bertvariants.ui import build_demo, queue, serve

    demo = queue(build_demo())
    port = free_port()
    serve(demo, block=False, server_name="127.0.0.1", server_port=port, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture(scope="session")
def client(app_url):
    from gradio_client import Client

    return Client(app_url, verbose=False)


CHROMIUM = Path("/usr/bin/chromium")
needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium not installed (apt-get install -y chromium)")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-quic", "--no-first-run"]


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium driven by Playwright (never `playwright install`)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@contextmanager
def opened_page(browser, width: int, height: int = 900):
    """A fresh page of ``browser`` at ``width`` × ``height`` px, closed when the block ends (pass or fail)."""
    page = browser.new_page(viewport={"width": width, "height": height})
    try:
        yield page
    finally:
        page.close()


def pytest_configure(config):
    # gradio's queue uses pandas options that pandas 3 deprecates; not ours to fix
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:gradio.*")
    config.addinivalue_line("filterwarnings", "ignore:.*no_silent_downcasting.*")
    config.addinivalue_line("filterwarnings", "ignore:The copy keyword is deprecated.*")


@pytest.fixture
def one_torch_thread():
    """Tiny models gain nothing from threads, and one thread avoids OpenMP stalls on a shared CPU (modules that
    train tiny models use it for every test: ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def unpack(evaluation) -> tuple[dict, list[dict]]:
    """An ``evaluation.runner.Evaluation`` as (result JSON dict, per-example records), for short assertions."""
    return evaluation.result.to_dict(), evaluation.records


@pytest.fixture()
def no_models_here(tmp_path, monkeypatch):
    """As if no model could serve a trained slot: an empty models directory and no shipped models (the paths a
    user sees when the repository's assets are missing), so the tabs' "unavailable" messages can be tested."""
    from bertvariants import serving
    from bertvariants.serving import manifest as mf

    monkeypatch.setenv("BERTVARIANTS_MODELS_DIR", str(tmp_path / "empty-models"))
    monkeypatch.setattr(serving.sources, "shipped_dir", lambda name: tmp_path / "no-shipped-models" / name)
    mf.default_manifest.cache_clear()
    serving.CACHE.clear()
    yield
    mf.default_manifest.cache_clear()
    serving.CACHE.clear()


# ----------------------------------------------------------------------------------------------- the simulated Space
@pytest.fixture(scope="session")
def hub_cache(tmp_path_factory) -> Path:
    """A simulated Hugging Face cache of every Hub id in spaces.yml (tests/hub_cache.py)."""
    from .hub_cache import build_hub_cache

    root = tmp_path_factory.mktemp("hub-cache")
    build_hub_cache(root)
    return root


@pytest.fixture(scope="session")
def space_app(hub_cache, tmp_path_factory):
    """``python app.py`` on the simulated cache (HF_HUB_OFFLINE=1) with the ZeroGPU start-up path, once a session."""
    from .hub_cache import start_space_app, stop

    app = start_space_app(hub_cache, tmp_path_factory.mktemp("space-app"))
    yield app
    stop(app)


@pytest.fixture(scope="session")
def space_client(space_app):
    from gradio_client import Client

    return Client(space_app.url, verbose=False)
