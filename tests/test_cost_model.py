"""Cost models: critical path and array cycles on hand-built programs, the cycle table (measured for
real, cached, validated), the config key, and a search that costs programs in cycles and resumes
with the table it recorded."""

from __future__ import annotations

import json
import pickle

import pytest

from evo.api import evolve, load_run, resume
from evo.config import resolve
from evo.costmodel import cost_model, host_table, with_cost_table
from evo.errors import UsageError
from primitives.cycles import CostModel, CycleTable, CycleTableError, array_cycles, critical_path
from primitives.ops import OP_NAMES
from primitives.program import Instr, Program, Ref, const_of
from primitives.textform import parse_text as parse_program

LATENCY = {"add": 3.0, "sub": 3.0, "mul": 3.0, "div": 11.0, "fma": 4.0, "neg": 1.0, "sqrt": 15.0}
RTHROUGHPUT = {
    "add": 0.0625,
    "sub": 0.0625,
    "mul": 0.0625,
    "div": 0.5,
    "fma": 0.0625,
    "neg": 0.03,
    "sqrt": 0.75,
}


def table(**changes) -> CycleTable:
    data = dict(
        cpu="testcpu",
        features="+avx2",
        llvmlite="0",
        source="test",
        vector_width=8,
        ns_per_cycle=0.3,
        latency=tuple(sorted(LATENCY.items())),
        rthroughput=tuple(sorted(RTHROUGHPUT.items())),
        loop_overhead=0.25,
    )
    data.update(changes)
    return CycleTable(**data)


def program(text: str) -> Program:
    return parse_program(text)


HORNER3 = """
t1 = fma(0x1p-3, x, 0x1p-2)
t2 = fma(t1, x, 0x1p-1)
t3 = fma(t2, x, 0x1p+0)
return t3
"""
ESTRIN3 = """
t1 = fma(0x1p-2, x, 0x1p+0)
t2 = fma(0x1p-3, x, 0x1p-1)
t3 = mul(x, x)
t4 = fma(t2, t3, t1)
return t4
"""


def test_critical_path_of_a_chain_and_of_a_tree():
    assert critical_path(program(HORNER3), LATENCY) == 12.0  # three dependent fmas
    assert critical_path(program(ESTRIN3), LATENCY) == 8.0  # max(fma, mul) then one fma
    assert array_cycles(program(HORNER3), table()) == pytest.approx(0.25 + 3 * 0.0625)
    assert array_cycles(program(ESTRIN3), table()) == pytest.approx(0.25 + 4 * 0.0625)


def test_critical_path_takes_the_longest_branch_and_ignores_dead_code():
    body = (
        Instr("sqrt", (Ref(0),)),  # t1: 15, dead below
        Instr("div", (const_of(1.0), Ref(0))),  # t2: 11
        Instr("add", (Ref(0), const_of(1.0))),  # t3: 3
        Instr("mul", (Ref(3), Ref(3))),  # t4: 6
        Instr("add", (Ref(2), Ref(4))),  # t5: max(11, 6) + 3 = 14
    )
    p = Program(body, Ref(5))
    assert critical_path(p, LATENCY) == 14.0
    assert array_cycles(p, table()) == pytest.approx(0.25 + 0.5 + 3 * 0.0625)  # the dead sqrt is not paid
    assert critical_path(Program.identity(), LATENCY) == 0.0
    assert critical_path(Program((), const_of(2.0)), LATENCY) == 0.0


def test_a_long_chain_of_cheap_ops_is_chain_bound_and_a_wide_program_port_bound():
    from primitives.cycles import WINDOW_OPS, chain_cycles, port_cycles

    horner = program(HORNER3)  # 3 live ops, critical path 12
    assert port_cycles(horner, table()) == pytest.approx(3 * 0.0625)
    # a window of 6 ops holds 2 iterations of 8 elements: 12 / 16 per element, above the ports
    assert chain_cycles(horner, table(), window=6) == pytest.approx(12 / 16)
    assert array_cycles(horner, table(), window=6) == pytest.approx(0.25 + 12 / 16)
    # the default window keeps WINDOW_OPS / 3 iterations in flight: the ports bind
    assert chain_cycles(horner, table()) == pytest.approx(12 / (8 * WINDOW_OPS / 3))
    assert array_cycles(horner, table()) == pytest.approx(0.25 + 3 * 0.0625)
    # the Estrin form's shorter chain makes it cheaper than Horner's once the chain binds
    assert array_cycles(program(ESTRIN3), table(), window=6) < array_cycles(horner, table(), window=6)
    # fewer ops than the window still overlap at least one iteration per vector
    assert chain_cycles(horner, table(), window=1) == pytest.approx(12 / 8)


SHARING = (
    ("add,sub", 1.0),
    ("fma,mul", 1.0),
    ("add,fma", 0.0),
    ("add,mul", 0.5),
    ("fma,sub", 0.0),
    ("mul,sub", 0.5),
)


def test_port_sharing_sums_ops_on_one_resource_and_overlaps_ops_on_separate_pipes():
    from primitives.cycles import port_cycles

    plain = program("""
t1 = mul(x, 0x1p-1)
t2 = add(t1, 0x1p+0)
t3 = fma(t2, x, 0x1p-2)
t4 = sub(t3, x)
return t4
""")
    summed = table()
    assert summed.shares("add", "fma") == 1.0  # a table without sharing figures: the plain sum
    assert port_cycles(plain, summed) == pytest.approx(4 * 0.0625)
    shared = table(sharing=SHARING)
    assert shared.shares("fma", "fma") == shared.shares("sub", "add") == 1.0
    assert shared.shares("sub", "div") == 1.0  # a pair not listed shares fully
    # pressure on mul: mul + fma (1) + add (0.5) + sub (0.5) = 3; on add and sub 2.5; on fma 2
    assert port_cycles(plain, shared) == pytest.approx(3 * 0.0625)
    apart = table(sharing=tuple((f"{a},{b}", 0.0) for a, b in [("add", "mul"), ("add", "fma")]))
    two = program("""
t1 = mul(x, 0x1p-1)
t2 = add(t1, 0x1p+0)
return t2
""")
    assert port_cycles(two, apart) == pytest.approx(0.0625)  # separate pipes: the larger is paid
    assert array_cycles(two, apart) < array_cycles(two, summed)
    # dead ops exert no pressure
    assert port_cycles(Program.identity(), shared) == 0.0


def test_sharing_is_derived_from_pair_timings():
    from codegen.cycletable import op_pairs, sharing_of

    assert len(op_pairs()) == len(OP_NAMES) * (len(OP_NAMES) - 1) // 2
    assert all(a < b for a, b in op_pairs())
    thr = {"add": 0.5, "fma": 0.5, "div": 2.0}
    sharing = sharing_of(thr, {("add", "fma"): 1.0, ("add", "div"): 2.0, ("div", "fma"): 2.26})
    assert sharing == {"add,fma": 1.0, "add,div": 0.0, "div,fma": 0.5}
    # noise outside [pair max, pair sum] is clipped
    assert sharing_of(thr, {("add", "fma"): 1.3, ("add", "div"): 1.9}) == {"add,fma": 1.0, "add,div": 0.0}


def test_cost_models_are_deterministic_and_picklable():
    t = table()
    for kind, expected in (("ops", 4.0), ("latency", 8.0), ("throughput", 0.5)):
        model = CostModel(kind, (), t if kind != "ops" else None)
        again = pickle.loads(pickle.dumps(model))
        assert model.cost(program(ESTRIN3)) == again.cost(program(ESTRIN3)) == pytest.approx(expected)
    weighted = CostModel("ops", (("fma", 2.0), ("mul", 1.0)))
    assert weighted.cost(program(ESTRIN3)) == program(ESTRIN3).cost({"fma": 2.0, "mul": 1.0}) == 7.0
    with pytest.raises(ValueError, match="cycle table"):
        CostModel("latency")
    with pytest.raises(ValueError, match="unknown cost model"):
        CostModel("wallclock")


def test_cycle_table_round_trips_and_rejects_bad_tables():
    t = table()
    assert CycleTable.from_dict(json.loads(json.dumps(t.to_dict()))) == t
    with pytest.raises(CycleTableError, match="no latency for sqrt"):
        table(latency=tuple((k, v) for k, v in sorted(LATENCY.items()) if k != "sqrt"))
    with pytest.raises(CycleTableError, match="positive"):
        table(latency=tuple(sorted({**LATENCY, "add": -1.0}.items())))
    with pytest.raises(CycleTableError, match="malformed"):
        CycleTable.from_dict({"cpu": "x"})
    shared = table(sharing=SHARING)
    assert CycleTable.from_dict(json.loads(json.dumps(shared.to_dict()))) == shared
    older = t.to_dict()
    del older["sharing"]  # a table recorded before port sharing: every pair shares (the summed ports)
    assert CycleTable.from_dict(older) == t and CycleTable.from_dict(older).sharing == ()
    with pytest.raises(CycleTableError, match="sharing key"):
        table(sharing=(("mul,add", 0.5),))
    with pytest.raises(CycleTableError, match="sharing key"):
        table(sharing=(("add,warp", 0.5),))
    with pytest.raises(CycleTableError, match=r"in \[0, 1\]"):
        table(sharing=(("add,mul", 1.5),))


def test_config_key_cost_and_recorded_table():
    assert resolve({}).cost == "ops"
    with pytest.raises(UsageError, match="'cost' must be one of ops, latency, throughput"):
        resolve({"cost": "seconds"})
    with pytest.raises(UsageError, match="cost_table"):
        resolve({"cost": "latency", "cost_table": {"cpu": "x"}})
    config = resolve({"cost": "latency", "cost_table": table().to_dict()})
    assert config.cost_table == table()
    assert resolve(json.loads(json.dumps(config.to_dict()))) == config  # config.json round trip
    assert cost_model(config).cost(program(HORNER3)) == 12.0
    assert cost_model(resolve({})).cost(program(HORNER3)) == 3.0


def test_host_table_is_measured_once_then_cached(tmp_path, monkeypatch):
    from codegen import cycletable

    monkeypatch.setattr(cycletable, "host_target", lambda: ("testcpu", "+avx2", "0"))
    calls = []

    def fake_measure():
        calls.append(1)
        return table()

    assert host_table(tmp_path, measure=fake_measure) == table()
    assert host_table(tmp_path, measure=fake_measure) == table()
    assert len(calls) == 1
    for path in (tmp_path / "cycle-tables").iterdir():
        path.write_text("{not json")  # a damaged cache file is measured again
    assert host_table(tmp_path, measure=fake_measure) == table()
    assert len(calls) == 2
    monkeypatch.setattr(cycletable, "host_target", lambda: ("othercpu", "+avx2", "0"))
    host_table(tmp_path, measure=fake_measure)  # another CPU: another key, measured
    assert len(calls) == 3


def test_measured_table_is_a_real_measurement():
    from codegen.cycletable import host_target, measure_table

    measured = measure_table(iterations=4000)
    cpu, features, _ = host_target()
    assert (measured.cpu, measured.features, measured.source) == (cpu, features, "llvmlite")
    assert set(measured.latencies) == set(OP_NAMES) == set(measured.rthroughputs)
    lat = measured.latencies
    assert 0.05 < measured.ns_per_cycle < 5  # 0.2 to 20 GHz
    # orderings every FP unit has: division and square root are far slower than add/mul/fma,
    # a sign flip is no slower than an add, and a vector lane costs less than a scalar latency
    assert lat["div"] > 1.5 * lat["add"] and lat["sqrt"] > 1.5 * lat["mul"]
    assert lat["neg"] <= lat["add"] + 0.5
    assert all(measured.rthroughputs[op] < lat[op] for op in OP_NAMES)
    # the lanes of the loops LLVM vectorises here, and port sharing of every pair, measured
    from codegen.cycletable import op_pairs, vectoriser_width

    assert measured.vector_width == vectoriser_width(features) in (4, 8, 16)
    assert {pair for pair, _ in measured.sharing} == {f"{a},{b}" for a, b in op_pairs()}
    assert all(0.0 <= value <= 1.0 for _, value in measured.sharing)
    # add and sub are one instruction class on every FP unit: they compete for the same pipes
    assert measured.shares("add", "sub") >= 0.5


def test_search_costs_in_cycles_and_resume_keeps_the_recorded_table(tmp_path, monkeypatch):
    from codegen import cycletable

    def no_measurement(*args, **kwargs):
        raise AssertionError("a run with a recorded table must not measure")

    monkeypatch.setattr(cycletable, "measure_table", no_measurement)
    base = dict(
        target="exp2",
        population_size=20,
        tournament_size=4,
        search_points=512,
        select_points=2048,
        signoff="none",
        runs_dir=str(tmp_path),
        checkpoint_every=100,
        progress_every=100,
    )
    result = evolve(base, max_evals=300, seed=3, cost="latency", cost_table=table().to_dict())
    run = load_run(result.run_dir)
    assert run.config.cost == "latency" and run.config.cost_table == table()
    assert run.meta["cost"] == {"model": "latency", "table": table().to_dict()}
    assert run.front.entries
    for entry in run.front.entries:
        assert entry.cost == critical_path(entry.individual.program, LATENCY)
    resumed = resume(result.run_dir, max_evals=400)
    for entry in resumed.front.entries:
        assert entry.cost == critical_path(entry.individual.program, LATENCY)
    from evo.costmodel import anchor_points
    from evo.report import front_table, run_summary

    summary = run_summary(result.run_dir)  # what `evo inspect` shows: ops, latency and throughput per entry
    for row, entry in zip(summary["front"], resumed.front.entries, strict=True):
        program = entry.individual.program
        assert row["cycles"]["ops"] == program.cost()
        assert row["cycles"]["latency"] == round(critical_path(program, LATENCY), 2)
        assert row["cycles"]["throughput"] == round(array_cycles(program, table()), 3)
    assert " lat " in front_table(summary["front"], "ulp").splitlines()[0]
    anchors = anchor_points(run.config, "exp2_0_1")
    from targets.baselines import baselines

    classical = baselines("exp2_0_1")
    assert len(anchors) == len(classical)
    for (cost, error, name), baseline in zip(anchors, classical, strict=True):
        assert (cost, error, name) == (
            critical_path(baseline.program, LATENCY),
            baseline.max_ulp_exhaustive,
            baseline.name,
        )


def test_with_cost_table_fills_only_cycle_models(tmp_path, monkeypatch):
    from codegen import cycletable

    monkeypatch.setattr(cycletable, "host_target", lambda: ("testcpu", "+avx2", "0"))
    monkeypatch.setattr(cycletable, "measure_table", lambda: table())
    assert with_cost_table(resolve({}), tmp_path).cost_table is None
    assert with_cost_table(resolve({"cost": "throughput"}), tmp_path).cost_table == table()
