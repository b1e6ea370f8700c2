"""`python -m provgraph.services.pipeline_controller`: the controller with settings from the environment."""

import logging

from provgraph.events.settings import load_settings
from provgraph.services.pipeline_controller.app import run_controller

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run_controller(load_settings())
