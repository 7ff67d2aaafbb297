"""Fetch and cache the pinned Debian kernel: `apt-get download`, `dpkg-deb -x`, `depmod -b`.

The result lives in `cache/kernel/<package>_<version>/` with a `.complete` stamp written last, so a half-done
unpack is never mistaken for a good one and a second `fetch` is a few stat() calls. Debian's archive only keeps
the newest point release of an ABI: if the pinned version is gone we fall back to the version the metapackage
named in the pin file depends on today, print that loudly, and remember it in `cache/kernel/current`.

    python -m harness.kernel fetch      # idempotent; prints the kernel directory
    python -m harness.kernel show       # prints what is cached, fetches nothing
"""

from __future__ import annotations

import argparse
import fcntl
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError
from harness.paths import CACHE, PIN_FILE

APT_TIMEOUT = 600.0
TOOL_TIMEOUT = 300.0


@dataclass(frozen=True)
class Pin:
    """The kernel package we want, and the metapackage to ask when the archive has moved on."""

    package: str
    version: str
    fallback: str

    @classmethod
    def parse(cls, text: str) -> Pin:
        fields: dict[str, str] = {}
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            key, sep, value = line.partition("=")
            if not sep:
                raise HarnessError(f"kernel.pin: line without '=': {line!r}")
            fields[key.strip()] = value.strip()
        missing = {"package", "version", "fallback"} - fields.keys()
        if missing:
            raise HarnessError(f"kernel.pin: missing {sorted(missing)}")
        return cls(fields["package"], fields["version"], fields["fallback"])

    @property
    def key(self) -> str:
        return f"{self.package}_{self.version}"


@dataclass(frozen=True)
class Kernel:
    """An unpacked kernel: the bzImage and a depmod'ed module tree under `root`."""

    root: Path
    release: str

    @property
    def vmlinuz(self) -> Path:
        return self.root / "boot" / f"vmlinuz-{self.release}"

    @property
    def modules(self) -> Path:
        return self.root / "lib" / "modules" / self.release


def kernel_cache() -> Path:
    return CACHE / "kernel"


def read_pin(path: Path = PIN_FILE) -> Pin:
    return Pin.parse(path.read_text())


def _release_of(root: Path) -> str:
    releases = sorted(p.name for p in (root / "lib" / "modules").iterdir() if p.is_dir())
    if len(releases) != 1:
        raise HarnessError(f"{root}: expected one module tree, found {releases}")
    return releases[0]


def cached(pin: Pin | None = None, cache: Path | None = None) -> Kernel | None:
    """The kernel already unpacked for this pin (or the recorded fallback), or None."""
    pin = pin or read_pin()
    cache = cache or kernel_cache()
    candidates = [cache / pin.key]
    current = cache / "current"
    if current.is_file():
        candidates.append(cache / current.read_text().strip())
    for root in candidates:
        if (root / ".complete").is_file():
            return Kernel(root, _release_of(root))
    return None


def _run(argv: list[str], cwd: Path | None = None, timeout: float = TOOL_TIMEOUT) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError as exc:
        raise HarnessError(f"{argv[0]}: not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise HarnessError(f"{' '.join(argv)}: no answer after {timeout:.0f}s") from exc


def _download(package: str, version: str, into: Path) -> Path | None:
    """`apt-get download pkg=ver` into `into`; None when apt does not know that version."""
    for attempt in (1, 2):
        proc = _run(["apt-get", "download", f"{package}={version}"], cwd=into, timeout=APT_TIMEOUT)
        debs = sorted(into.glob(f"{package}_*.deb"))
        if proc.returncode == 0 and debs:
            return debs[0]
        if attempt == 1:  # a machine that never ran `apt-get update` has no index to find it in
            _run(["apt-get", "update", "-qq"], timeout=APT_TIMEOUT)
    return None


def resolve_fallback(metapackage: str) -> tuple[str, str]:
    """The (package, version) the metapackage's candidate depends on, e.g. linux-image-6.1.0-56-amd64."""
    proc = _run(["apt-cache", "show", "--no-all-versions", metapackage])
    match = re.search(r"^Depends:.*?\b(linux-image-[\w.+-]+)\s*\(=\s*([^)\s]+)\)", proc.stdout, re.M)
    if proc.returncode != 0 or not match:
        raise HarnessError(f"apt-cache show {metapackage}: no linux-image dependency found ({proc.stderr.strip()})")
    return match.group(1), match.group(2)


def _unpack(deb: Path, dest: Path) -> Kernel:
    """dpkg-deb -x, then depmod -b so modprobe inside the guest finds dependencies."""
    proc = _run(["dpkg-deb", "-x", str(deb), str(dest)])
    if proc.returncode != 0:
        raise HarnessError(f"dpkg-deb -x {deb.name}: {proc.stderr.strip()}")
    release = _release_of(dest)
    proc = _run(["depmod", "-b", str(dest), release])
    if proc.returncode != 0:
        raise HarnessError(f"depmod -b {dest} {release}: {proc.stderr.strip()}")
    kernel = Kernel(dest, release)
    if not kernel.vmlinuz.is_file():
        raise HarnessError(f"{deb.name}: no {kernel.vmlinuz.relative_to(dest)} inside")
    return kernel


def fetch(pin: Pin | None = None, cache: Path | None = None, log=print) -> Kernel:
    """The pinned kernel, downloaded and unpacked once; later calls only look at the stamp."""
    pin = pin or read_pin()
    cache = cache or kernel_cache()
    have = cached(pin, cache)
    if have is not None:
        return have
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / ".lock").open("w") as lock:
        # Two test runs fetching at once: the second waits, then finds it. Bounded through the holder, whose
        # every step (apt-get, dpkg-deb, depmod) runs under a timeout.
        fcntl.flock(lock, fcntl.LOCK_EX)
        have = cached(pin, cache)
        return have if have is not None else _fetch_locked(pin, cache, log)


def _fetch_locked(pin: Pin, cache: Path, log) -> Kernel:
    with tempfile.TemporaryDirectory(dir=cache, prefix=".fetch-") as tmp:
        work = Path(tmp)
        package, version = pin.package, pin.version
        deb = _download(package, version, work)
        if deb is None:
            package, version = resolve_fallback(pin.fallback)
            log(
                f"harness.kernel: {pin.package}={pin.version} is no longer in the archive; "
                f"using {package}={version} (what {pin.fallback} depends on now). Update vm-tests/kernel.pin."
            )
            deb = _download(package, version, work)
            if deb is None:
                raise HarnessError(f"apt-get download {package}={version} failed too")
        key = f"{package}_{version}"
        staging = work / "root"
        staging.mkdir()
        _unpack(deb, staging)
        final = cache / key
        if final.exists():
            shutil.rmtree(final)
        staging.rename(final)
        (final / ".complete").write_text(f"{deb.name}\n")
        if key != pin.key:
            (cache / "current").write_text(key + "\n")
    found = cached(pin, cache)
    assert found is not None
    return found


def require() -> Kernel:
    """For tests and tools: the kernel, fetching it if `make deps` has not yet."""
    return fetch(log=lambda msg: print(msg, file=sys.stderr))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="harness.kernel", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["fetch", "show"])
    args = parser.parse_args(argv)
    try:
        kernel = fetch() if args.action == "fetch" else cached()
    except HarnessError as exc:
        print(f"harness.kernel: {exc}", file=sys.stderr)
        return 1
    if kernel is None:
        print("harness.kernel: nothing cached yet (run: python -m harness.kernel fetch)", file=sys.stderr)
        return 1
    print(f"{kernel.release} {kernel.root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
