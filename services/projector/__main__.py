"""`python -m provgraph.services.projector`: the projector with settings from the environment."""

import logging

from provgraph.events.settings import load_settings
from provgraph.services.projector.app import run_projector

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run_projector(load_settings())
