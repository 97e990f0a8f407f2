#include "sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace hearth {

namespace {

uint64_t splitmix64(uint64_t& x) {
    uint64_t z = (x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

// NaN logits are treated as impossible tokens rather than poisoning the softmax.
float clean(float x) {
    return std::isnan(x) ? -std::numeric_limits<float>::infinity() : x;
}

}  // namespace

int32_t argmax(std::span<const float> logits) {
    int32_t best = -1;
    float best_v = 0.0f;
    for (size_t i = 0; i < logits.size(); ++i) {
        const float v = clean(logits[i]);
        if (best < 0 || v > best_v) {
            best = static_cast<int32_t>(i);
            best_v = v;
        }
    }
    return best;
}

std::vector<std::pair<int32_t, float>> top_logprobs(std::span<const float> logits, int k) {
    if (logits.empty() || k <= 0) return {};
    float mx = -std::numeric_limits<float>::infinity();
    for (float v : logits) mx = std::max(mx, clean(v));
    double sum = 0.0;
    for (float v : logits) sum += std::exp(static_cast<double>(clean(v)) - mx);
    const double lse = mx + std::log(sum);

    std::vector<int32_t> idx(logits.size());
    for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<int32_t>(i);
    const size_t n = std::min(idx.size(), static_cast<size_t>(k));
    std::partial_sort(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(n), idx.end(),
                      [&](int32_t a, int32_t b) {
                          const float va = clean(logits[a]), vb = clean(logits[b]);
                          return va > vb || (va == vb && a < b);
                      });
    std::vector<std::pair<int32_t, float>> out;
    out.reserve(n);
    for (size_t i = 0; i < n; ++i) {
        out.emplace_back(idx[i], static_cast<float>(clean(logits[idx[i]]) - lse));
    }
    return out;
}

Sampler::Sampler(const SamplerParams& params) : params_(params) {
    reseed(params.seed);
}

void Sampler::reseed(uint64_t seed) {
    uint64_t x = seed;
    for (uint64_t& s : state_) s = splitmix64(x);
}

// xoshiro256** (Blackman & Vigna).
uint64_t Sampler::next_u64() {
    const uint64_t result = rotl(state_[1] * 5, 7) * 9;
    const uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return result;
}

double Sampler::next_unit() {
    return static_cast<double>(next_u64() >> 11) * 0x1.0p-53;
}

void Sampler::filter(std::span<const float> logits) {
    cands_.clear();
    if (greedy()) {
        cands_.push_back({argmax(logits), 0.0f, 1.0});
        return;
    }
    cands_.reserve(logits.size());
    for (size_t i = 0; i < logits.size(); ++i) {
        cands_.push_back({static_cast<int32_t>(i), clean(logits[i]), 0.0});
    }
    auto by_logit = [](const Candidate& a, const Candidate& b) {
        return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
    };
    bool sorted = false;
    if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < cands_.size()) {
        const auto k = static_cast<std::ptrdiff_t>(params_.top_k);
        std::partial_sort(cands_.begin(), cands_.begin() + k, cands_.end(), by_logit);
        cands_.resize(static_cast<size_t>(k));
        sorted = true;
    }

    float mx = -std::numeric_limits<float>::infinity();
    for (const Candidate& c : cands_) mx = std::max(mx, c.logit);
    if (!std::isfinite(mx)) {
        // Every logit is -inf (or NaN): nothing is likely, so fall back to the argmax.
        cands_.assign(1, {argmax(logits), 0.0f, 1.0});
        return;
    }
    const double inv_t = 1.0 / static_cast<double>(params_.temperature);
    double sum = 0.0;
    for (Candidate& c : cands_) {
        c.p = std::exp((static_cast<double>(c.logit) - mx) * inv_t);
        sum += c.p;
    }
    for (Candidate& c : cands_) c.p /= sum;

    if (params_.top_p < 1.0f) {
        if (!sorted) std::sort(cands_.begin(), cands_.end(), by_logit);
        double cum = 0.0;
        size_t keep = 0;
        while (keep < cands_.size()) {
            cum += cands_[keep].p;
            ++keep;
            if (cum >= static_cast<double>(params_.top_p)) break;
        }
        cands_.resize(keep);
    }
    if (params_.min_p > 0.0f) {
        double p_max = 0.0;
        for (const Candidate& c : cands_) p_max = std::max(p_max, c.p);
        const double threshold = p_max * static_cast<double>(params_.min_p);
        std::erase_if(cands_, [&](const Candidate& c) { return c.p < threshold; });
    }
    sum = 0.0;
    for (const Candidate& c : cands_) sum += c.p;
    for (Candidate& c : cands_) c.p /= sum;
}

int32_t Sampler::sample(std::span<const float> logits) {
    if (logits.empty()) return -1;
    filter(logits);
    if (cands_.size() == 1) return cands_[0].id;
    const double u = next_unit();
    double cum = 0.0;
    for (const Candidate& c : cands_) {
        cum += c.p;
        if (u < cum) return c.id;
    }
    // Rounding can leave the total a hair under 1: the last candidate takes the rest.
    return cands_.back().id;
}

std::vector<std::pair<int32_t, float>> Sampler::distribution(std::span<const float> logits) {
    std::vector<std::pair<int32_t, float>> out;
    if (logits.empty()) return out;
    filter(logits);
    out.reserve(cands_.size());
    for (const Candidate& c : cands_) out.emplace_back(c.id, static_cast<float>(c.p));
    return out;
}

}  // namespace hearth
