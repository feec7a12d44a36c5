"""Files that are never half-written, CSV cells that never run as formulas, uploads checked by content.

Every result, export and checkpoint-side file the project writes goes through :func:`atomic_write_bytes`
(temp file in the same directory → ``flush`` + ``fsync`` → ``os.replace`` → ``fsync`` of the directory), so a
reader sees either the old file or the new one, never a prefix, even when the writer is killed (Ctrl-C,
OOM) half-way. Two writers racing on the same name both complete; the last ``os.replace`` wins whole.

Uploads are judged by their bytes, not their names: :func:`sniff` reads magic numbers (ISO-BMFF ``ftyp``
for MP4/MOV, EBML for WebM/Matroska, ``RIFF....AVI `` for AVI), and :func:`check_video_file` also walks the
MP4 box structure so a truncated or zero-length file is refused with a reason before any decoder sees it.
:func:`safe_upload_path` refuses any path outside the upload area (Gradio's temp dir), so no path taken
from a request can open ``/etc/passwd`` or the models directory.

Nothing here imports gradio (library code); bad input raises ``ValueError`` with a specific message.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import math
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# Atomic writes
# --------------------------------------------------------------------------------------------
TMP_SUFFIX = ".tmp"  # git-ignored; partial files a killed writer leaves behind carry it


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (POSIX: the directory entry lives in the directory's data)."""
    with contextlib.suppress(OSError):  # not supported everywhere (e.g. some network filesystems)
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_temp_beside(path: Path, data: bytes, mode: int | None) -> str:
    """Write ``data`` to a fsynced temp file next to ``path`` (same filesystem, so a rename is atomic);
    on failure nothing is left behind. Returns the temp file's path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)  # mkstemp creates 0600; results are meant to be readable
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return tmp


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, mode: int | None = 0o644) -> Path:
    """Write ``data`` to ``path`` atomically: temp file in the same directory, fsync, ``os.replace``.

    The temp file lives next to the target so the rename never crosses a filesystem. On any failure
    (including KeyboardInterrupt) the temp file is removed and the previous ``path``, if any, is intact.
    """
    path = Path(path)
    tmp = _write_temp_beside(path, data, mode)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    return path


def atomic_create_bytes(path: str | os.PathLike, data: bytes, *, max_tries: int = 1000) -> Path:
    """Write a NEW file atomically, never replacing one: ``path``, else ``<stem>-2<suffix>``, ``-3`` ...

    For result stores where two runs may pick the same name at the same moment: ``os.replace`` would
    let the second silently overwrite the first, and "check ``exists()`` then write" races. ``os.link``
    of the fsynced temp file is atomic and fails when the name is taken, so every writer lands under
    its own name. Returns the path written.
    """
    path = Path(path)
    tmp = _write_temp_beside(path, data, 0o644)
    try:
        for k in range(1, max_tries + 1):
            candidate = path if k == 1 else path.with_name(f"{path.stem}-{k}{path.suffix}")
            try:
                os.link(tmp, candidate)
            except FileExistsError:
                continue
            _fsync_dir(path.parent)
            return candidate
        raise FileExistsError(f"{path}: {max_tries} files with this name already exist")
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


@contextlib.contextmanager
def dir_lock(directory: str | os.PathLike) -> Iterator[Path]:
    """Hold an exclusive advisory lock on ``directory`` — across threads and processes — so "pick a free name,
    then write" cannot race: two runs writing at once both land.

    The lock file lives in the system temp dir, named by a hash of the directory's real path, so the
    directory itself (e.g. a committed ``results/``) never gets a stray lock file.
    """
    import fcntl
    import hashlib

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha1(str(directory.resolve()).encode()).hexdigest()[:16]
    fd = os.open(Path(tempfile.gettempdir()) / f"bertvariants-{key}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield directory
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike) -> Iterator[Path]:
    """Build a directory (e.g. a checkpoint) under a temp name beside ``path``; move it into place only when
    the block completes. Interrupted or failed builds leave the previous ``path`` (or nothing) — never a
    ``config.json`` next to half a ``model.safetensors``, which would look like a checkpoint and fail to load.

    An existing ``path`` is renamed aside, the new one renamed in, the old one deleted: readers see the old
    directory, then briefly none, then the new one.
    """
    import shutil

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent))
    try:
        yield tmp
        for f in tmp.rglob("*"):  # flush file contents before the rename makes them visible
            if f.is_file():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
        os.chmod(tmp, 0o755)
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}-{id(tmp)}{TMP_SUFFIX}")
            os.replace(path, old)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str, *, encoding: str = "utf-8") -> Path:
    """:func:`atomic_write_bytes` for text (UTF-8 by default, newlines untranslated)."""
    return atomic_write_bytes(path, text.encode(encoding))


def _json_default(obj: Any):
    # numpy scalars / arrays and Paths show up in results; everything else is a bug worth a TypeError
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "shape", None) == ():
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def atomic_write_json(path: str | os.PathLike, obj: Any, *, indent: int | None = 2, sort_keys: bool = False) -> Path:
    """Serialise first (a TypeError leaves no file at all), then write atomically. NaN is refused:
    it is not JSON and would make the file unreadable for strict parsers."""
    text = json.dumps(obj, indent=indent, sort_keys=sort_keys, ensure_ascii=False, allow_nan=False,
                      default=_json_default)
    return atomic_write_text(path, text + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """Read one JSON file; a truncated / corrupt / unreadable file raises ValueError naming it."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not readable JSON ({exc})") from None


@dataclass(frozen=True)
class JsonFile:
    """One parsed JSON file of a directory scan."""

    path: Path
    data: Any


def iter_json_dir(directory: str | os.PathLike, pattern: str = "*.json") -> Iterator[JsonFile]:
    """Parse every ``pattern`` file under ``directory`` (sorted); skip corrupt ones with a warning naming
    the file, so one truncated result never breaks a leaderboard. Temp files of writers in flight
    (``.<name>.<random>.tmp``) never match ``*.json``."""
    directory = Path(directory)
    if not directory.is_dir():
        return
    for path in sorted(directory.rglob(pattern)):
        if not path.is_file() or path.name.startswith("."):
            continue
        try:
            yield JsonFile(path, read_json(path))
        except ValueError as exc:
            msg = f"skipping corrupt result file {path}: {exc}"
            log.warning(msg)
            warnings.warn(msg, RuntimeWarning, stacklevel=2)


def remove_stale_temp_files(directory: str | os.PathLike) -> list[Path]:
    """Delete temp files a killed writer left in ``directory`` (its own partial output, never a result)."""
    directory = Path(directory)
    removed = []
    if directory.is_dir():
        for p in directory.rglob(f".*{TMP_SUFFIX}"):
            with contextlib.suppress(OSError):
                p.unlink()
                removed.append(p)
    return removed


# --------------------------------------------------------------------------------------------
# CSV exports that never run as formulas (OWASP "CSV injection")
# --------------------------------------------------------------------------------------------
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def escape_csv_cell(value: Any) -> Any:
    """Prefix ``'`` to a text cell a spreadsheet would evaluate (starts with = + - @ tab CR).

    Numbers stay numbers (a negative score is data, not a formula); only strings are escaped.

    >>> escape_csv_cell("=HYPERLINK(\\"http://x\\")"), escape_csv_cell(-0.5), escape_csv_cell("-0.5")
    ('\\'=HYPERLINK("http://x")', -0.5, "'-0.5")
    """
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def csv_text(rows: Iterable[Sequence[Any]], header: Sequence[str] | None = None) -> str:
    """CSV text with every cell (header included) formula-escaped; NaN written as an empty cell."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if header is not None:
        writer.writerow([escape_csv_cell(h) for h in header])
    for row in rows:
        writer.writerow(["" if isinstance(v, float) and math.isnan(v) else escape_csv_cell(v) for v in row])
    return buf.getvalue()


def atomic_write_csv(path: str | os.PathLike, rows: Iterable[Sequence[Any]],
                     header: Sequence[str] | None = None) -> Path:
    """Write a formula-escaped CSV atomically."""
    return atomic_write_text(path, csv_text(rows, header))


def safe_dataframe(df):
    """A copy of a pandas DataFrame whose string cells and column names are formula-escaped (for exports)."""
    out = df.copy()
    out.columns = [escape_csv_cell(str(c)) for c in out.columns]
    for col in out.columns:
        if out[col].dtype == object or str(out[col].dtype).startswith("str"):
            out[col] = out[col].map(escape_csv_cell)
    return out


def atomic_write_dataframe_csv(path: str | os.PathLike, df) -> Path:
    """``df.to_csv`` with formula escaping, written atomically."""
    return atomic_write_text(path, safe_dataframe(df).to_csv(index=False))


# --------------------------------------------------------------------------------------------
# Upload paths: only inside the upload area
# --------------------------------------------------------------------------------------------
def upload_roots() -> list[Path]:
    """Where uploaded files may live: Gradio's upload dir (``GRADIO_TEMP_DIR`` or ``<tmp>/gradio``, the
    same rule as ``gradio.utils.get_upload_folder``) plus any ``BERTVARIANTS_UPLOAD_DIRS`` (os.pathsep list)."""
    roots = [os.environ.get("GRADIO_TEMP_DIR") or str(Path(tempfile.gettempdir()) / "gradio")]
    roots += [p for p in os.environ.get("BERTVARIANTS_UPLOAD_DIRS", "").split(os.pathsep) if p]
    return [Path(r).resolve() for r in roots]


def safe_upload_path(value: Any, *, roots: Sequence[str | os.PathLike] | None = None) -> Path:
    """The real path of an uploaded file, refusing anything outside the upload area.

    ``value`` is a path string, a ``Path``, or a Gradio file value (dict or object with ``path``).
    Symlinks and ``..`` are resolved first, so neither can step outside. Raises ValueError.
    """
    if value is None:
        raise ValueError("no file was uploaded")
    if isinstance(value, dict):
        value = value.get("path") or value.get("name")
    elif not isinstance(value, (str, os.PathLike)) and hasattr(value, "path"):
        value = value.path
    if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
        raise ValueError(f"not a file path: {type(value).__name__}")
    if "\x00" in str(value):
        raise ValueError("file path contains a NUL byte")
    path = Path(value).resolve()
    allowed = [Path(r).resolve() for r in roots] if roots is not None else upload_roots()
    if not any(path == r or path.is_relative_to(r) for r in allowed):
        raise ValueError(f"refusing to open {Path(value).name!r}: only files uploaded to this app can be read")
    if not path.is_file():
        raise ValueError(f"uploaded file {path.name!r} no longer exists or is not a file")
    return path


MB = 1024 * 1024  # Gradio's "50mb" (gradio.utils.FileSize.MB) is 50 × 2**20 bytes
MAX_UPLOAD_BYTES = 50 * MB  # the app's launch(max_file_size="50mb")


def check_file_size(path: str | os.PathLike, *, max_bytes: int, what: str = "file") -> int:
    """Refuse empty files and files over ``max_bytes`` (stated in MB); return the size."""
    size = Path(path).stat().st_size
    if size == 0:
        raise ValueError(f"the {what} is empty (0 bytes)")
    if size > max_bytes:
        raise ValueError(f"the {what} is {size / MB:.1f} MB; the limit is {max_bytes / MB:g} MB")
    return size


# --------------------------------------------------------------------------------------------
# Content sniffing (magic numbers; never the file name)
# --------------------------------------------------------------------------------------------
VIDEO_KINDS = ("mp4", "mov", "webm", "mkv", "avi")
_MOV_BRANDS = {b"qt  "}


def sniff_bytes(head: bytes) -> str | None:
    """The container a file's first bytes announce, or None.

    Video: ISO-BMFF (``....ftyp<brand>``: brand ``qt  `` → mov, else mp4), EBML ``1A 45 DF A3`` (webm if the
    DocType says so within the head, else mkv), ``RIFF....AVI `` → avi. Also png, jpeg, gif, pdf, zip, gzip,
    json and text (valid UTF-8 without NUL bytes) so a wrong upload is named in the error message.
    """
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return "mov" if head[8:12] in _MOV_BRANDS else "mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "webm" if b"webm" in head[:64] else "mkv"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    for magic, kind in ((b"\x89PNG\r\n\x1a\n", "png"), (b"\xff\xd8\xff", "jpeg"), (b"GIF8", "gif"),
                        (b"%PDF", "pdf"), (b"PK\x03\x04", "zip"), (b"\x1f\x8b", "gzip"), (b"ID3", "mp3")):
        if head.startswith(magic):
            return kind
    if head and b"\x00" not in head:
        try:
            # a multi-byte character may be cut at the end of the head: drop at most 3 trailing bytes
            text = _decode_prefix(head)
        except UnicodeDecodeError:
            return None
        stripped = text.lstrip("\ufeff \t\r\n")
        return "json" if stripped[:1] in ("{", "[") else "text"
    return None


def _decode_prefix(head: bytes) -> str:
    for cut in range(min(4, len(head))):  # never cut down to nothing: one lone lead byte is not text
        try:
            return head[: len(head) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
    raise UnicodeDecodeError("utf-8", head, 0, len(head), "not UTF-8 text")


def sniff(path: str | os.PathLike, *, n: int = 4096) -> str | None:
    """:func:`sniff_bytes` on the first ``n`` bytes of a file."""
    with open(path, "rb") as f:
        return sniff_bytes(f.read(n))


def iso_bmff_boxes(path: str | os.PathLike, *, limit: int = 10_000) -> list[tuple[str, int, int]]:
    """Top-level MP4/MOV boxes as ``(type, offset, size)``; ValueError when a box runs past the end of
    the file (a truncated upload) or a size field is impossible (ISO/IEC 14496-12 §4.2)."""
    path = Path(path)
    total = path.stat().st_size
    boxes = []
    with open(path, "rb") as f:
        offset = 0
        while offset < total:
            f.seek(offset)
            header = f.read(8)
            if len(header) < 8:
                raise ValueError(f"the video is truncated: {total - offset} stray byte(s) after the last MP4 box")
            size = int.from_bytes(header[:4], "big")
            kind = header[4:8].decode("latin-1")
            if size == 1:  # 64-bit largesize follows the type
                large = f.read(8)
                if len(large) < 8:
                    raise ValueError("the video is truncated inside an MP4 box header")
                size = int.from_bytes(large, "big")
            elif size == 0:  # box extends to the end of the file
                size = total - offset
            if size < 8:
                raise ValueError(f"the video is corrupt: MP4 box {kind!r} at byte {offset} has size {size}")
            if offset + size > total:
                raise ValueError(f"the video is truncated: MP4 box {kind!r} at byte {offset} needs {size:,} bytes "
                                 f"but only {total - offset:,} remain")
            boxes.append((kind, offset, size))
            offset += size
            if len(boxes) > limit:
                raise ValueError("the video is corrupt: too many top-level MP4 boxes")
    return boxes


def check_video_file(value: Any, *, max_bytes: int = MAX_UPLOAD_BYTES, roots: Sequence[str | os.PathLike] | None = None,
                     check_path: bool = True) -> tuple[Path, str]:
    """Validate an uploaded video by content; return ``(path, container)`` or raise ValueError saying why.

    Refuses: paths outside the upload area, zero-length or oversized files, files whose bytes are not a
    video container whatever their extension (a binary renamed ``.mp4``), and MP4/MOV files that are
    truncated or lack the ``moov`` box a decoder needs.
    """
    path = safe_upload_path(value, roots=roots) if check_path else Path(value)
    check_file_size(path, max_bytes=max_bytes, what="video")
    kind = sniff(path)
    if kind not in VIDEO_KINDS:
        found = f"its content is {kind}" if kind else "its content is not a known video container"
        raise ValueError(f"{path.name!r} is not a video ({found}); upload an MP4, MOV, WebM, MKV or AVI file")
    if kind in ("mp4", "mov"):
        types = [b[0] for b in iso_bmff_boxes(path)]
        if "moov" not in types:
            raise ValueError(f"the video {path.name!r} is incomplete: it has no 'moov' (movie header) box")
    return path, kind


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks (data and weights provenance)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_path(path: str | os.PathLike) -> str:
    """:func:`sha256_file` of a file; of a directory (a corpus in parts), the sha256 of its files' names and
    sha256s in name order, so any change to any part changes it."""
    import hashlib

    path = Path(path)
    if not path.is_dir():
        return sha256_file(path)
    lines = [f"{p.relative_to(path).as_posix()} {sha256_file(p)}" for p in sorted(path.rglob("*")) if p.is_file()]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".onnx", ".gguf")


def weights_size(location: str | os.PathLike) -> int:
    """Bytes of the weight files of a checkpoint directory (or of one weight file); 0 when it is not on disk
    (a Hub id). Tokenizer and config files do not count."""
    path = Path(location)
    if path.is_file():
        return path.stat().st_size
    if not path.is_dir():
        return 0
    return sum(f.stat().st_size for f in path.iterdir() if f.is_file() and f.suffix in WEIGHT_SUFFIXES)
