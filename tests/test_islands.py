"""The island model: migration (ring and random), determinism of synchronous migration, resume of a
multi-island run, mined points with islands, the config keys, and (marked ``ray``) islands on Ray
actors, one of which is killed mid-run."""

from __future__ import annotations

import json
import math
import time
from dataclasses import replace

import numpy as np
import pytest
from test_engine import BASE, SMALL, _without_boundary, stripped

from evo.api import evolve, resume
from evo.config import resolve
from evo.errors import UsageError
from evo.front import ParetoFront
from evo.islands import (
    ArchipelagoState,
    IslandFactory,
    IslandRecord,
    Request,
    destinations,
    island_seed,
    migration_rng,
    state_text,
)
from evo.objective import Objective
from evo.population import Individual, Population
from evo.problem import build_problem
from evo.runlog import RunReader, dumps
from evo.state import SearchState, driver_rng
from primitives.floatbits import get_format, parse_hex
from primitives.program import Program
from targets.scoring import Score
from tests.shared_helpers import kill_host_once

ISLANDS = dict(BASE, islands=2, migrate_every=100, migrants=2, checkpoint_every=200, progress_every=100)


def _member(id_: int, err: float) -> Individual:
    score = Score(err, err, 0.0, 1, 0, 0, 0, "ulp", "search")
    return Individual(id_, Program.identity("float32"), score, 1.0, None, "seed")


def _checkpoint(run_dir) -> dict:
    return json.loads((run_dir / "checkpoint.json").read_text())


# ----------------------------------------------------------------------------- migration
def test_ring_sends_to_the_next_island_and_random_never_to_itself():
    assert destinations(3, "ring", migration_rng(0).generator()) == [1, 2, 0]
    draws = [destinations(4, "random", migration_rng(seed).generator()) for seed in range(50)]
    assert all(target != source for d in draws for source, target in enumerate(d))
    assert {tuple(d) for d in draws} != {tuple(draws[0])}  # really drawn
    assert {t for d in draws for t in d} == {0, 1, 2, 3}
    seven = migration_rng(7)
    assert destinations(4, "random", seven.generator()) == destinations(4, "random", seven.generator())


def _boxed(count: int) -> ArchipelagoState:
    """``count`` islands, island i with members 10 i + 1 and 10 i + 2 in its outbox."""
    records = tuple(
        IslandRecord(
            i, island_seed(1, i), 100, "{}", outbox=(_member(10 * i + 1, 1.0), _member(10 * i + 2, 2.0))
        )
        for i in range(count)
    )
    return ArchipelagoState(records, ParetoFront(), migration_rng(1))


def test_migrate_moves_each_outbox_into_its_destinations_inbox_and_leaves_the_old_state_as_it_was():
    state = _boxed(3)
    before = dumps(state.to_dict())
    after, moves = state.migrated("ring")
    assert [m[:2] for m in moves] == [[0, 1], [1, 2], [2, 0]]
    assert [ind.id for ind in after.islands[1].inbox] == [1, 2]
    assert [ind.id for ind in after.islands[0].inbox] == [21, 22]
    assert all(not r.outbox for r in after.islands) and after.migrations == 1
    assert dumps(state.to_dict()) == before and state.migrations == 0  # a new value, the old one intact
    assert all(len(r.outbox) == 2 and not r.inbox for r in state.islands)
    assert len({island_seed(1, i) for i in range(8)}) == 8  # every island has its own stream


def test_random_migration_draws_from_the_states_rng_and_moves_it_on():
    state = _boxed(4)
    first, moves = state.migrated("random")
    again, same = state.migrated("random")  # the same value migrates the same way
    assert moves == same and first.rng == again.rng != state.rng
    assert [m[:2] for m in moves] == [
        [i, t] for i, t in enumerate(destinations(4, "random", state.rng.generator()))
    ]
    # one island at a time (asynchronous) draws as the round does, island by island
    one_by_one, async_moves = state.emigrated([0, 1, 2, 3], "random")
    assert async_moves == moves and one_by_one.rng == first.rng and one_by_one.migrations == 0
    later, _ = replace(first, islands=state.islands).migrated("random")
    assert later.rng != first.rng  # the next round draws on


@pytest.mark.parametrize("migration", ["ring", "random"])
def test_a_run_moves_the_best_programs_between_islands(tmp_path, migration):
    # just past the first migration (at 100 evaluations per island): island 0 has taken its
    # immigrants in, island 1's wait in its inbox
    result = evolve(ISLANDS, islands=2, migration=migration, max_evals=202, seed=4, runs_dir=str(tmp_path))
    checkpoint = _checkpoint(result.run_dir)
    first, second = checkpoint["islands"]
    migrants = [d for d in first["state"]["population"] if d["mutation"] == "migrant"]
    assert len(migrants) == 2
    assert all(d["parent"] % 2 == 1 and d["id"] % 2 == 0 for d in migrants)  # from island 1, ids of island 0
    assert len(second["inbox"]) == 2 and all(d["id"] % 2 == 0 for d in second["inbox"])
    (event,) = [e for e in RunReader(result.run_dir).events("migration")]
    assert event["n_evals"] == 200 and event["round"] == 1
    assert {tuple(m[:2]) for m in event["moves"]} == {(0, 1), (1, 0)}
    sent_by_1 = next(m[2] for m in event["moves"] if m[0] == 1)
    assert sorted(sent_by_1) == sorted(d["hash"] for d in migrants)
    # what moved are the sender's two best members (island 1 has not run since the migration)
    members = [Individual.from_dict(d) for d in second["state"]["population"]]
    best_two = sorted(members, key=Objective().key)[:2]
    assert [m.program.canonical_hash() for m in best_two] == sent_by_1


# ----------------------------------------------------------------------------- determinism and resume
def test_serial_islands_with_sync_migration_are_deterministic(tmp_path):
    kw = dict(
        ISLANDS,
        islands=3,
        migration="random",
        sync_migration=True,
        max_evals=900,
        log_every_eval=50,
        runs_dir=str(tmp_path),
    )
    a, b, c = evolve(kw, seed=5), evolve(kw, seed=5), evolve(kw, seed=6)
    ea, eb = stripped(a.run_dir), stripped(b.run_dir)
    assert ea == eb
    assert {"improve", "front", "migration", "progress", "checkpoint", "eval"} <= {e["kind"] for e in ea}
    assert [e["moves"] for e in ea if e["kind"] == "migration"] != [
        e["moves"] for e in stripped(c.run_dir) if e["kind"] == "migration"
    ]
    n = [e["n_evals"] for e in ea if "n_evals" in e]
    assert n == sorted(n)
    assert json.loads((a.run_dir / "front.json").read_text()) == json.loads(
        (b.run_dir / "front.json").read_text()
    )


def test_resume_of_a_multi_island_run_equals_the_uninterrupted_run(tmp_path):
    # 500 is inside a migration round (150 per island): the resumed run finishes the round
    kw = dict(
        ISLANDS,
        migrate_every=150,
        seed=3,
        runs_dir=str(tmp_path),
        mine_every=100,
        mine_below=1e9,
        domain="1,1.001",
        restart_after=120,
    )
    whole = evolve(kw, max_evals=1000)
    part = evolve(kw, max_evals=500)
    assert part.n_evals == 500 and _checkpoint(part.run_dir)["format"] == "evo.islands/1"
    resumed = resume(part.run_dir, max_evals=1000)
    assert resumed.n_evals == 1000 and resumed.reason == "max_evals"
    ew, ep = stripped(whole.run_dir), stripped(part.run_dir)
    assert [e["kind"] for e in ep if e["kind"] in ("end", "resume")] == ["end", "resume", "end"]
    assert _without_boundary(ep, 500) == ew
    assert {"harden", "migration", "restart"} <= {e["kind"] for e in ew}
    assert json.loads((whole.run_dir / "front.json").read_text()) == json.loads(
        (part.run_dir / "front.json").read_text()
    )
    assert _checkpoint(whole.run_dir)["islands"] == _checkpoint(part.run_dir)["islands"]


def _factory(config, problem, islands: int) -> IslandFactory:
    from evo.assemble import _Scorer, evaluator_spec, search_rules

    rules = search_rules(config, problem)
    spec = evaluator_spec(config)
    return IslandFactory(rules, _Scorer(config), spec, problem.search, config.population_size, islands)


def test_an_island_rebuilt_from_a_snapshot_and_its_requests_is_the_island_that_ran_them():
    """What a lost actor and a resume rely on: the island's search is deterministic given its
    state and its requests (immigrants, hard points and a restart on stagnation included)."""
    from evo.assemble import island_state

    config = resolve(dict(SMALL, islands=2, restart_after=60, seed=9, max_evals=10**6))
    problem = build_problem(config)
    factory = _factory(config, problem, 2)
    records = island_state(config, problem, 2).islands
    live = factory.build(0, records[0].snapshot)
    taken = factory.build(0, json.loads(state_text(records[0].snapshot)))
    donor = factory.build(1, records[1].snapshot)
    donor.run(Request(1, 40))
    hard = (float(np.float32(1.0004)), float(np.float32(1.0007)))  # float32 inputs
    requests = [
        Request(0, 90, hard_points=hard),
        Request(0, 30, emigrate_at=120, migrants=2),
        Request(0, 10, immigrants=tuple(donor.state.population)[:2]),
    ]
    batches = [live.run(r) for r in requests]
    assert batches[1].emigrants and any(e.mutation == "migrant" for e in live.state.population)
    assert live.state.epoch >= 1 and live.state.hard_points == tuple(hard)
    snapshot = json.loads(state_text(taken.state))
    rebuilt = factory.build(0, snapshot, tuple(requests))
    assert state_text(rebuilt.state) == state_text(live.state)
    assert rebuilt.run(Request(0, 20)).events == live.run(Request(0, 20)).events
    assert state_text(factory.build(0, snapshot, tuple(requests[:2])).state) != state_text(live.state)


def test_a_checkpoint_holds_each_islands_snapshot_and_the_requests_filed_since():
    member = _member(5, 1.5)
    replay = [Request(0, 30), Request(0, 20, immigrants=(member,), hard_points=(1.25,), emigrate_at=50)]
    text = state_text(SearchState(Population(10), ParetoFront(), driver_rng(1), next_id=10, n_evals=10))
    record = IslandRecord(0, island_seed(1, 0), 60, text, replay=tuple(replay))
    state = ArchipelagoState((record,), ParetoFront(), migration_rng(1))
    data = json.loads(dumps(state.to_dict()))
    assert data["islands"][0]["state"]["n_evals"] == 10
    assert [r["count"] for r in data["islands"][0]["replay"]] == [30, 20]
    back = ArchipelagoState.from_dict(data, capacity=10)
    assert back.islands[0].replay == tuple(replay) and back.islands[0].n_evals == 60 and back.n_evals == 60
    data["islands"][0]["replay"][0]["count"] = -1
    with pytest.raises(ValueError, match="count"):
        ArchipelagoState.from_dict(data, capacity=10)


def _plain_checkpoint(state: ArchipelagoState) -> str:
    """The checkpoint encoded from scratch, every value of it as a plain dict."""
    data = state.to_dict()
    data["islands"] = [
        {
            "index": r.index,
            "seed": r.seed,
            "state": r.snapshot.to_dict() if isinstance(r.snapshot, SearchState) else json.loads(r.snapshot),
            "replay": [q.to_dict() for q in r.replay],
            "inbox": [i.to_dict() for i in r.inbox],
            "outbox": [i.to_dict() for i in r.outbox],
        }
        for r in state.islands
    ]
    data["front"] = state.front.to_list()
    return dumps(data)


def test_a_checkpoint_encodes_again_only_what_changed_and_always_equals_a_fresh_encoding():
    """Each island's text is kept between checkpoints (the states of one run share it); a new
    record's snapshot, requests or boxes must show in the next checkpoint, byte for byte as a
    fresh encoding, and an older state still encodes as it was."""
    live = SearchState(Population(10), ParetoFront(), driver_rng(1), next_id=10, n_evals=10)
    records = [IslandRecord(i, island_seed(1, i), 10, state_text(live)) for i in range(3)]
    records[2] = replace(records[2], snapshot=live)  # an island in this process: its state is a live value
    state = ArchipelagoState(tuple(records), ParetoFront(), migration_rng(1))
    first = dumps(state.to_dict())
    assert first == _plain_checkpoint(state)
    assert dumps(state.to_dict()) == first
    encoded = []
    a, b, c = state.islands
    a = replace(a, replay=(*a.replay, Request(0, 30, immigrants=(_member(7, math.inf),))))
    b = b.receiving((_member(4, 2.0), _member(5, 3.0)))
    c = replace(c, snapshot=replace(live, n_evals=40, next_id=40))
    second = state.with_islands((a, b, c))
    text = dumps(second.to_dict())
    encoded.append(text)
    assert text == _plain_checkpoint(second) and text != first
    b = replace(b, inbox=(), outbox=(_member(6, 1.0),))
    a = replace(a, snapshot=state_text(replace(live, n_evals=40, next_id=40)), replay=())
    third = second.with_islands((a, b, c))
    text = dumps(third.to_dict())
    assert text == _plain_checkpoint(third) and text not in encoded
    assert dumps(state.to_dict()) == first and dumps(second.to_dict()) == encoded[0]
    back = ArchipelagoState.from_dict(json.loads(text), capacity=10)
    assert [r.n_evals for r in back.islands] == [40, 10, 40] and back.islands[1].outbox[0].id == 6


def test_one_island_is_the_single_population_run(tmp_path):
    kw = dict(BASE, max_evals=300, seed=2, runs_dir=str(tmp_path), progress_every=100)
    one, default = evolve(kw, islands=1), evolve(kw)
    assert stripped(one.run_dir) == stripped(default.run_dir)
    assert _checkpoint(one.run_dir)["format"] == "evo.checkpoint/1"


def test_a_mined_point_is_never_a_select_point_with_islands(tmp_path):
    result = evolve(
        SMALL,
        islands=2,
        migrate_every=100,
        seed=2,
        seed_from="identity",  # a moving best, so that mining rounds keep finding new points
        max_evals=800,
        mine_every=100,
        mine_below=1e9,
        restart_after=0,
        runs_dir=str(tmp_path),
        selection="error",
    )
    checkpoint = _checkpoint(result.run_dir)
    hard = [parse_hex(t, get_format("float64")) for t in checkpoint["hard_points"]]
    assert len(hard) >= 32
    problem = build_problem(resolve({**SMALL, "max_evals": 1}))
    assert not set(hard) & {float(x) for x in problem.select.x}
    assert not set(hard) & {float(x) for x in problem.search.x}
    for island in checkpoint["islands"]:  # every island searches on (a prefix of) the run's hard points
        own = [parse_hex(t, get_format("float64")) for t in island["state"]["hard_points"]]
        assert own and own == hard[: len(own)]


# ----------------------------------------------------------------------------- config
@pytest.mark.parametrize(
    "bad, message",
    [
        ({"islands": 0}, "'islands' must be >= 1"),
        ({"migration": "star"}, "'migration' must be one of ring, random"),
        ({"migrate_every": 0}, "'migrate_every' must be >= 1"),
        ({"sync_migration": "yes"}, "'sync_migration' must be true or false"),
        ({"islands": 2, "sync_batch": 8}, "with islands use sync_migration"),
        ({"migrants": 500}, "migrants cannot exceed population_size"),
    ],
)
def test_bad_island_settings_are_one_line_errors(bad, message):
    with pytest.raises(UsageError, match=message):
        resolve({"max_evals": 10, **bad})


def test_island_flags(tmp_path):
    from evo.cli import _config_from_args, build_parser

    args = build_parser().parse_args(
        [
            "evolve",
            "--max-evals",
            "5",
            "--islands",
            "4",
            "--migrate-every",
            "50",
            "--migration",
            "random",
            "--sync-migration",
        ]
    )
    config = _config_from_args(args)
    assert (config.islands, config.migrate_every, config.migration, config.sync_migration) == (
        4,
        50,
        "random",
        True,
    )
    assert resolve({"max_evals": 5}).islands is None  # decided by the backend: 1 serial, one per Ray worker


# ----------------------------------------------------------------------------- Ray
RAY = dict(
    ISLANDS,
    domain="1,1.001",
    max_ops=6,
    migrate_every=100,
    progress_every=200,
    checkpoint_every=200,
    mine_every=200,
    mine_below=1e9,
    signoff="front",
    sync_migration=True,
    seed=8,
)


@pytest.mark.ray
def test_a_killed_island_actor_is_restored_from_its_snapshot(tmp_path):
    """With synchronous migration a Ray run is the serial run (sweeps for mining and sign-off run
    as Ray tasks); killing an actor mid-run changes nothing but an island_restored event."""
    from evo.assemble import make_executor

    config = resolve({**RAY, "max_evals": 800, "runs_dir": str(tmp_path), "backend": "ray", "workers": 2})
    serial = evolve({**RAY, "max_evals": 800, "runs_dir": str(tmp_path)})
    executor = make_executor(config, build_problem(config))
    killed: list[int] = []
    try:
        result = evolve(config, executor=executor, on_progress=kill_host_once(executor, 400, killed))
    finally:
        executor.close()
    assert killed and result.n_evals == 800 and result.reason == "max_evals"
    events = stripped(result.run_dir)
    assert [e["kind"] for e in events].count("island_restored") == 1
    assert [e for e in events if e["kind"] not in ("island_restored", "start")] == [
        e for e in stripped(serial.run_dir) if e["kind"] != "start"
    ]
    assert {"harden", "signoff", "migration"} <= {e["kind"] for e in events}
    assert result.front.entries and result.front == serial.front


@pytest.mark.ray
def test_asynchronous_migration_on_ray_exchanges_programs_and_merges_the_fronts(tmp_path):
    """Without synchronous migration each island sends its best programs when it reaches its
    migration count: the run finishes, migrants arrive on the other island, and the run's front
    is the merge of the islands' fronts."""
    # members live 3 migration periods, so the immigrants of the last few migrations are still there
    config = dict(
        RAY, sync_migration=False, signoff="none", mine_every=0, max_evals=2000, population_size=300
    )
    result = evolve(config, backend="ray", workers=2, runs_dir=str(tmp_path))
    assert result.reason == "max_evals" and result.n_evals == 2000
    moves = [m for e in RunReader(result.run_dir).events("migration") for m in e["moves"]]
    assert {tuple(m[:2]) for m in moves} == {(0, 1), (1, 0)} and all(len(m[2]) == 2 for m in moves)
    islands = _checkpoint(result.run_dir)["islands"]
    assert sum(r["state"]["n_evals"] for r in islands) == 2000
    # Pipelined hosts start an island's next batch before the other island's migrants are posted, so
    # immigrants arrive a batch or two late and the last ones may never be taken; those of the
    # migrations before are, and live on.
    holding = 0
    for index, island in enumerate(islands):
        arrived = [d for d in island["state"]["population"] if d["mutation"] == "migrant"]
        holding += bool(arrived)
        assert all(d["id"] % 2 == index and d["parent"] % 2 != index for d in arrived)
        sent_here = {h for m in moves if m[1] == index for h in m[2]}
        assert {d["hash"] for d in arrived} <= sent_here
    assert holding >= 1
    offered = [e for island in islands for e in ParetoFront.from_list(island["state"]["front"]).entries]
    merged = result.front.entries
    assert merged and {e.individual.program.canonical_hash() for e in merged} <= {
        e.individual.program.canonical_hash() for e in offered
    }
    for entry in offered:  # each island's front is on the run's front or no better than an entry of it
        assert any(m.cost <= entry.cost and m.select.max_err <= entry.select.max_err for m in merged)


class _SleepyIsland:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def run(self, request: Request) -> int:
        time.sleep(self.seconds)
        return request.island


def test_a_host_collect_brings_the_batches_done_soon_after_the_first_and_never_waits_on_an_idle_host(
    monkeypatch,
):
    import evo.ray_islands as ray_islands

    monkeypatch.setattr(ray_islands, "COLLECT_LINGER", 1.0)  # wait as long again as the first batch took
    host = ray_islands._IslandHost(None, threads=3)
    host.islands = {0: _SleepyIsland(0.2), 1: _SleepyIsland(0.3), 2: _SleepyIsland(1.2)}
    started = time.monotonic()
    host.start([Request(0, 1), Request(1, 1), Request(2, 1)])
    assert host.collect() == [0, 1]  # island 1 ended within the wait, island 2 did not
    assert time.monotonic() - started < 1.0
    assert host.collect() == [2]  # nothing else running: no wait
    host.islands[0] = _SleepyIsland(0.3)
    started = time.monotonic()
    assert host.step([Request(0, 1)]) == [0] and time.monotonic() - started < 0.55


@pytest.mark.ray
def test_warm_up_runs_a_throwaway_island_on_every_host_and_leaves_the_runs_islands_alone():
    from evo.assemble import island_state
    from evo.ray_executor import RayOptions
    from evo.ray_islands import RayIslands

    config = resolve(dict(SMALL, islands=2, seed=9, max_evals=10**6))
    problem = build_problem(config)
    pool = RayIslands(RayOptions(None, 2, 2, 16))
    try:
        records = pool.start(_factory(config, problem, 2), island_state(config, problem, 2).islands)
        pool.warm_up(records[0].snapshot, 30, index=99)
        texts = pool._ray.get([host.state_text.remote(99) for host in pool._hosts])
        assert len(texts) == 2 and all(json.loads(t)["n_evals"] == 30 for t in texts)
        assert [
            json.loads(pool._ray.get(pool._hosts[i].state_text.remote(i)))["n_evals"] for i in (0, 1)
        ] == [0, 0]
    finally:
        pool.close()
