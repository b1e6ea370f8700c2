"""The software environment a run executed in, summarised for reproduce's comparison."""

from __future__ import annotations

import functools
import hashlib


@functools.cache
def packages_digest() -> str:
    """sha256 over the sorted `name==version` of every installed distribution (computed once per process)."""
    from importlib import metadata  # lazy: ~20 ms, only needed once a run starts

    names = sorted(
        f"{(d.metadata['Name'] or '').lower()}=={d.version}" for d in metadata.distributions() if d.metadata["Name"]
    )
    return "sha256:" + hashlib.sha256("\n".join(names).encode()).hexdigest()
