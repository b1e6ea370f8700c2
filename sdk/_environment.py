"""The software environment a run executed in, summarised for reproduce's comparison."""

from __future__ import annotations

import functools
import hashlib


@functools.cache
def packages_digest() -> str:
    """sha256 over the sorted `name==version` of every installed distribution (computed once per process).

    A name found twice on `sys.path` (e.g. a source checkout's egg-info before site-packages) counts
    once, as the first one, which is the one `importlib.metadata` resolves: the digest describes
    what is installed, not how many paths lead to it."""
    from importlib import metadata  # lazy: ~20 ms, only needed once a run starts

    versions: dict[str, str] = {}
    for d in metadata.distributions():
        if d.metadata["Name"]:
            versions.setdefault(d.metadata["Name"].lower(), d.version)
    names = sorted(f"{name}=={version}" for name, version in versions.items())
    return "sha256:" + hashlib.sha256("\n".join(names).encode()).hexdigest()
