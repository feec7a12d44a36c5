"""Security: no remote code, only manifest models, safetensors first, capped + content-checked uploads,
no request path outside the upload area, formula-safe CSV exports, a bounded queue."""

from __future__ import annotations

import ast
import json
import re
import subprocess
from pathlib import Path

import pytest

from .conftest import REPO

FLAG = "trust_remote_code"


def _python_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.py"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout.split()
    return [REPO / p for p in out if (REPO / p).is_file()]


def test_no_trust_remote_code_anywhere():
    """Every mention of the flag in code is the literal False; no text file enables it."""
    files = _python_files()
    assert len(files) > 10
    offenders = []
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.keyword) and node.arg == FLAG:
                if not (isinstance(node.value, ast.Constant) and node.value.value is False):
                    offenders.append(f"{path.relative_to(REPO)}:{node.value.lineno}")
            if isinstance(node, ast.Dict):  # **{"trust_remote_code": ...}
                for k, v in zip(node.keys, node.values):
                    if isinstance(k, ast.Constant) and k.value == FLAG and not (isinstance(v, ast.Constant) and v.value is False):
                        offenders.append(f"{path.relative_to(REPO)}:{k.lineno}")
    text_hits = subprocess.run(["git", "grep", "-n", "-I", "-E", FLAG + r"\s*[=:]\s*(True|true|1)\b"], cwd=REPO,
                               capture_output=True, text=True).stdout.strip()
    assert not offenders, offenders
    assert not text_hits, text_hits


def test_load_checkpoint_refuses_hub_ids_not_in_the_manifest(monkeypatch):
    from bertvariants import serving

    monkeypatch.delenv("BERTVARIANTS_ALLOW_ANY_MODEL", raising=False)
    with pytest.raises(serving.ModelUnavailable, match="'evil-org/evil-model' is not a model named in spaces.yml"):
        serving.load_checkpoint("evil-org/evil-model", "masked-lm")
    with pytest.raises(serving.ModelUnavailable, match="'evil-org/tok' is not a model named in spaces.yml"):
        serving.load_checkpoint("roberta-base", "masked-lm", tokenizer_location="evil-org/tok")
    assert serving.formats.model_allowed("roberta-base") and serving.formats.model_allowed("SpanBERT/spanbert-large-cased")
    assert not serving.formats.model_allowed("evil-org/evil-model")
    monkeypatch.setenv("BERTVARIANTS_ALLOW_ANY_MODEL", "1")
    assert serving.formats.model_allowed("evil-org/evil-model")
    with pytest.raises(Exception) as info:  # allowed now: it gets as far as the (offline) Hub lookup
        serving.load_checkpoint("evil-org/evil-model", "masked-lm")
    assert "spaces.yml" not in str(info.value)


def test_every_manifest_hub_id_is_allowed():
    from bertvariants import serving
    from bertvariants.serving import manifest as mf

    for task in mf.default_manifest().tasks.values():
        if task.hub:
            assert serving.formats.model_allowed(task.hub), task.key
        if task.tokenizer:
            assert serving.formats.model_allowed(task.tokenizer), task.key


def test_safetensors_win_over_pickled_weights(tiny_checkpoint, tmp_path):
    """A checkpoint with both formats loads the safetensors weights (the pickle is never unpickled)."""
    import shutil

    import torch

    from bertvariants import serving

    src = tiny_checkpoint("sequence-classification")
    ckpt = tmp_path / "both"
    shutil.copytree(src, ckpt)
    assert (ckpt / "model.safetensors").is_file()
    state = serving.load_checkpoint(str(ckpt), "sequence-classification", device="cpu").model.state_dict()
    poisoned = {k: torch.full_like(v, 7.0) if v.is_floating_point() else v for k, v in state.items()}
    torch.save(poisoned, ckpt / "pytorch_model.bin")
    loaded = serving.load_checkpoint(str(ckpt), "sequence-classification", device="cpu").model
    w = loaded.classifier.weight
    assert not torch.all(w == 7.0) and torch.equal(w, state["classifier.weight"])


def test_project_checkpoints_are_saved_as_safetensors(tiny_checkpoint):
    ckpt = tiny_checkpoint("masked-lm")
    assert (ckpt / "model.safetensors").is_file() and not (ckpt / "pytorch_model.bin").exists()


def test_upload_cap_and_bounded_queue():
    from bertvariants.ui import build_demo, launch_kwargs, queue

    assert launch_kwargs()["max_file_size"] == "50mb"
    demo = queue(build_demo())
    assert demo._queue.max_size == 64


def test_oversized_upload_is_refused_by_the_server(app_url):
    """The running app refuses a 51 MB upload (max_file_size) before any handler sees it."""
    import httpx

    big = b"\0" * (51 * 1024 * 1024)
    r = httpx.post(f"{app_url}gradio_api/upload", files={"files": ("big.mp4", big, "video/mp4")}, timeout=120)
    assert r.status_code == 413, (r.status_code, r.text[:200])
    small = httpx.post(f"{app_url}gradio_api/upload", files={"files": ("s.txt", b"hello", "text/plain")}, timeout=30)
    assert small.status_code == 200


def _file_endpoints(client) -> dict[str, tuple[int, list[dict]]]:
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    out = {}
    for name, info in api.items():
        for i, p in enumerate(info["parameters"]):
            if p["component"] in ("File", "Video", "Uploadbutton", "Image", "Audio"):
                out[name] = (i, info["parameters"])
                break
    return out


def test_request_paths_never_open_files_outside_the_upload_area(client, app_url, tmp_path):
    """Posting a FileData that names /etc/passwd (or a file the server can read but nobody uploaded) to every
    file-taking endpoint gets a refusal, never the file's content."""
    import httpx

    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT\n")
    endpoints = _file_endpoints(client)
    assert "/video_tokenize" in endpoints, sorted(endpoints)
    for name, (index, params) in endpoints.items():
        for path in ("/etc/passwd", str(secret), "../../../../etc/passwd"):
            data = [p["parameter_default"] if p["parameter_has_default"] else None for p in params]
            data[index] = {"path": path, "meta": {"_type": "gradio.FileData"}, "orig_name": "x.mp4"}
            if params[index]["component"] == "Video":
                data[index] = {"video": data[index], "subtitles": None}
            r = httpx.post(f"{app_url}gradio_api/call/{name.lstrip('/')}", json={"data": data}, timeout=60)
            body = r.text
            if r.status_code == 200:
                eid = r.json()["event_id"]
                body = httpx.get(f"{app_url}gradio_api/call/{name.lstrip('/')}/{eid}", timeout=60).text
                assert "event: error" in body, (name, path, body[:300])
            assert "root:" not in body and "TOP-SECRET" not in body, (name, path)


def test_csv_exports_escape_formulas(tmp_path):
    import pandas as pd

    from evaluation import results

    df = pd.DataFrame({"model": ["=HYPERLINK(\"http://x\",\"y\")", "+cmd", "@sum", "-2+3", "bert"],
                       "score": [1.0, -2.5, 3.0, 4.0, 5.0]})
    text = results.to_csv(df, tmp_path / "lb.csv")
    back = pd.read_csv(tmp_path / "lb.csv")
    assert back["model"].tolist() == ["'=HYPERLINK(\"http://x\",\"y\")", "'+cmd", "'@sum", "'-2+3", "bert"]
    assert back["score"].tolist() == [1.0, -2.5, 3.0, 4.0, 5.0]  # numbers stay numbers
    assert text == (tmp_path / "lb.csv").read_text()


def test_results_json_from_a_request_is_never_executed_as_code(tmp_path):
    """Result files are plain JSON: a payload that looks like code stays a string in the leaderboard."""
    from evaluation import results

    run = {"task": "sst2", "model": "__import__('os').system('echo pwned')", "split": "validation",
           "metrics": {"accuracy": 0.5}, "primary_metric": "accuracy", "timestamp": "2026-01-01T00:00:00+00:00"}
    (tmp_path / "r.json").write_text(json.dumps(run))
    runs = results.load_runs(tmp_path)
    assert runs["model"].tolist() == [run["model"]]


@pytest.mark.parametrize("path", ["/etc/passwd", "../../../../../../etc/passwd", "results/../../../etc/hostname"])
def test_no_request_string_opens_a_file_outside_its_directory(client, path):
    """String inputs that name files (the leaderboard drilldown's run, the VideoBERT sample) never reach
    outside their directory: the answer is a message, never the file."""
    from gradio_client.exceptions import AppError

    for api_name, kwargs in (("/leaderboard_drilldown", {"run_file": path, "top": 5}),
                             ("/video_tokenize", {"sample": path})):
        try:
            answer = client.predict(api_name=api_name, **kwargs)
        except AppError as exc:
            answer = str(exc)
        text = json.dumps(answer, default=str)
        assert "root:" not in text and "daemon:" not in text, (api_name, text[:300])
        assert isinstance(answer, str) and re.search(r"not in the list of choices|pick a|no per-example|missing", answer), \
            (api_name, text[:300])


def test_evaluation_refuses_unlisted_hub_ids_before_fetching_anything(monkeypatch):
    """``python -m evaluation`` loads models by name through serving.load (the one resolver): a Hub id that
    spaces.yml does not name is refused before even its config is fetched."""
    from bertvariants import serving

    monkeypatch.delenv("BERTVARIANTS_ALLOW_ANY_MODEL", raising=False)
    monkeypatch.setattr(serving.resolver, "hub_online", lambda *a, **k: True)  # as if online: the policy must still hold

    def no_fetch(*a, **k):
        raise AssertionError("fetched a config of a model that is not allowed")

    monkeypatch.setattr(serving.resolver, "kind_from_config", no_fetch)
    with pytest.raises(ValueError, match="'evil-org/evil-model' is not a model named in spaces.yml"):
        serving.load("evil-org/evil-model")
