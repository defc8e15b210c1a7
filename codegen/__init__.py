"""How a program becomes source code: C, LLVM IR, JAX and numpy kernels that compute what was scored."""
