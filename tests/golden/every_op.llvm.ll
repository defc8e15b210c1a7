; (one operation per statement, no reassociation; constants are exact hex floats).
; program   fixed (7 ops, depth 5)
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
  %".3" = fmul float %".1", %".1"
  %".4" = fadd float %".3", 0x3ff8000000000000
  %".5" = fsub float %".4", %".1"
  %".6" = fdiv float 0x3ff0000000000000, %".5"
  %".7" = call float @"llvm.sqrt.f32"(float %".4")
  %".8" = fneg float %".7"
  %".9" = call float @"llvm.fma.f32"(float %".6", float %".8", float 0xc00921fb60000000)
  ret float %".9"
}

declare float @"llvm.sqrt.f32"(float %".1")

declare float @"llvm.fma.f32"(float %".1", float %".2", float %".3")

define void @"kernel_array"(float* noalias %".1", float* noalias %".2", i64 %".3")
{
entry:
  %".5" = icmp sgt i64 %".3", 0
  br i1 %".5", label %"loop", label %"done"
loop:
  %"i" = phi  i64 [0, %"entry"], [%".18", %"loop"]
  %".7" = getelementptr float, float* %".1", i64 %"i"
  %".8" = load float, float* %".7"
  %".9" = fmul float %".8", %".8"
  %".10" = fadd float %".9", 0x3ff8000000000000
  %".11" = fsub float %".10", %".8"
  %".12" = fdiv float 0x3ff0000000000000, %".11"
  %".13" = call float @"llvm.sqrt.f32"(float %".10")
  %".14" = fneg float %".13"
  %".15" = call float @"llvm.fma.f32"(float %".12", float %".14", float 0xc00921fb60000000)
  %".16" = getelementptr float, float* %".2", i64 %"i"
  store float %".15", float* %".16"
  %".18" = add i64 %"i", 1
  %".19" = icmp slt i64 %".18", %".3"
  br i1 %".19", label %"loop", label %"done"
done:
  ret void
}