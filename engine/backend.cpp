#include "backend.h"

namespace hearth {

Status check_eval(std::span<const int32_t> tokens, int32_t pos, int32_t n_valid, int32_t n_ctx,
                  int32_t n_vocab) {
    if (tokens.empty()) return make_error("eval: no tokens");
    if (pos < 0 || pos > n_valid) {
        return make_error("eval at position " + std::to_string(pos) + ", but only " +
                          std::to_string(n_valid) + " positions are evaluated");
    }
    if (tokens.size() > static_cast<size_t>(n_ctx - pos)) {
        return make_error("eval of " + std::to_string(tokens.size()) + " tokens at position " +
                          std::to_string(pos) + " exceeds the context of " +
                          std::to_string(n_ctx));
    }
    for (size_t i = 0; i < tokens.size(); ++i) {
        if (tokens[i] < 0 || tokens[i] >= n_vocab) {
            return make_error("token id " + std::to_string(tokens[i]) + " at index " +
                              std::to_string(i) + " is outside the vocabulary (n_vocab " +
                              std::to_string(n_vocab) + ")");
        }
    }
    return {};
}

Status check_snapshot_range(int32_t begin, int32_t end, int32_t n_valid) {
    if (begin < 0 || begin > end || end > n_valid) {
        return make_error("snapshot of positions [" + std::to_string(begin) + ", " +
                          std::to_string(end) + "), but only " + std::to_string(n_valid) +
                          " are evaluated");
    }
    return {};
}

Status check_restore(const KVSnapshot& snap, int32_t n_layer, int32_t row_elems, int32_t n_ctx,
                     int32_t n_valid) {
    if (snap.n_layer != n_layer || snap.row_elems != row_elems) {
        return make_error("snapshot shape (" + std::to_string(snap.n_layer) + " layers x " +
                          std::to_string(snap.row_elems) + ") does not match the model (" +
                          std::to_string(n_layer) + " layers x " + std::to_string(row_elems) +
                          ")");
    }
    if (snap.pos < 0 || snap.n_tokens < 0 || snap.n_tokens > n_ctx - snap.pos) {
        return make_error("snapshot of positions [" + std::to_string(snap.pos) + ", +" +
                          std::to_string(snap.n_tokens) + ") does not fit the context of " +
                          std::to_string(n_ctx));
    }
    if (snap.pos > n_valid) {
        return make_error("snapshot starts at position " + std::to_string(snap.pos) +
                          " but only " + std::to_string(n_valid) + " positions are evaluated");
    }
    if (snap.dtype != KVDType::F32 && snap.dtype != KVDType::F16) {
        return make_error("snapshot has unknown element type " +
                          std::to_string(static_cast<uint32_t>(snap.dtype)));
    }
    if (snap.data.size() != snap.expected_bytes()) {
        return make_error("snapshot holds " + std::to_string(snap.data.size()) +
                          " bytes, expected " + std::to_string(snap.expected_bytes()));
    }
    return {};
}

}  // namespace hearth
