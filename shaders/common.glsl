// Shared declarations of every hearth kernel.
//
// Conventions:
//  - local_size_x is specialisation constant 0 (WG); constant 1 is the smallest subgroup
//    size the device may run (SG_MIN), used to size per-subgroup scratch arrays.
//  - Large 1-D grids are dispatched as 2-D (x <= 65535) and flattened by flat_group_id().
//  - Per-step parameters that change every decode step (the position of the first token)
//    live in a small storage buffer (StepParams), not in push constants, so a recorded
//    command buffer can be replayed unchanged for every token.
#extension GL_EXT_shader_16bit_storage : require
#ifdef USE_SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

// LOOP_HINT before a loop with a compile-time trip count nested in another unrolled loop:
// in COMPACT_LOOPS variants (for CPU implementations, whose LLVM back end can spend a
// minute on one fully unrolled kernel) the loop stays a loop; elsewhere the driver
// unrolls as it sees fit.
#ifdef COMPACT_LOOPS
#extension GL_EXT_control_flow_attributes : require
#define LOOP_HINT [[dont_unroll]]
#else
#define LOOP_HINT
#endif

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint SG_MIN = 8;

const uint WG = gl_WorkGroupSize.x;

// Layout of the step-parameter buffer (engine/vulkan/ops.h: StepParams).
struct StepParams {
    uint pos;       // position of the first token of this step
    uint reserved0;
    uint reserved1;
    uint reserved2;
};

uint flat_group_id() { return gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x; }

// A value below any real score; keeps masked lanes finite so exp() never meets inf - inf.
const float NEG_BIG = -3.0e38;
