// wg_sum(v): the sum of v over the whole workgroup, returned to every invocation.
// Subgroup arithmetic when the variant is built with USE_SUBGROUP (the device reports
// it), else a shared-memory tree (WG must be a power of two). Must be reached by every
// invocation of the workgroup (it contains barriers).
#ifdef USE_SUBGROUP
shared float wg_red_[WG / SG_MIN + 1];

float wg_sum(float v) {
    barrier();  // earlier readers of wg_red_ are done
    float s = subgroupAdd(v);
    if (subgroupElect()) wg_red_[gl_SubgroupID] = s;
    barrier();
    float t = 0.0;
    for (uint i = 0; i < gl_NumSubgroups; ++i) t += wg_red_[i];
    return t;
}

float wg_max(float v) {
    barrier();
    float s = subgroupMax(v);
    if (subgroupElect()) wg_red_[gl_SubgroupID] = s;
    barrier();
    float t = NEG_BIG;
    for (uint i = 0; i < gl_NumSubgroups; ++i) t = max(t, wg_red_[i]);
    return t;
}
#else
shared float wg_red_[WG];

float wg_sum(float v) {
    const uint tid = gl_LocalInvocationID.x;
    barrier();
    wg_red_[tid] = v;
    barrier();
    for (uint s = WG / 2; s > 0; s >>= 1) {
        if (tid < s) wg_red_[tid] += wg_red_[tid + s];
        barrier();
    }
    return wg_red_[0];
}

float wg_max(float v) {
    const uint tid = gl_LocalInvocationID.x;
    barrier();
    wg_red_[tid] = v;
    barrier();
    for (uint s = WG / 2; s > 0; s >>= 1) {
        if (tid < s) wg_red_[tid] = max(wg_red_[tid], wg_red_[tid + s]);
        barrier();
    }
    return wg_red_[0];
}
#endif
