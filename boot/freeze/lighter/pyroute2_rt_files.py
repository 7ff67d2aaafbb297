"""pyroute2's `netlink.rt_files` (0.9), as the frozen tree carries it: the same classes without `dataclasses`.

The library declares its eleven iproute2 map files (rt_tables, rt_protos, group, ...) as dataclasses, and
`netlink.nlsocket` imports the module whenever any socket module is: `dataclasses` then compiles each class's
methods with exec() at import, 6 ms of the boot's imports on a host and twenty times that under TCG, for files
the boot reads only when a caller names a table, protocol or group by its name (the boot uses numbers). Here the
methods are written once on the base class; the file format, the lookups and what a bad line raises are the
library's. pyroute2 0.7 has no such module, and then nothing imports this one.
"""

from __future__ import annotations

from pathlib import Path

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Iterator


class IPRouteRtFile:
    """One iproute2 map file (`ID NAME` lines) read from the first of DIRECTORIES that has it or its `.d`."""

    # like iproute2, stop at the first directory that has the file
    DIRECTORIES = (Path("/etc/iproute2/"), Path("/usr/share/iproute2/"))

    def __init__(self, filename: str | None = None, id2name: dict | None = None, name2id: dict | None = None) -> None:
        """The library's signature; as there, the maps given are replaced by what the files hold."""
        self.filename = self.get_rt_filename() if filename is None else filename
        self.load_files()

    @classmethod
    def get_rt_filename(cls) -> str:
        """The class's file name, without an instance (KeyError for the base class, which names none)."""
        for klass in cls.__mro__:
            name = vars(klass).get("filename")
            if isinstance(name, str):
                return name
        raise KeyError(f"no filename in {cls}")

    def _iter_files(self, filepath: Path) -> Iterator[Path]:
        d_folder = Path(f"{filepath}.d")
        if filepath.exists():
            yield filepath
        if d_folder.exists():
            yield from (p for p in d_folder.iterdir() if p.suffix == ".conf")

    def iter_files(self) -> Iterator[Path]:
        next_folder = True
        for folder in self.DIRECTORIES:
            for filepath in self._iter_files(folder / self.filename):
                next_folder = False
                yield filepath
            if not next_folder:
                return

    def load_files(self) -> None:
        self.id2name = {}
        self.name2id = {}
        for filename in self.iter_files():
            with filename.open(encoding="utf-8") as fp:
                for line in fp.readlines():
                    line = line.strip()
                    if not line or line[0] == "#":
                        continue
                    rt_id_as_str, rt_name = line.split()
                    if rt_id_as_str.startswith("0x"):
                        rt_id = int(rt_id_as_str[2:], 16)
                    elif ":" in rt_id_as_str:  # a tc handle, major:minor in hex
                        major, minor = (int(x if x else "0", 16) for x in rt_id_as_str.split(":"))
                        rt_id = (major << 16) | minor
                    else:
                        rt_id = int(rt_id_as_str)
                    if rt_id in self.id2name:
                        continue  # the first name of an id wins
                    self.id2name[rt_id] = rt_name
                    self.name2id[rt_name] = rt_id

    def get_rt_id(self, rt_name: str | int, default: int | None = None) -> int | None:
        """The id of a name; an int, or a string of digits, is its own id."""
        if isinstance(rt_name, int):
            return rt_name
        if rt_name.isdigit():
            return int(rt_name)
        if default is None:
            return self.name2id[rt_name]
        return self.name2id.get(rt_name, default)

    def get_rt_name(self, rt_id: str | int, default: str | None = None) -> int | str | None:
        """The name of an id (the id itself when it has none); a string is returned as it is."""
        if isinstance(rt_id, str):
            return rt_id
        if default is None:
            return self.id2name.get(rt_id, rt_id)
        return self.id2name.get(rt_id, default)

    def __iter__(self) -> Iterator[tuple[int, str]]:
        yield from self.id2name.items()

    def _fields(self) -> tuple[object, ...]:
        return (self.filename, self.id2name, self.name2id)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._fields() == other._fields()  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]  # as a dataclass with eq and without frozen

    def __repr__(self) -> str:
        maps = f"id2name={self.id2name!r}, name2id={self.name2id!r}"
        return f"{type(self).__qualname__}(filename={self.filename!r}, {maps})"


# the library's classes, one a file: (class name, file name)
MAP_FILES = (
    ("EmatchMapFile", "ematch_map"),
    ("NlProtosFile", "nl_protos"),
    ("RtAddrProtosFile", "rt_addrprotos"),
    ("RtDsfieldFile", "rt_dsfield"),
    ("GroupFile", "group"),
    ("RtProtosFile", "rt_protos"),
    ("RtRealmsFile", "rt_realms"),
    ("RtScopesFile", "rt_scopes"),
    ("RtTablesFile", "rt_tables"),
    ("TcClsFile", "tc_cls"),
)
for _name, _filename in MAP_FILES:
    globals()[_name] = type(_name, (IPRouteRtFile,), {"filename": _filename, "__module__": __name__})
del _name, _filename
__all__ = ["IPRouteRtFile", *(name for name, _ in MAP_FILES)]
