"""The island model: an island is a whole ``Search`` (own population, own seed stream) that runs
batches of ask -> evaluate -> tell wherever it lives; the archipelago state is what the driver
keeps of all islands (their snapshots, the merged front, the migrations) and checkpoints.

Child ids interleave (island i of N takes ids i, i + N, ...), so ids stay unique in the run and
every child's mutation stream is its own. Migrants enter another island as new members with an id
of that island (their parent is the migrant's id, their mutation ``migrant``), re-scored on the
island's search set if it differs from the one they were scored on.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from evo.events import Event, Front, Improve
from evo.front import FrontEntry, ParetoFront
from evo.population import Individual
from evo.rng_state import Draws, RngState
from evo.runlog import RawJSON, dumps
from evo.search import Search
from evo.state import SearchState, _checked_front, _checked_rng_state, _individual, _is_count
from primitives.floatbits import format_hex, get_format, parse_hex
from targets.dataset import Dataset, with_extra_points
from targets.scoring import Score

ISLANDS_SCHEMA = "evo.islands/1"


def island_seed(run_seed: int, index: int) -> int:
    """The seed of island ``index``'s tournaments: a function of the run seed and the index only."""
    return int(np.random.SeedSequence(run_seed, spawn_key=(2, index)).generate_state(1)[0])


def migration_rng(run_seed: int) -> RngState:
    """The start of the RNG of where random migration sends programs (the driver's; saved in checkpoints)."""
    return RngState.of(np.random.Generator(np.random.PCG64(np.random.SeedSequence(run_seed, spawn_key=(3,)))))


@dataclass(frozen=True, slots=True)
class Request:
    """Run ``count`` evaluations on an island, after taking in ``immigrants`` and the run's hard points."""

    island: int
    count: int
    immigrants: tuple[Individual, ...] = ()
    hard_points: tuple[float, ...] = ()
    emigrate_at: int = 0  # when the batch ends at this island count, report the best members
    migrants: int = 0
    snapshot: bool = False  # return the island's state as JSON text (for a restore)

    def to_dict(self) -> dict[str, Any]:
        """As a checkpoint holds it (a request filed since its island's last snapshot, replayed on resume)."""
        return {
            "count": self.count,
            "immigrants": [ind.to_dict() for ind in self.immigrants],
            "hard_points": [format_hex(x) for x in self.hard_points],
            "emigrate_at": self.emigrate_at,
            "migrants": self.migrants,
        }

    @staticmethod
    def from_dict(island: int, data: dict[str, Any]) -> Request:
        for key in ("count", "emigrate_at", "migrants"):
            if not _is_count(data.get(key)):
                raise ValueError(f"a replayed request's {key!r} is not a non-negative integer")
        return Request(
            island,
            data["count"],
            tuple(_individual(d) for d in data["immigrants"]),
            tuple(parse_hex(t, get_format("float64")) for t in data["hard_points"]),
            data["emigrate_at"],
            data["migrants"],
        )


@dataclass(frozen=True, slots=True)
class Batch:
    """What one request did: the island's events (island counts) with the individuals they are about."""

    island: int
    start: int
    n_evals: int
    events: tuple[tuple[Event, Any], ...]  # (event, its Individual or FrontEntry or None)
    emigrants: tuple[Individual, ...]
    errors: np.ndarray  # the population's search errors at the end (float64)
    snapshot: SearchState | str | None  # the island's state: live (in this process) or JSON text
    eval_ms: float
    cached: int
    emigrant_hashes: tuple[str, ...] = ()
    emigrant_texts: tuple[str, ...] = ()  # their checkpoint JSON texts
    request: Request | None = None  # the request it ran, when its host made it (pipelined islands)


class Island:
    """One island: a search and the evaluator that makes and scores its children, in one process."""

    def __init__(self, index: int, search: Search, evaluator, base_search: Dataset) -> None:
        self.index = index
        self.search = search
        self.evaluator = evaluator
        self.base_search = base_search

    @property
    def state(self) -> SearchState:
        return self.search.state

    def replay(self, requests: list[Request]) -> None:
        """Run again requests already filed (the island's search is deterministic given its state
        and its requests, so this rebuilds the state they led to; their events were filed already)."""
        for request in requests:
            self.run(replace(request, snapshot=False))

    def run(self, request: Request) -> Batch:
        search = self.search
        self._harden(request.hard_points)
        self._immigrate(request.immigrants)
        start, events, eval_ms, cached = search.state.n_evals, [], 0.0, 0
        for _ in range(request.count):
            result = self.evaluator.run(search.ask())
            eval_ms += result.eval_ms
            cached += bool(result.cached)
            for event in search.tell(result):
                events.append((event, self._subject(event)))
        state, emigrants = search.state, ()  # the state the batch ended at
        if request.migrants and state.n_evals == request.emigrate_at:
            emigrants = tuple(sorted(state.population, key=search.rules.objective.key)[: request.migrants])
        snapshot = state_text(state) if request.snapshot else None
        errors = np.array([ind.score.max_err for ind in state.population], dtype=np.float64)
        # hashed and encoded here, not on the driver (their texts go into its checkpoints)
        hashes = tuple(ind.program.canonical_hash() for ind in emigrants)
        texts = tuple(_individual_text(ind) for ind in emigrants)
        return Batch(
            self.index,
            start,
            state.n_evals,
            tuple(events),
            emigrants,
            errors,
            snapshot,
            eval_ms,
            cached,
            hashes,
            texts,
        )

    def _subject(self, event: Event) -> Any:
        if isinstance(event, Improve):
            return self.state.best
        if isinstance(event, Front):
            return next(e for e in self.state.front.entries if e.individual.id == event.id)
        return None

    def _harden(self, hard_points: tuple[float, ...]) -> None:
        """Take the run's hard points (the driver mines them; every island searches on them)."""
        known = len(self.state.hard_points)
        if len(hard_points) <= known:
            return
        grown = with_extra_points(self.base_search, np.array(hard_points))
        self.search.use_search(grown, list(hard_points[known:]))
        self.evaluator = self.evaluator.with_search(grown)

    def _immigrate(self, immigrants: tuple[Individual, ...]) -> None:
        search, state = self.search, self.search.state
        population, next_id = state.population, state.next_id
        present = {ind.program.canonical_hash() for ind in population}
        for ind in immigrants:
            if ind.program.canonical_hash() in present:
                continue
            score = ind.score
            if score.points != search.search_set.label:
                score = search._score(ind.program, search.search_set)
            population = population.add(Individual(next_id, ind.program, score, ind.cost, ind.id, "migrant"))
            next_id += search.id_step
            present.add(ind.program.canonical_hash())
        search.state = replace(state, population=population, next_id=next_id)


def state_text(state: SearchState) -> str:
    """An island's state as standard JSON text (the checkpoint holds it as it is)."""
    return json.dumps(state.to_dict(), allow_nan=False)


def _individual_text(individual: Individual) -> str:
    return dumps(individual.to_dict())


def _same(a: Any, b: Any) -> bool:
    return a is b


def _renewed(value: Any, **changes: Any) -> Any:
    """``dataclasses.replace`` for a frozen value with slots, as cheap as a copy: the driver makes
    new records and states with every request and batch, and ``replace`` walks the fields and
    calls ``__init__`` each time (three times the driver's cost per batch at 256 islands)."""
    new = object.__new__(type(value))
    for name in value.__slots__:
        object.__setattr__(new, name, changes[name] if name in changes else getattr(value, name))
    return new


def destination(index: int, count: int, how: str, rng: np.random.Generator) -> int:
    """Where one island's migrants go (asynchronous migration: one island at a time)."""
    if count < 2:
        return index
    if how == "ring":
        return (index + 1) % count
    return (index + 1 + int(rng.integers(count - 1))) % count


def destinations(count: int, how: str, rng: np.random.Generator) -> list[int]:
    """Where each island's migrants go: the next island (ring), or a drawn other island (random)."""
    if count < 2:
        return [0] * count
    if how == "ring":
        return [(i + 1) % count for i in range(count)]
    return [(i + 1 + int(rng.integers(count - 1))) % count for i in range(count)]


@dataclass(frozen=True, slots=True)
class IslandRecord:
    """The driver's view of one island: its last known state (live, or JSON text from a worker)
    and, for a worker's island, the requests filed since that text was taken (``replay``: running
    them again on the text rebuilds the island's state at ``n_evals``)."""

    index: int
    seed: int
    n_evals: int
    snapshot: SearchState | str
    errors: np.ndarray = field(default_factory=lambda: np.zeros(0))  # its population's search errors
    inbox: tuple[Individual, ...] = ()  # immigrants waiting for its next request
    outbox: tuple[Individual, ...] = ()  # emigrants waiting for the migration
    outbox_hashes: tuple[str, ...] = ()  # their program hashes
    hard_known: int = -1  # hard points the island has been sent (-1: unknown, send them all)
    replay: tuple[Request, ...] = ()  # filed since the snapshot (worker islands)
    sent: Request | None = None  # the request in flight (filed into ``replay`` with its batch)

    def emptied(self) -> tuple[IslandRecord, tuple[Individual, ...], tuple[str, ...]]:
        """This record with an empty outbox, and the emigrants it held with their program hashes
        (hashed where they were sent from)."""
        out, hashes = self.outbox, self.outbox_hashes
        if len(hashes) != len(out):
            hashes = tuple(ind.program.canonical_hash() for ind in out)
        return _renewed(self, outbox=(), outbox_hashes=()), out, hashes

    def receiving(self, immigrants: tuple[Individual, ...]) -> IslandRecord:
        """This record with ``immigrants`` added to its inbox."""
        return _renewed(self, inbox=self.inbox + immigrants)

    def snapshot_text(self) -> str:
        snap = self.snapshot
        return state_text(snap) if isinstance(snap, SearchState) else snap


class TextCache:
    """The JSON texts of frozen values (island states, requests, members) by identity, so that a
    checkpoint encodes only what changed since the last one. It holds each value it keeps a text
    of (an id is never reused while cached)."""

    def __init__(self) -> None:
        self._texts: dict[int, tuple[Any, str]] = {}

    def put(self, value: Any, text: str) -> None:
        """Take ``text`` as the text of ``value`` (encoded where the value was made)."""
        self._texts[id(value)] = (value, text)

    def text(self, value: Any, encode) -> str:
        key = id(value)
        hit = self._texts.get(key)
        if hit is None or hit[0] is not value:
            hit = self._texts[key] = (value, encode(value))
        return hit[1]

    def keep_only(self, values) -> None:
        """Forget the texts of values not in ``values``."""
        keep = {id(value) for value in values}
        self._texts = {key: hit for key, hit in self._texts.items() if key in keep}


def _list_text(texts: list[str]) -> str:
    """A JSON array of JSON texts, spaced as ``json.dumps`` spaces one (checkpoints keep their bytes)."""
    return "[" + ", ".join(texts) + "]"


class _Memo:
    """What the successive values of one archipelago share to save work: texts and a live
    generator, each kept under the identity of the frozen values it was made from (so a value
    never reads what another one left)."""

    def __init__(self) -> None:
        self.texts = TextCache()
        self.entries: dict[int, tuple[tuple, str]] = {}  # island index -> (what it was encoded from, text)
        self.draws = Draws()


@dataclass(frozen=True, slots=True)
class ArchipelagoState:
    """Everything a multi-island checkpoint holds: every island, the merged front and the
    migrations, as one frozen value. The driver moves on by making a new one (``filed``,
    ``requested``, ``migrated``, ``emigrated``, ``with_islands``, ``dataclasses.replace``), never by
    changing one; ``finals`` is never changed either (a new dict replaces it)."""

    islands: tuple[IslandRecord, ...]
    front: ParetoFront
    rng: RngState  # random migration
    best: Individual | None = None
    finals: dict[str, Score] = field(default_factory=dict)
    certified_cost: float = math.inf
    hard_points: tuple[float, ...] = ()
    migrations: int = 0  # migration rounds done
    n_evals: int | None = None  # the run's count: the islands' sum (None: summed), kept as batches are filed
    memo: _Memo = field(default_factory=_Memo, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.n_evals is None:
            object.__setattr__(self, "n_evals", sum(record.n_evals for record in self.islands))

    @staticmethod
    def schema() -> str:
        return ISLANDS_SCHEMA

    def population_errors(self) -> np.ndarray:
        return np.concatenate([record.errors for record in self.islands])

    @property
    def population(self) -> list[Individual]:
        """Every member of the islands whose state is held here (as rebuilt from a checkpoint)."""
        return [
            ind for r in self.islands if isinstance(r.snapshot, SearchState) for ind in r.snapshot.population
        ]

    def to_dict(self) -> dict[str, Any]:
        """The checkpoint; its islands (most of it) as JSON texts, of which only those of the
        islands that changed since the last checkpoint are encoded again."""
        islands = [self._island_text(r) for r in self.islands]
        texts = self.memo.texts
        front = RawJSON(texts.text(self.front, lambda f: dumps(f.to_list())))
        kept = [self.front, *(v for key, _ in self.memo.entries.values() for v in key)]
        kept += [i for r in self.islands for q in r.replay for i in q.immigrants]
        texts.keep_only(kept)
        return {
            "format": ISLANDS_SCHEMA,
            "n_evals": self.n_evals,
            "islands": islands,
            "front": front,
            "rng": self.rng.to_dict(),
            "best": None if self.best is None else self.best.to_dict(),
            "finals": {h: score.to_dict() for h, score in self.finals.items()},
            "certified_cost": self.certified_cost,
            "hard_points": [format_hex(x) for x in self.hard_points],
            "migrations": self.migrations,
        }

    def _island_text(self, record: IslandRecord) -> RawJSON:
        """One island's entry, as ``dumps`` writes it; kept while its state, requests and boxes are
        the same values (a worker's state text is only replaced by a newer snapshot)."""
        key = (record.snapshot, *record.replay, None, *record.inbox, None, *record.outbox)
        entries = self.memo.entries
        cached = entries.get(record.index)
        if cached is not None and len(cached[0]) == len(key) and all(map(_same, cached[0], key)):
            return cached[1]
        texts = self.memo.texts
        snap = record.snapshot
        state = texts.text(snap, lambda s: dumps(s.to_dict())) if isinstance(snap, SearchState) else snap
        replay = _list_text([texts.text(q, self._request_text) for q in record.replay])
        inbox = _list_text([texts.text(i, _individual_text) for i in record.inbox])
        outbox = _list_text([texts.text(i, _individual_text) for i in record.outbox])
        text = RawJSON(
            f'{{"index": {record.index}, "seed": {record.seed}, "state": {state}, '
            f'"replay": {replay}, "inbox": {inbox}, "outbox": {outbox}}}'
        )
        entries[record.index] = (key, text)
        return text

    def _request_text(self, request: Request) -> str:
        """``dumps(request.to_dict())``, with the texts its immigrants already have."""
        texts = self.memo.texts
        immigrants = _list_text([texts.text(i, _individual_text) for i in request.immigrants])
        hard = dumps([format_hex(x) for x in request.hard_points])
        return (
            f'{{"count": {request.count}, "immigrants": {immigrants}, "hard_points": {hard}, '
            f'"emigrate_at": {request.emigrate_at}, "migrants": {request.migrants}}}'
        )

    @staticmethod
    def from_dict(data: dict[str, Any], capacity: int) -> ArchipelagoState:
        """Rebuild from a checkpoint (ValueError, one line, on anything that breaks an invariant;
        each island's state is checked as a single-population checkpoint is)."""
        try:
            return ArchipelagoState._build(data, capacity)
        except (KeyError, TypeError, ValueError, OverflowError, AttributeError, IndexError) as exc:
            text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ValueError((f"missing {text}" if isinstance(exc, KeyError) else text)[:200]) from None

    @staticmethod
    def _build(data: dict[str, Any], capacity: int) -> ArchipelagoState:
        if data.get("format") != ISLANDS_SCHEMA:
            raise ValueError(f"unknown format {str(data.get('format'))[:40]!r} (expected {ISLANDS_SCHEMA!r})")
        records = []
        for position, item in enumerate(data["islands"]):
            if item["index"] != position or not _is_count(item["seed"]):
                raise ValueError(f"island {position} has a wrong index or seed")
            state = SearchState.from_dict(item["state"], capacity)
            outbox = tuple(_individual(d) for d in item.get("outbox", []))
            replay = tuple(Request.from_dict(position, d) for d in item.get("replay", []))
            records.append(
                IslandRecord(
                    position,
                    item["seed"],
                    state.n_evals + sum(request.count for request in replay),
                    state,
                    np.array([ind.score.max_err for ind in state.population], dtype=np.float64),
                    tuple(_individual(d) for d in item.get("inbox", [])),
                    outbox,
                    tuple(ind.program.canonical_hash() for ind in outbox),
                    replay=replay,
                )
            )
        if not records:
            raise ValueError("no islands")
        certified = data.get("certified_cost", math.inf)
        migrations = data.get("migrations", 0)
        if not _is_count(migrations):
            raise ValueError("'migrations' is not a non-negative integer")
        return ArchipelagoState(
            tuple(records),
            ParetoFront.from_list(_checked_front(data["front"])),
            RngState.from_dict(_checked_rng_state(data["rng"])),
            None if data.get("best") is None else _individual(data["best"]),
            {str(h): Score.from_dict(d) for h, d in data.get("finals", {}).items()},
            math.inf if certified in ("inf", None) else float(certified),
            tuple(parse_hex(t, get_format("float64")) for t in data.get("hard_points", [])),
            migrations,
        )

    # ------------------------------------------------------------------ transitions
    def with_islands(self, records: tuple[IslandRecord, ...]) -> ArchipelagoState:
        """The same run with these records (each at the count of the one it replaces)."""
        return _renewed(self, islands=tuple(records))

    def requested(
        self, index: int, count: int, mark: int, migrants: int, snapshot_every: int
    ) -> tuple[ArchipelagoState, Request]:
        """The request of island ``index``'s next batch (its inbox and the hard points it has not
        been sent), and the state with that request in flight."""
        record, hard = self.islands[index], self.hard_points
        sent = hard if record.hard_known < len(hard) else ()  # only news travels
        # a worker's island returns its state every ``snapshot_every`` batches: in between, its
        # record keeps the requests filed since, which rebuild it (a lost actor, a resume)
        snapshot = bool(snapshot_every) and len(record.replay) + 1 >= snapshot_every
        request = Request(index, count, record.inbox, sent, mark, migrants, snapshot)
        islands = list(self.islands)
        islands[index] = _renewed(record, inbox=(), hard_known=len(hard), sent=request)
        return _renewed(self, islands=tuple(islands)), request

    def taken(self, index: int, request: Request) -> ArchipelagoState:
        """The state once a batch that island ``index``'s host started itself has come back: that
        request in flight (filed into ``replay`` with the batch) and its immigrants out of the
        inbox."""
        record = self.islands[index]
        islands = list(self.islands)
        islands[index] = _renewed(record, inbox=record.inbox[len(request.immigrants) :], sent=request)
        return _renewed(self, islands=tuple(islands))

    def filed(self, batch: Batch, objective) -> tuple[ArchipelagoState, list[Event]]:
        """Merge one island's batch: its counts, and its news as run events (run counts). A new
        best of an island is a run event only if it beats the run's best; an island's front entry
        only if it enters the merged front (its select score came through the island's gate)."""
        record = self.islands[batch.island]
        before = self.n_evals - record.n_evals + batch.start  # the run's count when the batch began
        changes: dict[str, Any] = {"n_evals": batch.n_evals, "errors": batch.errors, "sent": None}
        if batch.snapshot is not None:
            changes.update(snapshot=batch.snapshot, replay=())
        elif not isinstance(record.snapshot, SearchState) and record.sent is not None:
            changes["replay"] = (*record.replay, record.sent)  # a worker's island, its state text now behind
        if batch.emigrants:
            changes.update(outbox=batch.emigrants, outbox_hashes=batch.emigrant_hashes)
            if len(batch.emigrant_texts) == len(batch.emigrants):
                for individual, text in zip(batch.emigrants, batch.emigrant_texts, strict=True):
                    self.memo.texts.put(individual, text)
        best, front, out = self.best, self.front, []
        for event, subject in batch.events:
            n = before + event.n_evals - batch.start
            if isinstance(event, Improve):
                if objective.better(subject, best):
                    best = subject
                    out.append(replace(event, n_evals=n))
            elif isinstance(event, Front):
                entry: FrontEntry = subject
                known = self.finals.get(entry.individual.program.canonical_hash())
                front, changed = front.updated(entry.individual, entry.select, known)
                if changed:
                    out.append(replace(event, n_evals=n, front=front.summary()))
            else:
                out.append(replace(event, n_evals=n))
        islands = list(self.islands)
        islands[batch.island] = _renewed(record, **changes)
        n_evals = self.n_evals + batch.n_evals - record.n_evals
        return _renewed(self, islands=tuple(islands), n_evals=n_evals, best=best, front=front), out

    def migrated(self, how: str) -> tuple[ArchipelagoState, list[list]]:
        """A migration round: every outbox (in island order) delivered to its destination's
        inbox; returns the new state and the moves."""
        count = len(self.islands)
        targets, rng = self.memo.draws.draw(self.rng, lambda g: destinations(count, how, g))
        return self._moved(list(enumerate(targets)), rng=rng, migrations=self.migrations + 1)

    def emigrated(self, islands: list[int], how: str) -> tuple[ArchipelagoState, list[list]]:
        """Asynchronous migration: the outboxes of ``islands`` (in that order) delivered, each to a
        destination drawn for it alone; returns the new state and the moves."""
        if not islands:
            return self, []
        count, rng, pairs = len(self.islands), self.rng, []
        for index in islands:
            target, rng = self.memo.draws.draw(rng, lambda g, i=index: destination(i, count, how, g))
            pairs.append((index, target))
        return self._moved(pairs, rng=rng)

    def _moved(self, pairs: list[tuple[int, int]], **changes: Any) -> tuple[ArchipelagoState, list[list]]:
        """Each (source, target) in turn: the source's outbox emptied into the target's inbox
        (and ``changes`` made to the state)."""
        records, moves = list(self.islands), []
        for index, target in pairs:
            records[index], emigrants, hashes = records[index].emptied()
            if emigrants and target != index:
                records[target] = records[target].receiving(emigrants)
                moves.append([index, target, list(hashes)])
        return _renewed(self, islands=tuple(records), **changes), moves


@dataclass(frozen=True, slots=True)
class IslandFactory:
    """Everything a worker needs to rebuild an island from its state (frozen and picklable)."""

    rules: Any  # SearchRules
    scorer: Any  # Program, Dataset -> Score
    spec: Any  # EvaluatorSpec (or anything whose build(search, worker) gives an evaluator)
    base_search: Dataset
    capacity: int
    id_step: int

    def build(
        self, index: int, state: SearchState | dict[str, Any], replay: tuple[Request, ...] = ()
    ) -> Island:
        """The island at ``state``, then at the end of the ``replay`` requests."""
        if not isinstance(state, SearchState):
            state = SearchState.from_dict(state, self.capacity)
        search_set = self.base_search
        if state.hard_points:
            search_set = with_extra_points(search_set, np.array(state.hard_points))
        search = Search(self.rules, state, search_set, self.scorer, self.id_step)
        evaluator = self.spec.build(self.base_search, worker=index)  # hard points are what goes beyond it
        if search_set is not self.base_search:
            evaluator = evaluator.with_search(search_set)
        island = Island(index, search, evaluator, self.base_search)
        island.replay(list(replay))
        return island


class LocalIslands:
    """Every island in this process; a request runs when its batch is asked for, and its batch
    carries the island's new state (live: the record's snapshot is that value)."""

    local = True
    snapshot_every = 0  # every batch carries the live state

    def __init__(self) -> None:
        self.islands: list[Island] = []
        self._queue: list[Request] = []

    def start(self, factory: IslandFactory, records: tuple[IslandRecord, ...]) -> tuple[IslandRecord, ...]:
        """Build every island; returns the records with the live states as their snapshots."""
        out = []
        for record in records:
            snap = record.snapshot
            island = factory.build(
                record.index, snap if isinstance(snap, SearchState) else json.loads(snap), record.replay
            )
            self.islands.append(island)
            out.append(replace(record, snapshot=island.state, replay=()))
        return tuple(out)

    def submit(self, request: Request) -> None:
        self._queue.append(request)

    def next_batch(self) -> Batch:
        request = self._queue.pop(0)
        island = self.islands[request.island]
        return _renewed(island.run(request), snapshot=island.state)

    def cancel_all(self) -> None:
        self._queue.clear()

    @staticmethod
    def collected() -> int:
        """Batches run and not yet taken: none (a batch runs when it is asked for)."""
        return 0

    @staticmethod
    def refresh(records: tuple[IslandRecord, ...]) -> tuple[IslandRecord, ...]:
        """The records hold the live states already (each batch brings its island's new state)."""
        return records

    @staticmethod
    def sweep(function, *args):
        return function(*args)

    def take_notices(self) -> list:
        return []
