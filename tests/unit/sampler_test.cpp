#include "sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <vector>

namespace hearth {
namespace {

// Logits whose softmax is exactly `probs` (up to rounding).
std::vector<float> logits_of(const std::vector<double>& probs) {
    std::vector<float> out;
    for (double p : probs) out.push_back(static_cast<float>(std::log(p)));
    return out;
}

std::set<int32_t> ids_of(const std::vector<std::pair<int32_t, float>>& dist) {
    std::set<int32_t> s;
    for (const auto& [id, p] : dist) s.insert(id);
    return s;
}

std::vector<float> pseudo_random_logits(size_t n, uint64_t seed) {
    std::vector<float> v(n);
    uint64_t x = seed;
    for (float& f : v) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        f = static_cast<float>((x >> 40) % 10000) / 1000.0f;  // [0, 10)
    }
    return v;
}

TEST(Sampler, GreedyIsArgmax) {
    Sampler s;  // temperature 0
    for (uint64_t seed = 1; seed <= 20; ++seed) {
        const auto logits = pseudo_random_logits(500, seed);
        const auto best = std::max_element(logits.begin(), logits.end()) - logits.begin();
        EXPECT_EQ(s.sample(logits), best);
    }
}

TEST(Sampler, ArgmaxTiesAndNaN) {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    EXPECT_EQ(argmax(std::vector<float>{1.0f, 3.0f, 3.0f, 2.0f}), 1);
    EXPECT_EQ(argmax(std::vector<float>{nan, 0.5f, nan}), 1);
    EXPECT_EQ(argmax(std::vector<float>{}), -1);
    Sampler s;
    EXPECT_EQ(s.sample(std::vector<float>{}), -1);
}

TEST(Sampler, TopKOneIsGreedy) {
    Sampler s({.temperature = 1.5f, .top_k = 1, .seed = 7});
    for (uint64_t seed = 1; seed <= 20; ++seed) {
        const auto logits = pseudo_random_logits(300, seed);
        EXPECT_EQ(s.sample(logits), argmax(logits));
    }
}

TEST(Sampler, SameSeedSameSequence) {
    const SamplerParams p{.temperature = 1.0f, .top_k = 40, .top_p = 0.95f, .seed = 1234};
    Sampler a(p), b(p), c({.temperature = 1.0f, .top_k = 40, .top_p = 0.95f, .seed = 99});
    std::vector<int32_t> sa, sb, sc;
    for (uint64_t i = 0; i < 200; ++i) {
        const auto logits = pseudo_random_logits(1000, i % 3);
        sa.push_back(a.sample(logits));
        sb.push_back(b.sample(logits));
        sc.push_back(c.sample(logits));
    }
    EXPECT_EQ(sa, sb);
    EXPECT_NE(sa, sc);
    // reseed restarts the sequence.
    a.reseed(1234);
    for (uint64_t i = 0; i < 10; ++i) {
        EXPECT_EQ(a.sample(pseudo_random_logits(1000, i % 3)), sa[i]);
    }
}

TEST(Sampler, TopKKeepsTheKLargest) {
    Sampler s({.temperature = 1.0f, .top_k = 3});
    const std::vector<float> logits = {0.1f, 5.0f, 2.0f, 4.0f, -1.0f, 3.0f};
    const auto dist = s.distribution(logits);
    EXPECT_EQ(ids_of(dist), (std::set<int32_t>{1, 3, 5}));
    double sum = 0;
    for (const auto& [id, p] : dist) sum += p;
    EXPECT_NEAR(sum, 1.0, 1e-6);
    // Renormalised softmax over the kept logits.
    const double z = std::exp(5.0) + std::exp(4.0) + std::exp(3.0);
    EXPECT_NEAR(dist[0].second, std::exp(5.0) / z, 1e-6);
}

TEST(Sampler, TopPKeepsTheSmallestPrefixReachingP) {
    const auto logits = logits_of({0.05, 0.4, 0.3, 0.15, 0.1});
    // Sorted: 0.4 (1), 0.3 (2), 0.15 (3), 0.1 (4), 0.05 (0).
    auto set_for = [&](float top_p) {
        Sampler s({.temperature = 1.0f, .top_p = top_p});
        return ids_of(s.distribution(logits));
    };
    EXPECT_EQ(set_for(0.3f), (std::set<int32_t>{1}));
    EXPECT_EQ(set_for(0.5f), (std::set<int32_t>{1, 2}));
    EXPECT_EQ(set_for(0.69f), (std::set<int32_t>{1, 2}));  // 0.4 + 0.3 passes 0.69
    EXPECT_EQ(set_for(0.8f), (std::set<int32_t>{1, 2, 3}));
    EXPECT_EQ(set_for(0.96f), (std::set<int32_t>{0, 1, 2, 3, 4}));
    Sampler s({.temperature = 1.0f, .top_p = 0.8f});
    const auto dist = s.distribution(logits);
    ASSERT_EQ(dist.size(), 3u);
    EXPECT_NEAR(dist[0].second, 0.4 / 0.85, 1e-6);
    EXPECT_NEAR(dist[2].second, 0.15 / 0.85, 1e-6);
}

TEST(Sampler, MinPKeepsTokensNearTheTop) {
    const auto logits = logits_of({0.05, 0.4, 0.3, 0.15, 0.1});
    auto set_for = [&](float min_p) {
        Sampler s({.temperature = 1.0f, .min_p = min_p});
        return ids_of(s.distribution(logits));
    };
    EXPECT_EQ(set_for(0.5f), (std::set<int32_t>{1, 2}));        // >= 0.2
    EXPECT_EQ(set_for(0.3f), (std::set<int32_t>{1, 2, 3}));     // >= 0.12
    EXPECT_EQ(set_for(0.2f), (std::set<int32_t>{1, 2, 3, 4}));  // >= 0.08
    EXPECT_EQ(set_for(0.9f), (std::set<int32_t>{1}));
}

TEST(Sampler, FiltersApplyInOrder) {
    // top-k 4 drops token 0; top-p 0.9 over the renormalised four (0.4/.95, .3/.95, ...)
    // needs 1, 2, 3 (0.895 < 0.9) and 4; min-p 0.3 then drops 4 (0.1 < 0.12).
    const auto logits = logits_of({0.05, 0.4, 0.3, 0.15, 0.1});
    Sampler s({.temperature = 1.0f, .top_k = 4, .top_p = 0.9f, .min_p = 0.3f});
    EXPECT_EQ(ids_of(s.distribution(logits)), (std::set<int32_t>{1, 2, 3}));
}

TEST(Sampler, DrawFrequenciesFollowTheDistribution) {
    const std::vector<double> probs = {0.5, 0.3, 0.15, 0.05};
    const auto logits = logits_of(probs);
    Sampler s({.temperature = 1.0f, .seed = 42});
    std::map<int32_t, int> count;
    const int n = 20000;
    for (int i = 0; i < n; ++i) ++count[s.sample(logits)];
    for (size_t id = 0; id < probs.size(); ++id) {
        const double expected = probs[id] * n;
        const double sigma = std::sqrt(n * probs[id] * (1 - probs[id]));
        EXPECT_NEAR(count[static_cast<int32_t>(id)], expected, 5 * sigma) << "token " << id;
    }
}

TEST(Sampler, TemperatureSharpensAndFlattens) {
    const auto logits = logits_of({0.5, 0.3, 0.15, 0.05});
    auto top_share = [&](float temperature) {
        Sampler s({.temperature = temperature, .seed = 5});
        int top = 0;
        for (int i = 0; i < 5000; ++i) top += s.sample(logits) == 0;
        return top / 5000.0;
    };
    const double cold = top_share(0.25f), normal = top_share(1.0f), hot = top_share(4.0f);
    // At T=0.25 token 0 has probability 0.5^4 / sum(p^4) = 0.87; at T=4, about 0.33.
    EXPECT_GT(cold, 0.83);
    EXPECT_NEAR(normal, 0.5, 0.05);
    EXPECT_LT(hot, 0.38);
    EXPECT_GT(hot, 0.25);
}

TEST(Sampler, AllNegativeInfinityFallsBackToArgmax) {
    const float ninf = -std::numeric_limits<float>::infinity();
    Sampler s({.temperature = 1.0f});
    EXPECT_EQ(s.sample(std::vector<float>{ninf, ninf, ninf}), 0);
    EXPECT_EQ(s.sample(std::vector<float>{ninf, 1.0f, ninf}), 1);
}

TEST(TopLogprobs, SortedLogSoftmax) {
    const std::vector<double> probs = {0.1, 0.2, 0.4, 0.2, 0.1};
    const auto logits = logits_of(probs);
    const auto top = top_logprobs(logits, 3);
    ASSERT_EQ(top.size(), 3u);
    EXPECT_EQ(top[0].first, 2);
    EXPECT_EQ(top[1].first, 1);  // tie with 3: lower id first
    EXPECT_EQ(top[2].first, 3);
    EXPECT_NEAR(top[0].second, std::log(0.4), 1e-6);
    EXPECT_NEAR(top[1].second, std::log(0.2), 1e-6);
    // Shifting every logit changes nothing.
    std::vector<float> shifted = logits;
    for (float& f : shifted) f += 100.0f;
    const auto top2 = top_logprobs(shifted, 10);
    ASSERT_EQ(top2.size(), 5u);  // clamped to the vocabulary
    EXPECT_NEAR(top2[0].second, std::log(0.4), 1e-5);
    EXPECT_TRUE(top_logprobs(logits, 0).empty());
}

}  // namespace
}  // namespace hearth
