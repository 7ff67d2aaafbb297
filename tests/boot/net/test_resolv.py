from __future__ import annotations

import os

import pytest

from boot.net.resolv import render, write_resolv_conf
from initiator.errors import BadInputError


@pytest.mark.parametrize(
    ("servers", "search", "lines"),
    [
        (["10.0.0.53"], [], ["nameserver 10.0.0.53"]),
        (["10.0.0.53", "10.0.0.53", "2001:db8::35"], [], ["nameserver 10.0.0.53", "nameserver 2001:db8::35"]),
        (["1.1.1.1", "2.2.2.2", "3.3.3.3", "4.4.4.4"], [], [f"nameserver {i}.{i}.{i}.{i}" for i in (1, 2, 3)]),
        (
            ["2001:DB8::0035"],
            ["boot.test", "a.test", "boot.test"],
            ["nameserver 2001:db8::35", "search boot.test a.test"],
        ),
    ],
    ids=["one", "dedup-and-v6", "glibc-keeps-three", "normalised-and-search"],
)
def test_render(servers, search, lines):
    text = render(servers, search)
    assert text.splitlines()[0].startswith("#")
    assert text.splitlines()[1:] == lines
    assert text.endswith("\n")


@pytest.mark.parametrize("domain", ["bad domain", "x\nnameserver 6.6.6.6", "", "a..b"])
def test_hostile_search_domains_are_refused(domain):
    with pytest.raises(BadInputError, match="dns search domain"):
        render(["10.0.0.1"], [domain])


def test_bad_server_is_refused():
    with pytest.raises(ValueError):
        render(["10.0.0.1\nsearch evil"])


def test_written_atomically_over_a_symlink(tmp_path):
    target = tmp_path / "stub-resolv.conf"
    target.write_text("nameserver 127.0.0.53\n")
    link = tmp_path / "resolv.conf"
    link.symlink_to(target)
    write_resolv_conf(["10.0.0.53"], [], link)
    assert not link.is_symlink() and "nameserver 10.0.0.53" in link.read_text()
    assert target.read_text() == "nameserver 127.0.0.53\n"  # the stub's file is left alone
    assert oct(os.stat(link).st_mode & 0o777) == "0o644"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left
