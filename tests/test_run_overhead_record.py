"""The per-run shortcuts of issue 15 (round 6) leave the record and its checks as they were."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from provgraph._context import _dataset
from provgraph._emitter import RunEmitter
from provgraph.events.errors import ContractError
from provgraph.events.facets import CodeJobFacet, RuntimeRunFacet
from provgraph.events.facets.values import storable_problem
from provgraph.events.model import Dataset, RunEvent
from provgraph.events.transport.memory import MemoryTransport

CODE = CodeJobFacet(code_hash="sha256:" + "a" * 64, entrypoint="job.py:main", git_dirty=False)


def _emitter(job_name: str = "job") -> tuple[RunEmitter, MemoryTransport]:
    transport = MemoryTransport()
    return RunEmitter(transport, run_id="r-1", namespace="demo", job_name=job_name, code=CODE), transport


def _output(name: str) -> Dataset:
    return _dataset("demo", name, "sha256:" + "b" * 64, "out", output=True, kind="data", size=1, uri=None)


def test_later_events_are_still_checked_everywhere_but_the_known_job() -> None:
    """After the first event the job is not walked again; every other part of an event still is."""
    emitter, _ = _emitter()
    emitter.start({"a": 1}, runtime=_runtime())
    with pytest.raises(ContractError, match=r"outputs\.0\.name: string contains a NUL"):
        emitter.running(outputs=[_output("bad\x00name")])
    with pytest.raises(ContractError, match=r"provgraph_results\.results\.x: NaN is not a JSON number"):
        emitter.complete({"x": math.nan})


def test_a_job_that_cannot_be_stored_is_refused_on_the_first_event() -> None:
    emitter, transport = _emitter("bad\x00job")
    with pytest.raises(ContractError, match=r"job\.name: string contains a NUL"):
        emitter.start({}, runtime=_runtime())
    assert transport.events == []


def test_skipping_the_known_job_gives_the_same_answers() -> None:
    emitter, transport = _emitter()
    emitter.start({"a": [1, "x"]}, runtime=_runtime())
    emitter.running(outputs=[_output("o")])
    for event in transport.events:
        assert storable_problem(event, known=event.job) == storable_problem(event) is None
    bad = transport.events[-1].model_copy(update={"outputs": [_output("o"), _output("bad\x00name")]})
    expected = "outputs.1.name: string contains a NUL character (U+0000)"
    assert storable_problem(bad, known=bad.job) == storable_problem(bad) == expected


def test_events_after_the_first_serialise_as_fully_validated_ones() -> None:
    """The context only skips a walk: the events equal those validated without it."""
    emitter, transport = _emitter()
    emitter.start({"a": 1}, runtime=_runtime())
    emitter.running(outputs=[_output("o")])
    emitter.complete({"r": 2})
    for event in transport.events:
        again = RunEvent.model_validate(event.model_dump(by_alias=True))
        assert again.model_dump(mode="json", by_alias=True) == event.model_dump(mode="json", by_alias=True)


def test_datasets_do_not_share_their_binding_facet() -> None:
    first, second = _output("a"), _output("b")
    assert first.output_facets == second.output_facets
    assert first.output_facets is not None and second.output_facets is not None
    assert first.output_facets["provgraph_binding"] is not second.output_facets["provgraph_binding"]
    first.output_facets["provgraph_binding"]["name"] = "changed"
    assert _output("c").output_facets == second.output_facets


def _runtime() -> RuntimeRunFacet:
    return RuntimeRunFacet(kind="local", python="3.11")


def test_the_code_snapshot_of_a_symlinked_file_is_the_real_file(tmp_path: Path) -> None:
    """`snapshot` resolves the source as before: the real path, its stat, the same code hash."""
    from provgraph._code import load_from_file, snapshot

    real = tmp_path / "real.py"
    real.write_text("def main():\n    return 1\n")
    link = tmp_path / "link.py"
    link.symlink_to(real)
    snap = snapshot(load_from_file(link, "main"))
    assert snap.source_path == str(real.resolve())
    assert snap.unknown is None
    assert snap.source == real.read_bytes()


def test_a_run_takes_only_default_signal_dispositions_and_gives_them_back() -> None:
    """`EndingSignals` on `_signal` (round 14) replaces and restores exactly what it did through `signal`."""
    import signal

    from provgraph._lifeline import EndingSignals

    defaults = {
        signal.SIGTERM: signal.SIG_DFL,
        signal.SIGHUP: signal.SIG_DFL,
        signal.SIGINT: signal.default_int_handler,
    }
    assert {s: signal.getsignal(s) for s in defaults} == defaults
    with EndingSignals() as ending:
        assert {s: signal.getsignal(s) for s in defaults} == dict.fromkeys(defaults, ending._handle)
    after = {s: signal.getsignal(s) for s in defaults}
    assert after == defaults
    assert after[signal.SIGTERM] is signal.SIG_DFL  # the enum, as `signal` answered before

    def own(signum: int, frame: object) -> None:
        pass

    signal.signal(signal.SIGTERM, own)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with EndingSignals() as ending:
            inside = {s: signal.getsignal(s) for s in defaults}
        assert inside == {signal.SIGTERM: own, signal.SIGHUP: signal.SIG_IGN, signal.SIGINT: ending._handle}
        assert {s: signal.getsignal(s) for s in defaults} == {
            **defaults,
            signal.SIGTERM: own,
            signal.SIGHUP: signal.SIG_IGN,
        }
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGHUP, signal.SIG_DFL)


def test_run_checks_each_input_once_and_a_handlers_own_url_still(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`provgraph.run` checks its inputs against provgraph's own files before the run; its DataItems do
    not check the same URLs again (round 14); a URL the handler names itself is still checked."""
    import provgraph as pg
    from provgraph._dataitem import ProtectedFiles

    settings = pg.load_settings(home=tmp_path / "home")
    backend = pg.Backend(settings)
    data = tmp_path / "in.txt"
    data.write_text("x")
    checked: list[str] = []
    check = ProtectedFiles.check

    def counted(self: ProtectedFiles, key: str, url: str) -> None:
        checked.append(url)
        check(self, key, url)

    monkeypatch.setattr(ProtectedFiles, "check", counted)

    def read(data: pg.DataItem) -> None:
        data.get()

    pg.run(read, inputs={"data": str(data)}, backend=backend).raise_for_state()
    assert checked == [str(data)]

    def sneaky(ctx: pg.Context, data: pg.DataItem) -> None:
        ctx.get_input("db", url=str(settings.events_db)).get()

    checked.clear()
    result = pg.run(sneaky, inputs={"data": str(data)}, backend=backend)
    assert checked.count(str(data)) == 1 and str(settings.events_db) in checked
    assert result.state == "FAIL"
    assert result.error is not None and "is inside provgraph's own folder" in result.error
    backend.close()


def test_after_the_first_event_the_emitter_walks_the_parts_it_was_given_not_the_whole_event(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Round 14: the whole-event walk runs for the first event only; later events are walked part by part
    (facets and datasets) and validated without it, and serialise the same."""
    from provgraph.events import model

    walks: list[object] = []
    walk = storable_problem

    def counted(value: object, path: str = "", *, known: object = None) -> str | None:
        walks.append(value)
        return walk(value, path, known=known)

    monkeypatch.setattr(model, "storable_problem", counted)
    emitter, transport = _emitter()
    emitter.start({"a": [1, "x"]}, runtime=_runtime())
    emitter.running(outputs=[_output("o")])
    emitter.metric("loss", math.nan, 1)
    emitter.running()
    emitter.complete({"r": 2})
    assert len(walks) == 1 and isinstance(walks[0], RunEvent) and walks[0].event_type == "START"
    for event in transport.events:
        assert storable_problem(event) is None
        again = RunEvent.model_validate(event.model_dump(by_alias=True))
        assert again.model_dump(mode="json", by_alias=True) == event.model_dump(mode="json", by_alias=True)
    assert transport.events[1].outputs[0].name == "o"


@pytest.mark.parametrize(
    ("emit", "message"),
    [
        (
            lambda e: e.running(outputs=[_output("o").model_copy(update={"input_facets": {"x": {"y": 2**70}}})]),
            r"outputs\.0\.inputFacets\.x\.y: integer 1180591620717411303424 is outside the signed 64-bit range",
        ),
        (
            lambda e: e.running(inputs=[_output("o"), _output("p").model_copy(update={"name": "p\udc80"})]),
            r"inputs\.1\.name: string is not valid UTF-8",
        ),
        (lambda e: e.complete({"x": {1: "a"}}), r"provgraph_results\.results\.x: key 1 is not a string"),
        (lambda e: e.complete({"deep": _nested(70)}), r"nested deeper than 64 levels"),
        (
            lambda e: e.start({}, runtime=_runtime().model_copy(update={"pid": 2**64})),
            r"provgraph_runtime\.pid: integer 18446744073709551616 is outside",
        ),
    ],
)
def test_parts_walked_by_the_emitter_are_refused_as_the_whole_event_walk_refuses_them(
    emit: object, message: str
) -> None:
    """A part the emitter's own walk refuses sends the event through the whole-event walk: same refusal."""
    emitter, transport = _emitter()
    emitter.start({"a": 1}, runtime=_runtime())
    with pytest.raises(ContractError, match=message):
        emit(emitter)  # type: ignore[operator]
    assert len(transport.events) == 1


def _nested(levels: int) -> object:
    value: object = 1
    for _ in range(levels):
        value = [value]
    return value
