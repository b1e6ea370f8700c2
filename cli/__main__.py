"""`python -m provgraph.cli`: the CLI from the running interpreter (how runs in a fresh process start)."""

from provgraph.cli import main

main()
