"""The bytecode archive: one zip of unchecked hash-based .pyc files that is the same bytes on every build.

Entries sorted, timestamps 1980-01-01, fixed modes, no mtimes and no source needed at run time, a fixed optimize
level, and co_filename the module-relative path (never a path of the build machine).
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import subprocess
import sys
import zipfile
from importlib._bootstrap_external import _code_to_hash_pyc  # type: ignore[attr-defined]
from pathlib import Path

from boot.freeze.layout import FILE_MODE
from initiator.errors import BadInputError, WaitTimeout

FIXED_DATE = (1980, 1, 1, 0, 0, 0)
ZIP_BOUND = 300.0


def _pyc(source: bytes, rel_name: str, optimize: int) -> bytes:
    code = compile(source, rel_name, "exec", dont_inherit=True, optimize=optimize)
    return bytes(_code_to_hash_pyc(code, importlib.util.source_hash(source), False))


def write_zip(path: Path, sources: dict[str, Path], optimize: int, compress: bool = False) -> None:
    """A byte-for-byte reproducible archive of hash-based .pyc files, written by a fresh worker process.

    marshal marks an object for back-references when its refcount is above one, so the bytes of a .pyc depend
    on what else the compiling process holds (pytest, a long-lived build tool...). A worker that starts the same
    way every time, with a fixed hash seed, compiles the same sources to the same bytes.

    Members are stored, not deflated, unless `compress`: zipimport then reads a module without inflating it (a
    by-hand `pyiscsi discover` starts about a fifth sooner), and the initramfs's own zstd packs stored bytecode
    smaller than it packs deflated (3.4 MiB of deflated members stay 3.4 MiB; 8.3 MiB stored become 2.4 MiB), at
    the cost of the tree's unpacked size in the initramfs's RAM."""
    job = {
        "out": str(path),
        "optimize": optimize,
        "compress": compress,
        "sources": [[stem, str(sources[stem])] for stem in sorted(sources)],
    }
    root = str(Path(__file__).resolve().parents[2])
    code = f"import sys; sys.path.insert(0, {root!r}); from boot.freeze.archive import _zip_worker; _zip_worker()"
    env = {"PYTHONHASHSEED": "0", "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    try:
        result = subprocess.run(
            [sys.executable, "-I", "-S", "-B", "-c", code],
            input=json.dumps(job),
            capture_output=True,
            text=True,
            env=env,
            timeout=ZIP_BOUND,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise WaitTimeout("bytecode archive", ZIP_BOUND, str(path)) from exc
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[-1]
        raise BadInputError("bytecode archive", str(path), last)


def _zip_worker() -> None:
    """The worker's side of write_zip: a job as JSON on stdin."""
    job = json.load(sys.stdin)
    optimize = int(job["optimize"])
    method = zipfile.ZIP_DEFLATED if job.get("compress") else zipfile.ZIP_STORED
    level = 9 if method == zipfile.ZIP_DEFLATED else None
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=method, compresslevel=level) as archive:
        for stem, source_path in job["sources"]:
            try:
                pyc = _pyc(Path(source_path).read_bytes(), stem + ".py", optimize)
            except SyntaxError as exc:
                raise SystemExit(f"{source_path}: does not compile: {exc}") from None
            info = zipfile.ZipInfo(stem + ".pyc", date_time=FIXED_DATE)
            info.compress_type = method
            info.create_system = 3
            info.external_attr = (0o100000 | FILE_MODE) << 16
            archive.writestr(info, pyc, compresslevel=level)
    out = Path(job["out"])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(buffer.getvalue())
    os.chmod(out, FILE_MODE)
