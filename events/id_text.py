"""How the `<namespace>:<name>` of a node id reads back (`graph.ids` builds and parses the ids).

A namespace may itself contain "://" (e.g. `s3://bucket`), so the namespace ends at the first ":"
that is not the start of "://"; a `:<digits>` right after a URI's host, followed by ":", is its port
(`postgres://host:5432`); an AWS ARN's first five fields are its namespace (OpenLineage names Glue
tables `arn:aws:glue:<region>:<account>` + `table/<db>/<table>`). Admission uses the same reading to
refuse a dataset whose id would read as another namespace's (`admission.check_ids`), so an id names
one dataset.
"""

from __future__ import annotations

import re

_PORT = re.compile(r":\d{1,5}:")
ARN = "arn:"
"""OpenLineage's namespace for AWS Glue is an ARN without its resource, `arn:aws:glue:<region>:<account>`."""


def split_namespace(text: str) -> tuple[str, str] | None:
    """(namespace, name) as `text` (`<namespace>:<name>`) reads, or None when no ":" ends a namespace."""
    if text.startswith(ARN):  # arn:partition:service:region:account, then the resource as the name
        parts = text.split(":", 5)
        if len(parts) == 6 and all(parts[1:3]):
            return ":".join(parts[:5]), parts[5]
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
