"""build(): write the frozen tree, then run every import our code makes at boot with the tree's own interpreter."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from boot.freeze.bytecode import write_bytecode
from boot.freeze.closure import NOT_PROBED, collect_extensions, collect_sources, excluded, find_closure
from boot.freeze.imports import runtime_imports
from boot.freeze.interpreter import check_magic, host_interpreter
from boot.freeze.layout import BYTECODE_DIR, EXEC_MODE, FrozenTree, interpreter_variables, rel, wrapper_script
from boot.freeze.libraries import find_dlopen_library, install_host_file, shared_libraries
from boot.freeze.options import FreezeOptions
from boot.freeze.verify import check_imports
from initiator.errors import BadInputError


def build(options: FreezeOptions) -> FrozenTree:
    """Write the frozen tree under options.out (which may already hold an initramfs staging tree).

    Unless told not to, the build ends by running each import statement of ours in the tree, so a tree that
    would fail at boot (a module or a name missing) is an error here, naming the statement."""
    interpreter = options.interpreter or host_interpreter()
    if not interpreter.is_file():
        raise BadInputError("interpreter", str(interpreter), "no such file")
    check_magic(interpreter)
    finder, missing = find_closure(options)
    sources = collect_sources(finder, options.excludes)
    extensions = collect_extensions(finder)
    root = options.out
    prefix = options.prefix
    lib = root / rel(prefix / "lib")
    write_bytecode(lib / BYTECODE_DIR, sources, options.optimize, options.line_numbers)  # getpath's landmark: os.pyc
    dynload = lib / BYTECODE_DIR / "lib-dynload"
    dynload.mkdir(parents=True, exist_ok=True)  # getpath's exec_prefix landmark, even when empty
    bindir = root / rel(prefix / "bin")
    bindir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(interpreter, bindir / "python3")
    os.chmod(bindir / "python3", EXEC_MODE)
    for path in extensions.values():
        shutil.copyfile(path, dynload / path.name)
        os.chmod(dynload / path.name, EXEC_MODE)
    if options.wrapper is not None:
        wrapper = root / rel(options.wrapper)
        wrapper.parent.mkdir(parents=True, exist_ok=True)
        wrapper.write_text(wrapper_script(prefix, interpreter_variables(interpreter)))
        os.chmod(wrapper, EXEC_MODE)
    libraries: set[str] = set()
    dlopen = [soname for soname, user in options.dlopen if user in finder.modules]
    if options.copy_libraries:
        for elf in [interpreter, *extensions.values()]:
            libraries.update(shared_libraries(elf))
        for soname in dlopen:
            where = find_dlopen_library(soname)
            libraries.add(where)
            libraries.update(shared_libraries(Path(where)))
        for library in sorted(libraries):
            install_host_file(library, root)
    tree = FrozenTree(
        root=root,
        prefix=prefix,
        entries=tuple(name for name in options.entries if name not in missing),
        modules=tuple(sorted(sources)),
        extensions=tuple(sorted(extensions)),
        libraries=tuple(sorted(libraries)),
        missing_entries=missing,
        probes=tuple(name for name in options.extras if name not in NOT_PROBED),
        unresolved=tuple(sorted(name for name in finder.badmodules if not excluded(name, options.excludes))),
        imports=runtime_imports(finder, options.excludes, options.own_packages),
    )
    if options.check_imports:
        check_imports(tree)
    return tree
