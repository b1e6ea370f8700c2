"""Waiting in tests: for a condition (with a deadline) and for a Kafka topic (up to its end offsets).

A fixed `time.sleep` is either too short on a loaded machine (a flaky test) or too long everywhere
(a slow one); an idle timeout on a consumer is both. These wait for what the test needs, as long as
it takes and no longer, and a timeout names what was awaited and what was seen instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 60.0, interval: float = 0.1) -> T:
    """Call `probe` until it returns a truthy value and return that; fail after `timeout` s naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what} (last seen: {value!r})")
        time.sleep(interval)


def holds_for(what: str, probe: Callable[[], object], duration: float, interval: float = 0.1) -> None:
    """Assert `probe` stays truthy for `duration` s: for what must NOT happen, where no event says "done"."""
    deadline = time.monotonic() + duration
    while True:
        value = probe()
        assert value, f"{what} stopped holding (seen: {value!r})"
        if time.monotonic() >= deadline:
            return
        time.sleep(interval)


class TopicReader:
    """A Kafka topic read from its beginning; each `read()` returns what was added up to the end offsets
    at the time of the call, in (partition, offset) order, and returns as soon as it has that.

    It joins no consumer group (assigned partitions, no commits), so it disturbs no service under test.
    """

    def __init__(self, bootstrap_servers: str, topic: str, timeout: float = 60.0) -> None:
        from kafka import KafkaConsumer, TopicPartition

        self.topic = topic
        self.timeout = timeout
        consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False, group_id=None)
        try:
            parts = wait_for(f"the partitions of topic {topic}", lambda: consumer.partitions_for_topic(topic), timeout)
        except AssertionError:
            consumer.close()
            raise
        self._consumer = consumer
        self._parts = [TopicPartition(topic, p) for p in sorted(parts)]
        self._consumer.assign(self._parts)
        self._consumer.seek_to_beginning(*self._parts)

    def read(self) -> list[Any]:
        """The records (kafka-python `ConsumerRecord`s) added since the last read, up to the end offsets now."""
        consumer, parts = self._consumer, self._parts
        end: dict[Any, int] = consumer.end_offsets(parts)
        deadline = time.monotonic() + self.timeout
        records: list[Any] = []
        while any(consumer.position(tp) < end[tp] for tp in parts):
            if time.monotonic() >= deadline:
                behind = {tp.partition: (consumer.position(tp), end[tp]) for tp in parts}
                raise AssertionError(f"timed out after {self.timeout:g} s reading {self.topic} up to {behind}")
            for batch in consumer.poll(timeout_ms=500).values():
                records += batch
        for tp in parts:  # a poll may have fetched past the end of this read: leave those for the next one
            if consumer.position(tp) > end[tp]:
                consumer.seek(tp, end[tp])
        ends = {tp.partition: offset for tp, offset in end.items()}
        kept = [r for r in records if r.offset < ends[r.partition]]
        return sorted(kept, key=lambda r: (r.partition, r.offset))

    def close(self) -> None:
        self._consumer.close()

    def __enter__(self) -> TopicReader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def read_topic(bootstrap_servers: str, topic: str, timeout: float = 60.0) -> list[Any]:
    """Every record of `topic` up to its end offsets at call time, in (partition, offset) order."""
    with TopicReader(bootstrap_servers, topic, timeout) as reader:
        return reader.read()


def graphql(url: str, token: str, query: str, timeout: float = 60.0, **variables: Any) -> dict[str, Any]:
    """POST one GraphQL query to the API at `url` with a bearer token; the answer's body (HTTP 200 asserted)."""
    import httpx

    response = httpx.post(
        f"{url}/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
        timeout=timeout,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def graphql_data(url: str, token: str, query: str, **variables: Any) -> dict[str, Any]:
    """`graphql`'s `data`, asserting the answer has no errors."""
    body = graphql(url, token, query, **variables)
    assert not body.get("errors"), body
    data: dict[str, Any] = body["data"]
    return data
