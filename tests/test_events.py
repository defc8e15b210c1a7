"""Typed events: every record a run writes is one declared kind with exactly its declared fields,
and the non-deterministic field set is derived from the declarations."""

from __future__ import annotations

from dataclasses import fields

import evo.runlog
from evo.api import evolve
from evo.events import KINDS, NONDETERMINISTIC_FIELDS, Eval, Progress, Signoff, strip_nondeterministic
from evo.runlog import RunReader


def test_the_nondeterministic_fields_are_the_declared_ones():
    assert evo.runlog.NONDETERMINISTIC_FIELDS is NONDETERMINISTIC_FIELDS
    timing = {f.name for f in fields(Progress) if not f.metadata.get("deterministic", True)}
    assert timing == {"evals_per_s", "cache_hits", "eval_ms", "driver_ms"}
    assert {"eval_ms", "cached", "worker"} <= {
        f.name for f in fields(Eval) if not f.metadata.get("deterministic", True)
    }
    assert "signoff_s" in NONDETERMINISTIC_FIELDS and "t" in NONDETERMINISTIC_FIELDS
    assert "final" not in NONDETERMINISTIC_FIELDS and "n_evals" not in NONDETERMINISTIC_FIELDS
    record = {"v": 1, "kind": "eval", "t": 0.5, "n_evals": 3, "eval_ms": 1.2, "cached": True, "worker": 1}
    assert strip_nondeterministic(record) == {"v": 1, "kind": "eval", "n_evals": 3}
    assert evo.runlog.strip_nondeterministic(record) == strip_nondeterministic(record)


def test_every_event_of_a_run_is_a_declared_kind_with_its_fields(tmp_path):
    result = evolve(
        target="exp2",
        domain="1,1.001",
        population_size=20,
        tournament_size=4,
        search_points=512,
        select_points=2048,
        data_seed=0,
        signoff="front",
        target_ulp=1e6,
        mine_every=100,
        mine_below=1e9,
        restart_after=150,
        log_every_eval=10,
        checkpoint_every=200,
        progress_every=100,
        max_evals=600,
        seed=2,
        runs_dir=str(tmp_path),
    )
    seen = set()
    for record in RunReader(result.run_dir).events():
        cls = KINDS[record["kind"]]
        assert set(record) == {"v", "kind", "t"} | {f.name for f in fields(cls)}, record["kind"]
        seen.add(record["kind"])
    assert {"start", "improve", "front", "signoff", "harden", "progress", "eval", "checkpoint", "end"} <= seen
    assert Signoff.kind == "signoff"
