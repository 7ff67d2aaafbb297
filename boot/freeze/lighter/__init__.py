"""Sources the frozen tree carries in place of a library's own module (closure.DEFAULT_REPLACEMENTS says which
and why). They are data for the build, archived under the replaced module's name; nothing imports them here."""
