"""initiator.unique: bytes that never wait for the kernel's entropy pool (who draws them for the ISID, and
who does not for CHAP: tests/initiator/test_login.py)."""

from __future__ import annotations

import errno
import os

import pytest

from initiator import unique


def test_bytes_of_the_asked_length_and_different_each_time() -> None:
    draws = {unique.unique_bytes(8) for _ in range(50)}
    assert len(draws) == 50 and all(len(d) == 8 for d in draws)
    assert unique.unique_bytes(0) == b""


INSECURE, NONBLOCK = unique.GRND_INSECURE, os.GRND_NONBLOCK


# (what getrandom does per flag) -> the flags tried, in order, and whether os.urandom (which waits) is the last resort
@pytest.mark.parametrize(
    ("fails", "tried", "urandom"),
    [
        ({}, [INSECURE], False),
        ({INSECURE: errno.EINVAL}, [INSECURE, NONBLOCK], False),
        ({INSECURE: errno.EINVAL, NONBLOCK: errno.EAGAIN}, [INSECURE, NONBLOCK], True),
        ({INSECURE: errno.ENOSYS, NONBLOCK: errno.ENOSYS}, [INSECURE, NONBLOCK], True),
    ],
)  # fmt: skip
def test_a_kernel_without_insecure_reads_falls_back(monkeypatch, fails, tried, urandom) -> None:
    calls: list[int] = []

    def getrandom(count: int, flags: int) -> bytes:
        calls.append(flags)
        if flags in fails:
            raise OSError(fails[flags], os.strerror(fails[flags]))
        return b"g" * count

    monkeypatch.setattr(os, "getrandom", getrandom)
    monkeypatch.setattr(os, "urandom", lambda count: b"u" * count)
    assert unique.unique_bytes(3) == (b"uuu" if urandom else b"ggg")
    assert calls == tried
