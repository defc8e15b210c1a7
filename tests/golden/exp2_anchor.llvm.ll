; (one operation per statement, no reassociation; constants are exact hex floats).
; program   fixed (6 ops, depth 6)
; target    exp2_0_1: 2**x
; domain    [0x0p+0, 0x1p+0] (outside it the kernel is not an approximation of the target)
; max error 0.890877 ULP on final (exhaustive, 1065353217 points)
; run       -
; No fast-math flags: LLVM may vectorise the loop but never reassociate or contract.
; ModuleID = "kernel"
target triple = "unknown-unknown-unknown"
target datalayout = ""

define float @"kernel"(float %".1")
{
entry:
  %".3" = call float @"llvm.fma.f32"(float %".1", float 0x3f2c4456e0000000, float 0x3f547373a0000000)
  %".4" = call float @"llvm.fma.f32"(float %".3", float %".1", float 0x3f83cfd820000000)
  %".5" = call float @"llvm.fma.f32"(float %".4", float %".1", float 0x3fac68af60000000)
  %".6" = call float @"llvm.fma.f32"(float %".5", float %".1", float 0x3fcebfd3a0000000)
  %".7" = call float @"llvm.fma.f32"(float %".6", float %".1", float 0x3fe62e42c0000000)
  %".8" = call float @"llvm.fma.f32"(float %".7", float %".1", float 0x3ff0000000000000)
  ret float %".8"
}

declare float @"llvm.fma.f32"(float %".1", float %".2", float %".3")

define void @"kernel_array"(float* noalias %".1", float* noalias %".2", i64 %".3")
{
entry:
  %".5" = icmp sgt i64 %".3", 0
  br i1 %".5", label %"loop", label %"done"
loop:
  %"i" = phi  i64 [0, %"entry"], [%".17", %"loop"]
  %".7" = getelementptr float, float* %".1", i64 %"i"
  %".8" = load float, float* %".7"
  %".9" = call float @"llvm.fma.f32"(float %".8", float 0x3f2c4456e0000000, float 0x3f547373a0000000)
  %".10" = call float @"llvm.fma.f32"(float %".9", float %".8", float 0x3f83cfd820000000)
  %".11" = call float @"llvm.fma.f32"(float %".10", float %".8", float 0x3fac68af60000000)
  %".12" = call float @"llvm.fma.f32"(float %".11", float %".8", float 0x3fcebfd3a0000000)
  %".13" = call float @"llvm.fma.f32"(float %".12", float %".8", float 0x3fe62e42c0000000)
  %".14" = call float @"llvm.fma.f32"(float %".13", float %".8", float 0x3ff0000000000000)
  %".15" = getelementptr float, float* %".2", i64 %"i"
  store float %".14", float* %".15"
  %".17" = add i64 %"i", 1
  %".18" = icmp slt i64 %".17", %".3"
  br i1 %".18", label %"loop", label %"done"
done:
  ret void
}