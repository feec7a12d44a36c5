"""bertvariants.io: atomic writes survive kills and races, CSV cells never run as formulas, uploads are
judged by their bytes and must live in the upload area."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bertvariants import io as bio

from .conftest import REPO


# ------------------------------------------------------------------------------------------- atomic writes
def test_atomic_json_roundtrip_and_no_temp_left(tmp_path):
    import numpy as np

    target = tmp_path / "sub" / "r.json"
    bio.atomic_write_json(target, {"score": np.float32(0.5), "xs": np.arange(3), "p": tmp_path})
    assert json.loads(target.read_text()) == {"score": 0.5, "xs": [0, 1, 2], "p": str(tmp_path)}
    assert [p.name for p in target.parent.iterdir()] == ["r.json"]
    assert oct(target.stat().st_mode & 0o777) == "0o644"


def test_unserialisable_or_nan_json_leaves_old_file_untouched(tmp_path):
    target = tmp_path / "r.json"
    bio.atomic_write_json(target, {"v": 1})
    with pytest.raises(ValueError, match="Out of range float"):
        bio.atomic_write_json(target, {"v": float("nan")})
    with pytest.raises(TypeError, match="not JSON serialisable: object"):
        bio.atomic_write_json(target, {"v": object()})
    assert json.loads(target.read_text()) == {"v": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def test_interrupt_during_write_keeps_old_content_and_removes_temp(tmp_path, monkeypatch):
    target = tmp_path / "r.txt"
    bio.atomic_write_text(target, "old")

    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(bio.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        bio.atomic_write_text(target, "new" * 1000)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.txt"]


def test_racing_threads_each_leave_a_whole_file(tmp_path):
    target = tmp_path / "r.json"
    payloads = [{"writer": i, "blob": [i] * 20_000} for i in range(8)]
    seen: list = []
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            if target.exists():
                seen.append(json.loads(target.read_text())["writer"])  # never a prefix: always parses

    r = threading.Thread(target=reader)
    r.start()
    threads = [threading.Thread(target=bio.atomic_write_json, args=(target, p)) for p in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    r.join()
    final = json.loads(target.read_text())
    assert final in payloads
    assert all(w in range(8) for w in seen)
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))


def test_sigkill_mid_write_never_leaves_a_prefix(tmp_path):
    """A writer killed while writing 40 MB leaves either the old file or the new one, never part of it."""
    target = tmp_path / "big.json"
    bio.atomic_write_json(target, {"old": True})
    code = ("import sys; from bertvariants import io; "
            "io.atomic_write_text(sys.argv[1], '{\"new\": \"' + 'x' * 40_000_000 + '\"}')")
    proc = subprocess.Popen([sys.executable, "-c", code, str(target)], cwd=REPO)
    deadline = time.time() + 20
    while time.time() < deadline and not list(tmp_path.glob(".big.json.*.tmp")):
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    data = json.loads(target.read_text())  # parses: whole old or whole new
    assert data == {"old": True} or len(data["new"]) == 40_000_000
    leftovers = bio.remove_stale_temp_files(tmp_path)
    assert all(p.name.endswith(".tmp") for p in leftovers)
    assert [p.name for p in tmp_path.iterdir()] == ["big.json"]


def test_atomic_create_never_overwrites_even_when_racing(tmp_path):
    target = tmp_path / "run.json"
    written: list[Path] = []
    lock = threading.Lock()

    def write(i):
        p = bio.atomic_create_bytes(target, json.dumps({"writer": i}).encode())
        with lock:
            written.append(p)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(written)) == 12
    assert sorted(json.loads(p.read_text())["writer"] for p in written) == list(range(12))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["run.json"] + [f"run-{k}.json" for k in range(2, 13)])


def test_atomic_directory_swaps_whole_checkpoints_in(tmp_path):
    out = tmp_path / "models" / "ckpt"
    with bio.atomic_directory(out) as d:
        (d / "config.json").write_text("{}")
        (d / "model.safetensors").write_bytes(b"v1")
        assert not out.exists()  # invisible until complete
    assert (out / "model.safetensors").read_bytes() == b"v1"
    with pytest.raises(KeyboardInterrupt):
        with bio.atomic_directory(out) as d:
            (d / "config.json").write_text('{"v": 2}')
            raise KeyboardInterrupt  # Ctrl-C before the weights are written
    assert (out / "model.safetensors").read_bytes() == b"v1" and (out / "config.json").read_text() == "{}"
    with bio.atomic_directory(out) as d:
        (d / "config.json").write_text('{"v": 3}')
    assert sorted(p.name for p in out.iterdir()) == ["config.json"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["ckpt"]  # no temp or old copies left


def test_dir_lock_serialises_writers(tmp_path):
    order: list[str] = []

    def hold(tag, delay):
        with bio.dir_lock(tmp_path):
            order.append(tag + "+")
            time.sleep(delay)
            order.append(tag + "-")

    threads = [threading.Thread(target=hold, args=(t, 0.05)) for t in "abc"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(order[i][0] == order[i + 1][0] for i in range(0, 6, 2)), order  # never interleaved


def test_iter_json_dir_skips_truncated_file_with_warning_naming_it(tmp_path):
    bio.atomic_write_json(tmp_path / "a.json", {"ok": 1})
    (tmp_path / "b.json").write_text('{"ok": 2, "trunc')
    (tmp_path / ".c.json.x1.tmp").write_text('{"partial')
    with pytest.warns(RuntimeWarning, match=r"b\.json"):
        found = list(bio.iter_json_dir(tmp_path))
    assert [(f.path.name, f.data) for f in found] == [("a.json", {"ok": 1})]
    with pytest.raises(ValueError, match=r"b\.json: not readable JSON"):
        bio.read_json(tmp_path / "b.json")
    assert list(bio.iter_json_dir(tmp_path / "missing")) == []


# ------------------------------------------------------------------------------------------- CSV formulas
@pytest.mark.parametrize("cell", ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1", '=HYPERLINK("http://evil")'])
def test_formula_cells_are_escaped(cell):
    assert bio.escape_csv_cell(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["plain", "a=b", "", " =x", 3, -0.25, None, 1e-9])
def test_other_cells_untouched(cell):
    assert bio.escape_csv_cell(cell) == cell


def test_csv_export_roundtrip_is_escaped_and_atomic(tmp_path):
    import pandas as pd

    rows = [["=cmd|' /C calc'!A0", -0.5, "ok"], ["@x", float("nan"), "-neg"]]
    path = bio.atomic_write_csv(tmp_path / "x.csv", rows, header=["=h", "score", "t"])
    back = list(csv.reader(io.StringIO(path.read_text())))
    assert back == [["'=h", "score", "t"], ["'=cmd|' /C calc'!A0", "-0.5", "ok"], ["'@x", "", "'-neg"]]
    df = pd.DataFrame({"model": ["=evil()", "bert"], "f1": [-1.0, 88.5]})
    bio.atomic_write_dataframe_csv(tmp_path / "d.csv", df)
    back = pd.read_csv(tmp_path / "d.csv")
    assert back["model"].tolist() == ["'=evil()", "bert"] and back["f1"].tolist() == [-1.0, 88.5]
    assert df["model"][0] == "=evil()"  # the caller's frame is not modified


# ------------------------------------------------------------------------------------------- upload paths
def test_safe_upload_path_refuses_anything_outside_the_upload_area(tmp_path):
    root = tmp_path / "gradio"
    (root / "abc").mkdir(parents=True)
    inside = root / "abc" / "v.mp4"
    inside.write_bytes(b"x")
    secret = tmp_path / "secret.txt"
    secret.write_text("s")
    roots = [root]
    assert bio.safe_upload_path(str(inside), roots=roots) == inside.resolve()
    assert bio.safe_upload_path({"path": str(inside), "orig_name": "v.mp4"}, roots=roots) == inside.resolve()
    for bad in ["/etc/passwd", str(secret), str(root / "abc" / ".." / ".." / "secret.txt")]:
        with pytest.raises(ValueError, match="only files uploaded to this app"):
            bio.safe_upload_path(bad, roots=roots)
    link = root / "abc" / "link"
    link.symlink_to(secret)
    with pytest.raises(ValueError, match="only files uploaded to this app"):
        bio.safe_upload_path(str(link), roots=roots)
    with pytest.raises(ValueError, match="NUL byte"):
        bio.safe_upload_path(str(inside) + "\x00.txt", roots=roots)
    with pytest.raises(ValueError, match="no file was uploaded"):
        bio.safe_upload_path(None, roots=roots)
    with pytest.raises(ValueError, match="no longer exists"):
        bio.safe_upload_path(str(root / "abc" / "gone.mp4"), roots=roots)


def test_default_upload_root_follows_gradio(monkeypatch, tmp_path):
    from gradio.utils import get_upload_folder

    monkeypatch.delenv("GRADIO_TEMP_DIR", raising=False)
    assert bio.upload_roots()[0] == Path(get_upload_folder()).resolve()
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))
    assert bio.upload_roots()[0] == Path(get_upload_folder()).resolve() == tmp_path.resolve()


# ------------------------------------------------------------------------------------------- content sniffing
def _ffmpeg(out: Path, seconds: float = 1) -> Path:
    import imageio_ffmpeg

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc=size=32x32:rate=4", "-t", str(seconds), str(out)], check=True, timeout=60)
    return out


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("videos")
    return {ext: _ffmpeg(d / f"clip.{ext}") for ext in ("mp4", "mov", "webm", "mkv", "avi")}


def test_real_containers_are_recognised_by_content(videos, tmp_path):
    for ext, path in videos.items():
        assert bio.sniff(path) == ext
        renamed = tmp_path / f"clip_{ext}.bin"  # the extension is irrelevant
        renamed.write_bytes(path.read_bytes())
        assert bio.check_video_file(renamed, check_path=False) == (renamed, ext)


@pytest.mark.parametrize("head, kind", [
    (b"\x89PNG\r\n\x1a\n\0\0", "png"), (b"\xff\xd8\xff\xe0", "jpeg"), (b"%PDF-1.7", "pdf"),
    (b'  {"id": 1}', "json"), ("question,context\nWho?,Ann – née Ω\n".encode(), "text"),
    (b"\x00\x01\x02\x03garbage", None), ("é".encode()[:1], None), ("abc€".encode()[:5], "text"),
])
def test_sniff_bytes(head, kind):
    assert bio.sniff_bytes(head) == kind


def test_bad_videos_are_refused_with_the_reason(videos, tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=r"the video is empty \(0 bytes\)"):
        bio.check_video_file(empty, check_path=False)
    fake = tmp_path / "fake.mp4"
    fake.write_bytes(os.urandom(2048).replace(b"ftyp", b"xxxx"))
    with pytest.raises(ValueError, match="'fake.mp4' is not a video"):
        bio.check_video_file(fake, check_path=False)
    text = tmp_path / "notes.mp4"
    text.write_text("this is a text file\n" * 10)
    with pytest.raises(ValueError, match="not a video \\(its content is text\\)"):
        bio.check_video_file(text, check_path=False)
    data = videos["mp4"].read_bytes()
    for cut in (len(data) // 2, len(data) - 3, 36):
        trunc = tmp_path / f"trunc{cut}.mp4"
        trunc.write_bytes(data[:cut])
        with pytest.raises(ValueError, match="the video is truncated"):
            bio.check_video_file(trunc, check_path=False)
    no_moov = tmp_path / "nomoov.mp4"
    no_moov.write_bytes(data[: int.from_bytes(data[:4], "big")])  # the ftyp box alone: well formed, no movie
    with pytest.raises(ValueError, match="no 'moov'"):
        bio.check_video_file(no_moov, check_path=False)
    big = tmp_path / "big.webm"
    big.write_bytes(videos["webm"].read_bytes())
    with pytest.raises(ValueError, match=r"the video is 0\.0 MB; the limit is 9\.53674e-05 MB"):
        bio.check_video_file(big, check_path=False, max_bytes=100)


def test_check_video_file_enforces_the_upload_area(videos, tmp_path):
    with pytest.raises(ValueError, match="only files uploaded to this app"):
        bio.check_video_file(str(videos["mp4"]), roots=[tmp_path])


def test_dir_lock_leaves_nothing_in_the_directory(tmp_path):
    with bio.dir_lock(tmp_path / "results"):
        pass
    assert list((tmp_path / "results").iterdir()) == []
