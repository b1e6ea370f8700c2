"""The software environment a run executed in, summarised for reproduce's comparison."""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterator

_LINE_END = re.compile(r"\r\n|\r|\n")
"""A line end (`\\r\\n`, `\\n` or `\\r`, as the email parser)."""
_HEADER_LINE = re.compile(r"[\041-\071\073-\176]*:|[\t ]")
"""A line of the header block: a name and a colon, or the next line of a folded value (the email
parser's `headerRE`; its `From ` line does not occur in core metadata)."""


@functools.cache
def packages_digest() -> str:
    """sha256 over the sorted `name==version` of every installed distribution (computed once per process).

    A name found twice on `sys.path` (e.g. a source checkout's egg-info before site-packages) counts
    once, as the first one, which is the one `importlib.metadata` resolves: the digest describes
    what is installed, not how many paths lead to it."""
    from importlib import metadata  # lazy: ~20 ms, only needed once a run starts

    versions: dict[str, str | None] = {}
    for d in metadata.distributions():
        # The file `Distribution.metadata` reads (an old egg-info may be the file itself: "").
        name, version = name_and_version(d.read_text("METADATA") or d.read_text("PKG-INFO") or d.read_text("") or "")
        if name:
            versions.setdefault(name.lower(), version)
    names = sorted(f"{name}=={version}" for name, version in versions.items())
    return "sha256:" + hashlib.sha256("\n".join(names).encode()).hexdigest()


def name_and_version(text: str) -> tuple[str | None, str | None]:
    """The first `Name` and `Version` of a core-metadata file, as `Distribution.metadata[...]` gives them.

    Read from the header block only, by this scan rather than the email parser: parsing every file
    whole (long descriptions included, and once per header asked) cost a first run in a fresh process
    hundreds of milliseconds with 130 packages installed. Same rules: the block ends at the first line
    that is not a header line, names match in any case, a value loses the blanks after its colon and
    its last line end, and a folded value keeps its next lines as written."""
    found: dict[str, str] = {}
    key = value = None
    for line in _lines(text):
        if not _HEADER_LINE.match(line):
            break
        if line[0] in " \t":
            if value is not None:
                value += line
            continue
        if key is not None and value is not None:
            found.setdefault(key, value.rstrip("\r\n"))
            if len(found) == 2:  # both first values are complete: the rest of the block cannot change them
                break
        name, _, rest = line.partition(":")
        key, value = (name.lower(), rest.lstrip(" \t")) if name.lower() in ("name", "version") else (None, None)
    if key is not None and value is not None:
        found.setdefault(key, value.rstrip("\r\n"))
    return found.get("name"), found.get("version")


def _lines(text: str) -> Iterator[str]:
    """`text`'s lines with their ends, read lazily: a header block is left after its first lines."""
    start = 0
    for end in _LINE_END.finditer(text):
        yield text[start : end.end()]
        start = end.end()
    yield text[start:]
