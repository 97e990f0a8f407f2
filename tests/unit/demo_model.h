// The bundled demo model (a 19M-parameter Python FIM model with real weights), loaded once
// per test binary, and paths into tests/data.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "engine.h"

namespace hearth::test {

inline std::string data_path(const std::string& name) {
    return std::string(HEARTH_TEST_DATA) + "/" + name;
}

inline const LoadedModel& demo_model() {
    static const LoadedModel m = [] {
        auto r = load_model(data_path("hearth-demo-py-q8_0.gguf"));
        EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
        return r.ok() ? *r : LoadedModel{};
    }();
    return m;
}

}  // namespace hearth::test
