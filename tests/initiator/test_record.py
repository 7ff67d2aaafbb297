"""initiator.record: the classes of the discover path behave as the frozen dataclasses they replace."""

from __future__ import annotations

import copy
import dataclasses
import pickle
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from initiator.record import FrozenFieldError, field, fields, record, replace


@record
class Point:
    KIND: ClassVar[str] = "point"
    x: int
    y: int = 0
    tags: list[int] = field(default_factory=list)
    note: str = field(default="", repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.x < 0:
            raise ValueError("x must not be negative")


@record
class Point3(Point):
    z: int = 0
    y: int = 5  # a redeclared field keeps its place


@record(frozen=False)
class Box:
    items: list[int] = field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class DataPoint:
    x: int
    y: int = 0
    tags: list[int] = dataclasses.field(default_factory=list)
    note: str = dataclasses.field(default="", repr=False, compare=False)


def test_fields_in_order_without_classvars() -> None:
    assert fields(Point) == ("x", "y", "tags", "note")
    assert fields(Point3(1)) == ("x", "y", "tags", "note", "z")
    assert Point3(1).y == 5 and Point(1).KIND == "point"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Point(), "missing required argument: 'x'"),
        (lambda: Point(1, x=2), "multiple values for argument 'x'"),
        (lambda: Point(1, 2, [], "", 5), "takes 4 positional arguments but 5 were given"),
        (lambda: Point(1, w=3), "unexpected keyword argument 'w'"),
    ],
)
def test_bad_calls_are_type_errors_as_for_a_dataclass(make: object, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        make()  # type: ignore[operator]


def test_post_init_runs_on_construction_and_replace() -> None:
    with pytest.raises(ValueError, match="negative"):
        Point(-1)
    with pytest.raises(ValueError, match="negative"):
        replace(Point(1), x=-1)


def test_frozen_and_mutable() -> None:
    point = Point(1)
    with pytest.raises(FrozenFieldError, match="'x'"):
        point.x = 2  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del point.y
    box = Box()
    box.items = [1]
    assert box == Box([1])
    with pytest.raises(TypeError, match="unhashable"):
        hash(box)


def test_default_factory_gives_each_instance_its_own() -> None:
    first, second = Point(1), Point(2)
    first.tags.append(3)
    assert second.tags == []


def test_other_classes_are_never_equal() -> None:
    assert Point(1) != Point3(1) and Point(1) != (1, 0, [], "") and Point(1) != DataPoint(1)


@given(st.integers(0, 1000), st.integers(), st.lists(st.integers(), max_size=3), st.text(max_size=5))
def test_eq_hash_repr_and_copies_as_the_dataclass(x: int, y: int, tags: list[int], note: str) -> None:
    ours, theirs = Point(x, y, tags, note), DataPoint(x, y, tags, note)
    assert ours == Point(x, y, list(tags), note + "!")  # note is not compared
    assert repr(ours) == repr(theirs).replace("DataPoint", "Point")
    assert (ours == Point(x, y + 1, tags, note)) is (theirs == DataPoint(x, y + 1, tags, note))
    hashable = Point(x, y, (), note)  # type: ignore[arg-type]
    assert hash(hashable) == hash(Point(x, y, (), ""))  # type: ignore[arg-type]
    assert dataclasses.replace(ours, y=y + 1) == replace(ours, y=y + 1) == Point(x, y + 1, tags, note)
    assert copy.copy(ours) == ours and copy.deepcopy(ours) == ours and pickle.loads(pickle.dumps(ours)) == ours
    assert replace(theirs, y=1) == DataPoint(x, 1, tags)  # replace() takes dataclasses too


def test_match_args_follow_the_fields() -> None:
    match Point(4, 5):
        case Point(x, y):
            assert (x, y) == (4, 5)
        case _:
            pytest.fail("no match")


def test_the_discover_path_imports_neither_dataclasses_nor_typing() -> None:
    """Issue 13's import diet, kept: what the by-hand `pyiscsi discover` to a numeric portal never loads (SCSI
    only with a command to send) or makes (CRC32C's tables only with a digest to compute)."""
    code = (
        "import sys; import boot.cli, boot.commands.discover, initiator.client, initiator.crc32c; "
        "from initiator.portal import Portal, parse_portal; from initiator.transport import _resolve; "
        "_resolve(parse_portal('127.0.0.1:3260')); _resolve(Portal('::1', 3260)); "
        "print(sorted(m for m in ('dataclasses', 'inspect', 'typing', 'pathlib', 'shutil', 'encodings.idna', "
        "'ipaddress', 'initiator.scsi') if m in sys.modules), initiator.crc32c._tables)"
    )
    root = Path(__file__).resolve().parents[2]  # -S: as in the frozen tree, no site (the editable finder's pathlib)
    out = subprocess.run(
        [sys.executable, "-S", "-c", code], cwd=root, capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[] ()"  # nothing of those, and no digest tables made at import
