"""Running the API under uvicorn: `serve` for `provgraph serve`, `ServerThread` for tests and benchmarks.

    serve(settings, host="127.0.0.1", port=8765)                 # blocks until Ctrl-C
    with ServerThread(create_app(settings)) as url:               # http://127.0.0.1:<free port>
        httpx.post(url + "/graphql", ...)

`--insecure-local` (no tokens) is refused unless the server binds to loopback only.
"""

from __future__ import annotations

import gc
import socket
import sys
import threading
import time
from types import TracebackType

import uvicorn
from starlette.types import ASGIApp

from provgraph.events.errors import ConfigError
from provgraph.events.settings import Settings

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
SWITCH_INTERVAL_S = 0.001
"""The GIL switch interval of a serving process (Python's default: 5 ms). The event loop asks for the
GIL at every step of a request while costly lane and walk threads compute; 1 ms bounds each wait
(bench/bench_fairness.py: event-loop lag p99 ~20 -> ~12 ms under load)."""


def check_insecure_local(host: str, insecure_local: bool) -> None:
    """`ConfigError` when serving without tokens on anything but loopback."""
    if insecure_local and host not in LOOPBACK_HOSTS:
        raise ConfigError(
            f"--insecure-local serves without API tokens and is allowed only on 127.0.0.1 or localhost, not {host!r};"
            " create a token with `provgraph token create --project P` instead"
        )


def serve(settings: Settings, host: str, port: int, *, insecure_local: bool = False) -> None:
    """Serve the API until interrupted."""
    check_insecure_local(host, insecure_local)
    from provgraph.api.app import create_app

    app = create_app(settings, insecure_local=insecure_local)
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    # What is alive now (modules, the schema) lives as long as the process: keep it out of the full
    # collections, whose pauses stop every thread (the loop's included) for as long as they scan.
    gc.collect()
    gc.freeze()
    uvicorn.run(app, host=host, port=port, log_level="info", server_header=False, proxy_headers=False)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class ServerThread:
    """uvicorn serving `app` in a daemon thread; the context manager yields its base URL."""

    def __init__(self, app: ASGIApp, host: str = "127.0.0.1", port: int = 0, startup_timeout: float = 30) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.startup_timeout = startup_timeout
        config = uvicorn.Config(
            app, host=self.host, port=self.port, log_level="warning", lifespan="on", server_header=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=f"api-{self.port}", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the API server did not start on {self.url}")
            time.sleep(0.02)
        return self.url

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
