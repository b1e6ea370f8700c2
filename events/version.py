"""provgraph's version, read from the installed package's metadata: pyproject.toml is its only source.

Here, in the lowest layer, so the event producer URL and `provgraph.__version__` share it.
"""

from importlib.metadata import version

__version__ = version("provgraph")
