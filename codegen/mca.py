"""The host's per-op cycle table from llvm-mca: the microkernels of ``codegen.cycletable``, analysed, not run.

Each latency, throughput, pair and copy kernel is compiled exactly as for the measurement (llvmlite, host CPU
and features, -O3); the instructions of its loop body go to ``llvm-mca -mcpu=CPU`` (the llvmlite host
name; an AVX-512 model or ``native`` when this llvm-mca does not know it), which simulates the
host's scheduling model. Cycles per loop iteration (total cycles over the simulated iterations)
divided by the ops or elements of one iteration give latency, reciprocal throughput, port sharing and loop
overhead, as
``measure_table`` does from the clock. The simulation is deterministic; only the clock rate
(``ns_per_cycle``, not used by any model) is measured, with the integer add chain.
"""

from __future__ import annotations

import re
import shutil
import subprocess

from llvmlite import ir

from primitives.cycles import CycleTable
from primitives.ops import OPS

ITERATIONS = 200
_KNOWN_AVX512 = ("icelake-server", "skylake-avx512")
_LABEL = re.compile(r"^([.\w$]+):")
_JUMP = re.compile(r"^\s*j[a-z]+\s+([.\w$]+)\s*$")
_TOTAL = re.compile(r"^Total Cycles:\s+(\d+)", re.M)


class McaError(RuntimeError):
    """llvm-mca is missing, failed, or printed nothing this module can read."""


def find_mca() -> str | None:
    """Path of llvm-mca on PATH (also a versioned ``llvm-mca-NN``), or None."""
    found = shutil.which("llvm-mca")
    if found:
        return found
    for version in range(30, 9, -1):
        found = shutil.which(f"llvm-mca-{version}")
        if found:
            return found
    return None


def mca_version(mca: str) -> str:
    done = subprocess.run([mca, "--version"], capture_output=True, text=True, timeout=30)
    match = re.search(r"LLVM version (\S+)", done.stdout + done.stderr)
    return match.group(1) if match else "unknown"


def loop_body(assembly: str, function: str) -> list[str]:
    """The instructions of ``function``'s innermost loop (label to backward jump, both included)."""
    lines = assembly.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.startswith(f"{function}:"))
    except StopIteration:
        raise McaError(f"no function {function} in the assembly") from None
    labels: dict[str, int] = {}
    for i in range(start + 1, len(lines)):
        line = lines[i]
        label = _LABEL.match(line)
        if label:
            if not label.group(1).startswith(".L") and i > start + 1:
                break  # the next function
            labels[label.group(1)] = i
            continue
        jump = _JUMP.match(line)
        if jump and jump.group(1) in labels:
            body = [text.strip() for text in lines[labels[jump.group(1)] + 1 : i + 1]]
            return [text for text in body if text and not text.startswith((".", "#"))]
    raise McaError(f"no loop found in {function}")


def cycles_per_iteration(mca: str, cpu: str, body: list[str]) -> float:
    """Simulated cycles per iteration of the loop ``body`` on ``cpu``."""
    source = "\n".join(body) + "\n"
    # An llvm-mca older than the host (LLVM 14 on znver4) falls back to a generic model that rejects
    # zmm registers, so AVX-512 bodies try known AVX-512 models before "native".
    wide = _KNOWN_AVX512 if "zmm" in source else ()
    for target in (cpu, *wide, "native"):
        done = subprocess.run(
            [mca, f"-mcpu={target}", f"-iterations={ITERATIONS}", "-"],
            input=source,
            capture_output=True,
            text=True,
            timeout=60,
        )
        unknown = "not a recognized processor" in done.stderr
        if done.returncode == 0 and not unknown:
            break
    if done.returncode != 0:
        raise McaError(f"llvm-mca failed: {(done.stderr.strip().splitlines() or ['no output'])[0]}")
    total = _TOTAL.search(done.stdout)
    if total is None:
        raise McaError("llvm-mca printed no 'Total Cycles'")
    return int(total.group(1)) / ITERATIONS


def mca_table(mca: str | None = None) -> CycleTable:
    """The cycle table of this host from llvm-mca (McaError when it is missing or fails)."""
    from codegen.cycletable import (
        CHAIN,
        STREAMS,
        _compile,
        copy_kernel,
        host_target,
        latency_kernel,
        measure_clock,
        op_pairs,
        pair_kernel,
        pair_streams,
        sharing_of,
        throughput_kernel,
        vectoriser_width,
    )

    mca = mca or find_mca()
    if mca is None:
        raise McaError("llvm-mca not found on PATH")
    cpu, features, llvmlite_version = host_target()
    width = vectoriser_width(features)
    module = ir.Module(name="cycletable-mca")
    names = {
        op.name: (latency_kernel(module, op.name), throughput_kernel(module, op.name, width)) for op in OPS
    }
    pairs = {pair: pair_kernel(module, *pair, width) for pair in op_pairs()}
    copy_name = copy_kernel(module, width, 4096 // width)
    _, assembly = _compile(module)
    latency, rthroughput = {}, {}
    for op, (lat_name, thr_name) in names.items():
        latency[op] = cycles_per_iteration(mca, cpu, loop_body(assembly, lat_name)) / CHAIN
        rthroughput[op] = cycles_per_iteration(mca, cpu, loop_body(assembly, thr_name)) / (STREAMS * width)
    per_pair = (pair_streams(width) // 2) * width
    pair_cycles = {
        pair: cycles_per_iteration(mca, cpu, loop_body(assembly, name)) / per_pair
        for pair, name in pairs.items()
    }
    overhead = cycles_per_iteration(mca, cpu, loop_body(assembly, copy_name)) / width
    return CycleTable(
        cpu=cpu,
        features=features,
        llvmlite=llvmlite_version,
        source=f"llvm-mca {mca_version(mca)}",
        vector_width=width,
        ns_per_cycle=measure_clock(),
        latency=tuple(sorted(latency.items())),
        rthroughput=tuple(sorted(rthroughput.items())),
        loop_overhead=overhead,
        sharing=tuple(sorted(sharing_of(rthroughput, pair_cycles).items())),
    )


_STORE = re.compile(r"^v?mov(\w+)\s+%([xyz])mm\d+,\s*\S*\(")
_LANES = {
    ("ss", "x"): 1,
    ("ups", "x"): 4,
    ("aps", "x"): 4,
    ("ups", "y"): 8,
    ("aps", "y"): 8,
    ("ups", "z"): 16,
    ("aps", "z"): 16,
}


def elements_per_iteration(body: list[str]) -> int:
    """float32 results one iteration of an array loop stores (its vector stores times their lanes)."""
    total = 0
    for line in body:
        store = _STORE.match(line)
        if store:
            total += _LANES.get((store.group(1), store.group(2)), 0)
    if total == 0:
        raise McaError("the array loop stores no float32 result")
    return total


def loop_cycles(program, mca: str | None = None) -> float:
    """Simulated cycles per element of ``program``'s array loop as the LLVM export JIT-compiles it for
    the host (vectorised): the main loop's cycles per iteration over the elements it stores."""
    from codegen.cycletable import host_target
    from codegen.emit_llvm import jit

    mca = mca or find_mca()
    if mca is None:
        raise McaError("llvm-mca not found on PATH")
    body = loop_body(jit(program, "kernel").asm, "kernel_array")
    return cycles_per_iteration(mca, host_target()[0], body) / elements_per_iteration(body)
