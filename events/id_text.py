"""How the `<namespace>:<name>` of a node id reads back (`graph.ids` builds and parses the ids).

A namespace may itself contain "://" (e.g. `s3://bucket`), so the namespace ends at the first ":"
that is not the start of "://"; a `:<digits>` right after a URI's host, followed by ":", is its port
(`postgres://host:5432`). Admission uses the same reading to refuse a dataset whose id would read as
another namespace's (`admission.check_datasets`), so an id names one dataset.
"""

from __future__ import annotations

import re

_PORT = re.compile(r":\d{1,5}:")


def split_namespace(text: str) -> tuple[str, str] | None:
    """(namespace, name) as `text` (`<namespace>:<name>`) reads, or None when no ":" ends a namespace."""
    start, uri = 0, False
    while True:
        i = text.find(":", start)
        if i < 0:
            return None
        if text.startswith("://", i):
            start, uri = i + 3, True
            continue
        if uri and (port := _PORT.match(text, i)) is not None:
            start, uri = port.end() - 1, False
            continue
        return text[:i], text[i + 1 :]
