; (one operation per statement, no reassociation; constants are exact hex floats).
; program   fixed (0 ops, depth 0)
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
  ret float 0x3fe8000000000000
}

define void @"kernel_array"(float* noalias %".1", float* noalias %".2", i64 %".3")
{
entry:
  %".5" = icmp sgt i64 %".3", 0
  br i1 %".5", label %"loop", label %"done"
loop:
  %"i" = phi  i64 [0, %"entry"], [%".11", %"loop"]
  %".7" = getelementptr float, float* %".1", i64 %"i"
  %".8" = load float, float* %".7"
  %".9" = getelementptr float, float* %".2", i64 %"i"
  store float 0x3fe8000000000000, float* %".9"
  %".11" = add i64 %"i", 1
  %".12" = icmp slt i64 %".11", %".3"
  br i1 %".12", label %"loop", label %"done"
done:
  ret void
}