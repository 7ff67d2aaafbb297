"""Random bytes that must differ, not stay secret (ISIDs, generated names, temporary file names).

A diskless boot reaches its login before the kernel's entropy pool is seeded on machines without a hardware
random source (QEMU's emulated CPUs, VMs without virtio-rng): there os.urandom() and a read of /dev/urandom
wait, under emulation for seconds, until the kernel has gathered enough timer jitter. These bytes never wait.
Secrets (CHAP challenges) still come from os.urandom().
"""

from __future__ import annotations

import os

GRND_INSECURE = 0x0004  # getrandom(2), Linux 5.6+: the pool's output whether or not it is seeded yet


def unique_bytes(count: int) -> bytes:
    """`count` random bytes without waiting for the pool; only a kernel before 5.6 with an unseeded pool waits."""
    for flags in (GRND_INSECURE, os.GRND_NONBLOCK):
        try:
            return os.getrandom(count, flags)
        except OSError:  # EINVAL: a kernel without GRND_INSECURE; EAGAIN: the pool is not seeded yet
            continue
    return os.urandom(count)
