"""`python -m provgraph.services.launcher`: the launcher with settings from the environment."""

import logging

from provgraph.events.settings import load_settings
from provgraph.services.launcher.app import run_launcher

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run_launcher(load_settings())
