"""The Kubernetes API as the launcher uses it: the official client, blocking, errors translated here.

Every call returns plain JSON dicts (the API's own camelCase), not the client's models: the launcher
reads a handful of fields and deserialising whole models costs more than the request.

Errors leave this module as one of two kinds, by what the caller can do:

- `JobRefused`: the API refused this object for a reason retrying cannot fix (400 bad request,
  403 forbidden or over quota, 404 namespace not found, 422 invalid). The run fails with the message.
- `KubeUnavailable`: the API server could not be reached or answered 401/429/5xx. Try again later;
  nothing about the request is wrong.

Configuration: `settings.k8s_kubeconfig`, else `$KUBECONFIG` / `~/.kube/config`, else the
in-cluster service account (a launcher running as a Deployment).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from provgraph.events.errors import ConfigError, ProvgraphError, TransportError

if TYPE_CHECKING:
    from provgraph.events.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")

REQUEST_TIMEOUT_S = 30.0
"""Client-side timeout of one (non-watch) API call."""


class KubeUnavailable(TransportError):
    """The Kubernetes API could not be used right now; retry later."""


class JobRefused(ProvgraphError):
    """The Kubernetes API refused the object; the message is the API's reason."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class Gone(KubeUnavailable):
    """A watch's resourceVersion is too old (HTTP 410): list again, then watch from there."""


def _api_message(exc: Any) -> str:
    body = getattr(exc, "body", None) or ""
    try:
        return str(json.loads(body)["message"])
    except (TypeError, ValueError, KeyError):
        return str(getattr(exc, "reason", "") or exc)


def _translated(what: str, call: Callable[[], T]) -> T:
    from kubernetes.client.exceptions import ApiException

    try:
        return call()
    except ApiException as exc:
        status = int(exc.status or 0)
        message = f"{what}: {_api_message(exc)}"
        if status == 410:
            raise Gone(message) from exc
        if status in (400, 403, 404, 409, 422):
            raise JobRefused(message, status) from exc
        raise KubeUnavailable(f"{message} (HTTP {status})") from exc
    except (TransportError, ConfigError):
        raise
    except Exception as exc:  # urllib3 connection errors, timeouts, TLS …
        raise KubeUnavailable(f"{what}: {type(exc).__name__}: {exc}") from exc


def _request(what: str, call: Callable[[], Any]) -> bytes:
    """One API call made with `_preload_content=False`: its body, and its connection back in the pool
    (an unread response would keep it, and the next call would pay a new TLS handshake)."""

    def run() -> bytes:
        resp = call()
        try:
            return bytes(resp.data)
        finally:
            resp.release_conn()

    return _translated(what, run)


def _configuration(settings: Settings) -> Any:
    from kubernetes import client
    from kubernetes import config as kube_config
    from kubernetes.config.config_exception import ConfigException

    config: Any = kube_config  # its loaders are untyped
    cfg = client.Configuration()
    try:
        if settings.k8s_kubeconfig is not None:
            config.load_kube_config(config_file=str(settings.k8s_kubeconfig), client_configuration=cfg)
        else:
            try:
                config.load_kube_config(client_configuration=cfg)
            except ConfigException:
                config.load_incluster_config(client_configuration=cfg)
    except (ConfigException, OSError) as exc:
        raise ConfigError(
            "no Kubernetes configuration: set PROVGRAPH_K8S_KUBECONFIG or KUBECONFIG, or run the launcher in a"
            f" cluster ({exc})"
        ) from exc
    return cfg


class Kube:
    """Blocking, thread-safe (one connection pool) access to Jobs, Pods and Secrets."""

    def __init__(self, api_client: Any) -> None:
        from kubernetes import client

        self.api_client = api_client
        # Any: bodies go out and come back as plain JSON dicts, not the client's models
        self.batch: Any = client.BatchV1Api(api_client)
        self.core: Any = client.CoreV1Api(api_client)

    @classmethod
    def from_settings(cls, settings: Settings, *, pool_size: int | None = None) -> Kube:
        from kubernetes import client

        cfg = _configuration(settings)
        cfg.connection_pool_maxsize = pool_size or settings.launcher_concurrency + 8
        return cls(client.ApiClient(cfg))

    def close(self) -> None:
        self.api_client.close()

    # -- Jobs ------------------------------------------------------------------------------------

    def create_job(self, namespace: str, body: dict[str, Any], *, dry_run: bool = False) -> bool:
        """Create the Job; True if created, False if a Job of that name exists already (redelivery)."""
        name = body["metadata"]["name"]
        try:
            _request(
                f"creating Job {namespace}/{name}",
                lambda: self.batch.create_namespaced_job(
                    namespace,
                    body,
                    dry_run="All" if dry_run else None,
                    _preload_content=False,
                    _request_timeout=REQUEST_TIMEOUT_S,
                ),
            )
        except JobRefused as exc:
            if exc.status == 409:
                return False
            raise
        return True

    def list_jobs(self, namespace: str | None, label_selector: str) -> tuple[list[dict[str, Any]], str]:
        """The matching Jobs and the list's resourceVersion (where a watch resumes)."""

        def call() -> Any:
            kw = {"label_selector": label_selector, "_preload_content": False, "_request_timeout": REQUEST_TIMEOUT_S}
            if namespace is None:
                return self.batch.list_job_for_all_namespaces(**kw)
            return self.batch.list_namespaced_job(namespace, **kw)

        body = json.loads(_request(f"listing Jobs in {namespace or 'all namespaces'}", call))
        return list(body.get("items") or []), str(body["metadata"]["resourceVersion"])

    def watch_jobs(
        self, watch: Any, namespace: str | None, label_selector: str, resource_version: str, timeout_s: int
    ) -> Iterator[dict[str, Any]]:
        """Watch events ({"type", "raw_object": the Job as a dict}) from `resource_version`; ends after
        `timeout_s`.

        `watch` is a `kubernetes.watch.Watch(return_type=object)` (objects stay dicts; another thread
        can `stop()` it). Raises `Gone` when the resourceVersion is too old, `KubeUnavailable` when
        the stream breaks.
        """
        func = self.batch.list_job_for_all_namespaces if namespace is None else self.batch.list_namespaced_job
        args = () if namespace is None else (namespace,)
        stream = watch.stream(
            func,
            *args,
            label_selector=label_selector,
            resource_version=resource_version,
            allow_watch_bookmarks=True,
            timeout_seconds=timeout_s,
            _request_timeout=(REQUEST_TIMEOUT_S, timeout_s + REQUEST_TIMEOUT_S),
        )
        what = f"watching Jobs in {namespace or 'all namespaces'}"
        while True:
            event = _translated(what, lambda: next(stream, None))
            if event is None:
                return
            yield event

    def get_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            data = _request(
                f"reading Job {namespace}/{name}",
                lambda: self.batch.read_namespaced_job(
                    name, namespace, _preload_content=False, _request_timeout=REQUEST_TIMEOUT_S
                ),
            )
        except JobRefused as exc:
            if exc.status == 404:
                return None
            raise
        job: dict[str, Any] = json.loads(data)
        return job

    def patch_job(self, namespace: str, name: str, operations: list[dict[str, Any]]) -> None:
        """Apply a JSON patch (RFC 6902; a failed `test` operation raises `JobRefused` 422)."""
        _request(
            f"patching Job {namespace}/{name}",
            lambda: self.batch.patch_namespaced_job(
                name,
                namespace,
                operations,
                _content_type="application/json-patch+json",
                _preload_content=False,
                _request_timeout=REQUEST_TIMEOUT_S,
            ),
        )

    def delete_job(self, namespace: str, name: str) -> None:
        _request(
            f"deleting Job {namespace}/{name}",
            lambda: self.batch.delete_namespaced_job(
                name,
                namespace,
                propagation_policy="Background",
                _preload_content=False,
                _request_timeout=REQUEST_TIMEOUT_S,
            ),
        )

    # -- Pods and Secrets ------------------------------------------------------------------------

    def pods_of(self, job: dict[str, Any]) -> list[dict[str, Any]]:
        """The Job's pods (by the controller-uid label the Job controller sets), oldest first."""
        meta = job["metadata"]
        data = _request(
            f"listing pods of Job {meta['namespace']}/{meta['name']}",
            lambda: self.core.list_namespaced_pod(
                meta["namespace"],
                label_selector=f"batch.kubernetes.io/controller-uid={meta['uid']}",
                _preload_content=False,
                _request_timeout=REQUEST_TIMEOUT_S,
            ),
        )
        pods: list[dict[str, Any]] = json.loads(data).get("items") or []
        return sorted(pods, key=lambda p: p["metadata"].get("creationTimestamp") or "")

    def secret_exists(self, namespace: str, name: str) -> bool:
        try:
            _request(
                f"reading Secret {namespace}/{name}",
                lambda: self.core.read_namespaced_secret(
                    name, namespace, _preload_content=False, _request_timeout=REQUEST_TIMEOUT_S
                ),
            )
        except JobRefused as exc:
            if exc.status == 404:
                return False
            raise
        return True
