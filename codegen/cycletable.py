"""Measuring the host's per-op latency and reciprocal throughput with llvmlite-JITted microkernels.

Every kernel is a loop of straight-line LLVM IR compiled for the host CPU (its name and features) at
-O3, with no fast-math flags, exactly as the exported kernels are. An empty inline-asm barrier after
each operation makes its result opaque, so LLVM can neither fold a chain (``-(-v)``, ``v * 1``)
nor hoist it, while emitting no instruction.

- latency: one dependent chain of scalar float32 ops (each op consumes the previous result);
- reciprocal throughput: ``STREAMS`` independent chains of host-width vectors, per element, where the
  host width is what LLVM's loop vectoriser picks for this CPU (read from the compiled loop: 16 lanes
  on a core with full-width AVX-512, 8 where it prefers 256-bit vectors);
- port sharing: for every pair of ops, ``STREAMS`` chains alternating the two; if the pair costs the
  sum of its ops' throughputs they compete for one execution resource (sharing 1), if it costs the
  larger of the two they run on separate pipes (sharing 0); the fraction in between is recorded;
- loop overhead: a vectorised copy loop (load, store, counter) per element;
- the cycle: a dependent chain of integer adds (one cycle each on every x86 and AArch64 core) gives
  nanoseconds per cycle, so the table is in cycles and does not move with the clock.

Each figure is the minimum over repeats (the least disturbed run). ``measure_table`` takes about a
second; callers cache the table and record it in the run, so a search never measures twice.
"""

from __future__ import annotations

import ctypes
import platform
import time
from collections.abc import Callable

from llvmlite import ir

from primitives.cycles import CycleTable
from primitives.ops import OPS

CHAIN = 32  # ops per loop iteration (latency kernels)
STREAMS = 12  # independent vector chains (throughput kernels): enough to hide any FP latency, no spills
REPEATS = 25  # short runs, many repeats: the minimum is a run nothing preempted

F32 = ir.FloatType()
I64 = ir.IntType(64)

# The operand(s) each op is chained with, chosen so the value stays a normal number forever:
# v + 0, v - 0, v * 1, 2 / v (oscillates between two full-mantissa values), fma(v, 1, 0), -v, sqrt(v).
CHAIN_CONSTANTS = {
    "add": (0.0,),
    "sub": (0.0,),
    "mul": (1.0,),
    "div": (2.0,),
    "fma": (1.0, 0.0),
    "neg": (),
    "sqrt": (),
}
START = 1.4142135


def host_target() -> tuple[str, str, str]:
    """(CPU name, feature string, llvmlite version) of the host: the cache key of a table."""
    import llvmlite
    import llvmlite.binding as llvm

    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    llvm.initialize_native_asmparser()  # the inline-asm barriers need it
    return llvm.get_host_cpu_name(), llvm.get_host_cpu_features().flatten(), llvmlite.__version__


def vector_width(features: str) -> int:
    """float32 lanes of an array loop guessed from the feature string alone (the fallback of
    ``vectoriser_width``): 8 with AVX, else 4."""
    enabled = {f[1:] for f in features.split(",") if f.startswith("+")}
    if "avx" in enabled:
        return 8
    return 4


_REGISTER_LANES = (("%zmm", 16), ("%ymm", 8), (".4s", 4), ("%xmm", 4))


def vectoriser_width(features: str) -> int:
    """float32 lanes LLVM's loop vectoriser uses for an array loop on this host (as the exported
    kernels are compiled): the widest vector register in the compiled loop ``y[i] = x[i] * c + c``,
    else ``vector_width(features)``. It follows the CPU's tuning, not only its features: 16 on a
    core with full-width AVX-512, 8 on one that prefers 256-bit vectors despite AVX-512."""
    module = ir.Module(name="width")
    pointer = F32.as_pointer()
    function = ir.Function(module, ir.FunctionType(ir.VoidType(), [pointer, pointer, I64]), name="width")
    xs, ys, n = function.args
    for arg in (xs, ys):
        arg.add_attribute("noalias")
    entry = function.append_basic_block("entry")
    loop = function.append_basic_block("loop")
    done = function.append_basic_block("done")
    builder = ir.IRBuilder(entry)
    builder.cbranch(builder.icmp_signed(">", n, ir.Constant(I64, 0)), loop, done)
    builder = ir.IRBuilder(loop)
    index = builder.phi(I64)
    index.add_incoming(ir.Constant(I64, 0), entry)
    value = builder.load(builder.gep(xs, [index]))
    value = builder.fadd(builder.fmul(value, ir.Constant(F32, 1.5)), ir.Constant(F32, 1.5))
    builder.store(value, builder.gep(ys, [index]))
    following = builder.add(index, ir.Constant(I64, 1))
    index.add_incoming(following, loop)
    builder.cbranch(builder.icmp_signed("<", following, n), loop, done)
    ir.IRBuilder(done).ret_void()
    _, assembly = _compile(module, vectorise=True)
    for register, lanes in _REGISTER_LANES:
        if register in assembly:
            return lanes
    return vector_width(features)


def _barrier(builder: ir.IRBuilder, value: ir.Value) -> ir.Value:
    """An empty asm statement that takes and returns ``value`` in a vector register: opaque, free.

    16-lane vectors (AVX-512) take any of the 32 registers (constraint ``v``); ``x`` would confine
    them to the first 16 and spill the pair kernels' chains."""
    wide = isinstance(value.type, ir.VectorType) and value.type.count >= 16
    constraint = "=v,0" if wide else "=x,0"
    asm = ir.InlineAsm(ir.FunctionType(value.type, [value.type]), "", constraint, side_effect=False)
    return builder.call(asm, [value])


def _apply(builder: ir.IRBuilder, op: str, value: ir.Value, constants: list[ir.Value]) -> ir.Value:
    from codegen.emit_llvm import LLVM_OPS

    if op == "div":
        return LLVM_OPS[op](builder, constants[0], value)
    if isinstance(value.type, ir.VectorType) and op in ("fma", "sqrt"):
        # llvmlite names overloaded intrinsics for scalars only; the vector ones are spelled out
        kind = value.type
        name = f"llvm.{op}.v{kind.count}f32"
        function = builder.module.globals.get(name) or ir.Function(
            builder.module, ir.FunctionType(kind, [kind] * (1 + len(constants))), name=name
        )
        return builder.call(function, [value, *constants])
    return LLVM_OPS[op](builder, value, *constants)


def _loop(
    function: ir.Function,
    body: Callable[[ir.IRBuilder, list[ir.Value]], list[ir.Value]],
    start: list[ir.Value],
    n: ir.Value,
) -> tuple[ir.IRBuilder, list[ir.Value]]:
    """A counted loop carrying ``start`` values through ``body``; returns the exit builder and results."""
    entry = function.append_basic_block("entry")
    loop = function.append_basic_block("loop")
    done = function.append_basic_block("done")
    builder = ir.IRBuilder(entry)
    builder.branch(loop)
    builder = ir.IRBuilder(loop)
    index = builder.phi(I64)
    index.add_incoming(ir.Constant(I64, 0), entry)
    carried = []
    for value in start:
        phi = builder.phi(value.type)
        phi.add_incoming(value, entry)
        carried.append(phi)
    results = body(builder, list(carried))
    end = builder.block
    for phi, value in zip(carried, results, strict=True):
        phi.add_incoming(value, end)
    following = builder.add(index, ir.Constant(I64, 1))
    index.add_incoming(following, end)
    builder.cbranch(builder.icmp_signed("<", following, n), loop, done)
    exit_builder = ir.IRBuilder(done)
    outs = []
    for value in results:
        exit_phi = exit_builder.phi(value.type)
        exit_phi.add_incoming(value, end)
        outs.append(exit_phi)
    return exit_builder, outs


def latency_kernel(module: ir.Module, op: str) -> str:
    """``float lat_OP(float v, i64 n)``: n x CHAIN dependent scalar ops."""
    name = f"lat_{op}"
    function = ir.Function(module, ir.FunctionType(F32, [F32, F32, F32, I64]), name=name)
    v, c0, c1, n = function.args
    values = [c0, c1][: len(CHAIN_CONSTANTS[op])]

    def body(builder, carried):
        (x,) = carried
        for _ in range(CHAIN):
            x = _barrier(builder, _apply(builder, op, x, values))
        return [x]

    builder, (out,) = _loop(function, body, [v], n)
    builder.ret(out)
    return name


def throughput_kernel(module: ir.Module, op: str, width: int) -> str:
    """``float thr_OP(float v, i64 n)``: n x STREAMS independent vector ops of ``width`` lanes."""
    name = f"thr_{op}"
    vector = ir.VectorType(F32, width)
    function = ir.Function(module, ir.FunctionType(F32, [F32, F32, F32, I64]), name=name)
    v, c0, c1, n = function.args
    prologue = ir.IRBuilder(function.append_basic_block("prologue"))

    def splat(scalar):
        one = prologue.insert_element(
            ir.Constant(vector, ir.Undefined), scalar, ir.Constant(ir.IntType(32), 0)
        )
        mask = ir.Constant(ir.VectorType(ir.IntType(32), width), [0] * width)
        return prologue.shuffle_vector(one, ir.Constant(vector, ir.Undefined), mask)

    values = [splat(c) for c in (c0, c1)][: len(CHAIN_CONSTANTS[op])]

    def body(builder, carried):
        return [_barrier(builder, _apply(builder, op, x, values)) for x in carried]

    builder, outs = _loop(function, body, [splat(v)] * STREAMS, n)
    prologue.branch(function.basic_blocks[1])
    total = outs[0]
    for other in outs[1:]:
        total = builder.fadd(total, other)
    builder.ret(builder.extract_element(total, ir.Constant(ir.IntType(32), 0)))
    return name


def pair_streams(width: int) -> int:
    """Chains of a pair kernel: STREAMS of each op where the ISA has 32 vector registers (AVX-512), so
    each op alone still has enough chains in flight to fill its pipes; STREAMS in all otherwise."""
    return 2 * STREAMS if width >= 16 else STREAMS


def pair_kernel(module: ir.Module, first: str, second: str, width: int) -> str:
    """``float pair_A_B(float v, i64 n)``: as ``throughput_kernel``, the even chains doing ``first``
    and the odd ones ``second`` (n x pair_streams(width) / 2 of each)."""
    name = f"pair_{first}_{second}"
    vector = ir.VectorType(F32, width)
    function = ir.Function(module, ir.FunctionType(F32, [F32, F32, F32, F32, F32, I64]), name=name)
    v, a0, a1, b0, b1, n = function.args
    prologue = ir.IRBuilder(function.append_basic_block("prologue"))

    def splat(scalar):
        one = prologue.insert_element(
            ir.Constant(vector, ir.Undefined), scalar, ir.Constant(ir.IntType(32), 0)
        )
        mask = ir.Constant(ir.VectorType(ir.IntType(32), width), [0] * width)
        return prologue.shuffle_vector(one, ir.Constant(vector, ir.Undefined), mask)

    first_values = [splat(c) for c in (a0, a1)][: len(CHAIN_CONSTANTS[first])]
    second_values = [splat(c) for c in (b0, b1)][: len(CHAIN_CONSTANTS[second])]

    def body(builder, carried):
        return [
            _barrier(
                builder,
                _apply(builder, *((first, x, first_values) if i % 2 == 0 else (second, x, second_values))),
            )
            for i, x in enumerate(carried)
        ]

    builder, outs = _loop(function, body, [splat(v)] * pair_streams(width), n)
    prologue.branch(function.basic_blocks[1])
    total = outs[0]
    for other in outs[1:]:
        total = builder.fadd(total, other)
    builder.ret(builder.extract_element(total, ir.Constant(ir.IntType(32), 0)))
    return name


def op_pairs() -> list[tuple[str, str]]:
    """Every unordered pair of distinct ops, in a fixed order."""
    names = sorted(op.name for op in OPS)
    return [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]


def sharing_of(rthroughput: dict[str, float], pair_cycles: dict[tuple[str, str], float]) -> dict:
    """Port sharing of each pair from its cycles per element for one op of each: (pair - larger) /
    smaller, clipped to [0, 1] and rounded to 0.05 (1: one resource, the sum is paid; 0: separate
    pipes, the larger is paid). Keys ``"a,b"`` with a < b."""
    sharing = {}
    for (a, b), both in sorted(pair_cycles.items()):
        small, large = sorted((rthroughput[a], rthroughput[b]))
        fraction = (both - large) / small
        sharing[f"{a},{b}"] = round(min(1.0, max(0.0, fraction)) * 20) / 20
    return sharing


def copy_kernel(module: ir.Module, width: int, buffer_vectors: int) -> str:
    """``void copy(float *x, float *y, i64 n)``: the array loop without any op, n vectors cycling
    through an L1-resident buffer of ``buffer_vectors`` (a power of two) so no call overhead counts."""
    name = "copy"
    vector = ir.VectorType(F32, width)
    pointer = vector.as_pointer()
    function = ir.Function(module, ir.FunctionType(ir.VoidType(), [pointer, pointer, I64]), name=name)
    xs, ys, n = function.args
    for arg in (xs, ys):
        arg.add_attribute("noalias")
    entry = function.append_basic_block("entry")
    loop = function.append_basic_block("loop")
    done = function.append_basic_block("done")
    ir.IRBuilder(entry).branch(loop)
    builder = ir.IRBuilder(loop)
    index = builder.phi(I64)
    index.add_incoming(ir.Constant(I64, 0), entry)
    slot = builder.and_(index, ir.Constant(I64, buffer_vectors - 1))
    value = _barrier(builder, builder.load(builder.gep(xs, [slot]), align=4))
    builder.store(value, builder.gep(ys, [slot]), align=4)
    following = builder.add(index, ir.Constant(I64, 1))
    index.add_incoming(following, loop)
    builder.cbranch(builder.icmp_signed("<", following, n), loop, done)
    ir.IRBuilder(done).ret_void()
    return name


def cycle_kernel(module: ir.Module) -> str:
    """``i64 cycles(i64 v, i64 n)``: n x CHAIN dependent integer adds (one cycle each)."""
    name = "cycles"
    function = ir.Function(module, ir.FunctionType(I64, [I64, I64]), name=name)
    v, n = function.args
    machine = platform.machine().lower()
    text = "add $0, $0, #1" if machine in ("aarch64", "arm64") else "addq $$1, $0"
    asm = ir.InlineAsm(
        ir.FunctionType(I64, [I64]), text, "=r,0,~{flags}", side_effect=True
    )  # add sets the flags

    def body(builder, carried):
        (x,) = carried
        for _ in range(CHAIN):
            x = builder.call(asm, [x])
        return [x]

    builder, (out,) = _loop(function, body, [v], n)
    builder.ret(out)
    return name


def _compile(module: ir.Module, vectorise: bool = False):
    import llvmlite.binding as llvm

    cpu, features, _ = host_target()
    target = llvm.Target.from_default_triple()
    machine = target.create_target_machine(cpu=cpu, features=features, opt=3)
    parsed = llvm.parse_assembly(str(module))
    parsed.triple = llvm.get_default_triple()
    parsed.data_layout = str(machine.target_data)
    parsed.verify()
    tuning = llvm.create_pipeline_tuning_options(speed_level=3)
    if vectorise:  # as codegen.emit_llvm.jit compiles the array loops
        tuning.loop_vectorization = True
        tuning.slp_vectorization = True
    builder = llvm.create_pass_builder(machine, tuning)
    builder.getModulePassManager().run(parsed, builder)
    engine = llvm.create_mcjit_compiler(parsed, machine)
    engine.finalize_object()
    return engine, machine.emit_assembly(parsed)


def _best_seconds(call: Callable[[], object], repeats: int = REPEATS) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - started)
    return best


def measure_clock(iterations: int = 20_000) -> float:
    """Nanoseconds per cycle, from a dependent chain of 1-cycle integer adds."""
    module = ir.Module(name="clock")
    name = cycle_kernel(module)
    engine, _ = _compile(module)
    cycles = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_int64, ctypes.c_int64)(
        engine.get_function_address(name)
    )
    cycles(0, 1000)  # warm up (page in, wake the core)
    return _best_seconds(lambda: cycles(0, iterations)) * 1e9 / (iterations * CHAIN)


def measure_table(iterations: int = 20_000) -> CycleTable:
    """Measure the table on this host (about a second)."""
    import numpy as np

    cpu, features, llvmlite_version = host_target()
    width = vectoriser_width(features)
    module = ir.Module(name="cycletable")
    names = {
        op.name: (latency_kernel(module, op.name), throughput_kernel(module, op.name, width)) for op in OPS
    }
    pairs = {pair: pair_kernel(module, *pair, width) for pair in op_pairs()}
    cycles_name = cycle_kernel(module)
    n_vectors = 4096 // width  # 16 KiB in, 16 KiB out: L1-resident, as an array call on a hot buffer
    copy_name = copy_kernel(module, width, n_vectors)
    engine, _ = _compile(module)
    float_kernel = ctypes.CFUNCTYPE(
        ctypes.c_float, ctypes.c_float, ctypes.c_float, ctypes.c_float, ctypes.c_int64
    )
    int_kernel = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_int64, ctypes.c_int64)
    copy_type = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)

    cycles = int_kernel(engine.get_function_address(cycles_name))
    cycles(0, 1000)  # warm up (page in, wake the core)
    ns_per_cycle = _best_seconds(lambda: cycles(0, iterations)) * 1e9 / (iterations * CHAIN)

    latency: dict[str, float] = {}
    rthroughput: dict[str, float] = {}
    for op, (lat_name, thr_name) in names.items():
        lat = float_kernel(engine.get_function_address(lat_name))
        thr = float_kernel(engine.get_function_address(thr_name))
        constants = (list(CHAIN_CONSTANTS[op]) + [0.0, 0.0])[:2]
        lat(START, *constants, 1000)
        thr(START, *constants, 1000)
        lat_ns = (
            _best_seconds(lambda f=lat, c=constants: f(START, *c, iterations)) * 1e9 / (iterations * CHAIN)
        )
        thr_ns = (
            _best_seconds(lambda f=thr, c=constants: f(START, *c, iterations))
            * 1e9
            / (iterations * STREAMS * width)
        )
        latency[op] = lat_ns / ns_per_cycle
        rthroughput[op] = thr_ns / ns_per_cycle

    pair_kernel_type = ctypes.CFUNCTYPE(ctypes.c_float, *([ctypes.c_float] * 5), ctypes.c_int64)
    pair_cycles = {}
    for (a, b), pair_name in pairs.items():
        pair = pair_kernel_type(engine.get_function_address(pair_name))
        constants = (list(CHAIN_CONSTANTS[a]) + [0.0, 0.0])[:2] + (list(CHAIN_CONSTANTS[b]) + [0.0, 0.0])[:2]
        pair(START, *constants, 1000)
        pair_ns = (
            _best_seconds(lambda f=pair, c=constants: f(START, *c, iterations))
            * 1e9
            / (iterations * (pair_streams(width) // 2) * width)
        )
        pair_cycles[(a, b)] = pair_ns / ns_per_cycle

    xs = np.full(n_vectors * width, START, dtype=np.float32)
    ys = np.empty_like(xs)
    copy = copy_type(engine.get_function_address(copy_name))
    total = iterations * CHAIN // width
    x_address, y_address = xs.ctypes.data, ys.ctypes.data
    copy(x_address, y_address, n_vectors)
    overhead_ns = _best_seconds(lambda: copy(x_address, y_address, total)) * 1e9 / (total * width)
    return CycleTable(
        cpu=cpu,
        features=features,
        llvmlite=llvmlite_version,
        source="llvmlite",
        vector_width=width,
        ns_per_cycle=ns_per_cycle,
        latency=tuple(sorted(latency.items())),
        rthroughput=tuple(sorted(rthroughput.items())),
        loop_overhead=overhead_ns / ns_per_cycle,
        sharing=tuple(sorted(sharing_of(rthroughput, pair_cycles).items())),
    )
