"""LLVM IR kernels (through llvmlite): a scalar function and a loop over arrays, JIT-able in-process.

fma is ``llvm.fma`` and sqrt ``llvm.sqrt`` (both correctly rounded); no fast-math flags anywhere, so
LLVM may vectorise the loop but never reassociate or contract. ``jit`` compiles the module for the
host CPU at -O3 and returns a callable over numpy arrays, so kernels can be verified and timed
without a C compiler.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from llvmlite import ir

from codegen.common import Provenance, check_name, provenance_lines, steps
from primitives.floatbits import bits_to_float
from primitives.program import Const, Operand, Program, Ref


def _fma(builder: ir.IRBuilder, a, b, c):
    return builder.fma(a, b, c)


def _sqrt(builder: ir.IRBuilder, a):
    function = builder.module.declare_intrinsic("llvm.sqrt", [a.type], ir.FunctionType(a.type, [a.type]))
    return builder.call(function, [a])


LLVM_OPS: dict[str, Callable[..., ir.Value]] = {
    "add": lambda b, x, y: b.fadd(x, y),
    "sub": lambda b, x, y: b.fsub(x, y),
    "mul": lambda b, x, y: b.fmul(x, y),
    "div": lambda b, x, y: b.fdiv(x, y),
    "fma": _fma,
    "neg": lambda b, x: b.fneg(x),
    "sqrt": _sqrt,
}


def _emit_body(builder: ir.IRBuilder, program: Program, x: ir.Value) -> ir.Value:
    float_type = x.type
    walk, out = steps(program)
    values: dict[int, ir.Value] = {0: x}

    def operand(a: Operand) -> ir.Value:
        if isinstance(a, Ref):
            return values[a.index]
        assert isinstance(a, Const)
        return ir.Constant(float_type, bits_to_float(a.bits, program.format))

    for i, step in enumerate(walk):
        values[i + 1] = LLVM_OPS[step.op](builder, *(operand(a) for a in step.operands))
    return operand(out)


def build_module(program: Program, name: str = "kernel") -> ir.Module:
    """The IR module with ``NAME`` (scalar) and ``NAME_array(x, y, n)`` (loop)."""
    name = check_name(name, "llvm")
    float_type = ir.FloatType() if program.dtype == "float32" else ir.DoubleType()
    module = ir.Module(name=name)
    scalar = ir.Function(module, ir.FunctionType(float_type, [float_type]), name=name)
    builder = ir.IRBuilder(scalar.append_basic_block("entry"))
    builder.ret(_emit_body(builder, program, scalar.args[0]))

    pointer = float_type.as_pointer()
    i64 = ir.IntType(64)
    array = ir.Function(module, ir.FunctionType(ir.VoidType(), [pointer, pointer, i64]), name=f"{name}_array")
    xs, ys, n = array.args
    for arg in (xs, ys):
        arg.add_attribute("noalias")
    entry = array.append_basic_block("entry")
    loop = array.append_basic_block("loop")
    done = array.append_basic_block("done")
    builder = ir.IRBuilder(entry)
    builder.cbranch(builder.icmp_signed(">", n, ir.Constant(i64, 0)), loop, done)
    builder = ir.IRBuilder(loop)
    index = builder.phi(i64, name="i")
    index.add_incoming(ir.Constant(i64, 0), entry)
    x = builder.load(builder.gep(xs, [index]))
    builder.store(_emit_body(builder, program, x), builder.gep(ys, [index]))
    following = builder.add(index, ir.Constant(i64, 1))
    index.add_incoming(following, loop)
    builder.cbranch(builder.icmp_signed("<", following, n), loop, done)
    ir.IRBuilder(done).ret_void()
    return module


def emit_llvm(
    program: Program, name: str = "kernel", provenance: Provenance | None = None, header: bool = True
) -> str:
    """The module as LLVM IR text, with the provenance as leading comments."""
    text = str(build_module(program, name))
    if not header:
        return text
    comments = [f"; {line}" if line else ";" for line in provenance_lines(provenance, program)]
    comments.append("; No fast-math flags: LLVM may vectorise the loop but never reassociate or contract.")
    return "\n".join(comments) + "\n" + text


@dataclass
class JitKernel:
    """A JIT-compiled kernel; keeps the execution engine alive as long as it is used."""

    engine: object
    array: Callable
    dtype: np.dtype
    asm: str
    address: int = 0  # of NAME_array(const T *x, T *y, int64 n), for callers outside Python (benchmarks)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=self.dtype)
        y = np.empty_like(x)
        self.array(x.ctypes.data, y.ctypes.data, x.shape[0])
        return y


def jit(program: Program, name: str = "kernel") -> JitKernel:
    """Compile the module for this CPU at -O3 (loop and SLP vectorisation on) and load it."""
    import llvmlite.binding as llvm

    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    target = llvm.Target.from_default_triple()
    machine = target.create_target_machine(
        cpu=llvm.get_host_cpu_name(), features=llvm.get_host_cpu_features().flatten(), opt=3
    )
    module = llvm.parse_assembly(str(build_module(program, name)))
    module.triple = llvm.get_default_triple()
    module.data_layout = str(machine.target_data)
    module.verify()
    tuning = llvm.create_pipeline_tuning_options(speed_level=3)
    tuning.loop_vectorization = True
    tuning.slp_vectorization = True
    builder = llvm.create_pass_builder(machine, tuning)
    manager = builder.getModulePassManager()
    manager.run(module, builder)
    engine = llvm.create_mcjit_compiler(module, machine)
    engine.finalize_object()
    address = engine.get_function_address(f"{name}_array")
    array = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)(address)
    return JitKernel(engine, array, np.dtype(program.dtype), machine.emit_assembly(module), address)
