// Sampler: picks the next token from a logit vector.
//
// Order of operations (each step optional):
//   top-k  keep the k largest logits (0 = all)
//   softmax with temperature (temperature <= 0 means greedy: the argmax, lowest id on ties)
//   top-p  keep the most likely tokens whose cumulative probability first reaches p
//   min-p  keep tokens whose probability is at least min_p times the largest one
//   draw   one token from what is left, renormalised
//
// Draws are repeatable: the same seed and logits give the same tokens on every platform and
// standard library, because the generator (xoshiro256**, seeded through splitmix64) and
// the draw (a 53-bit uniform walked along the cumulative distribution) are our own rather
// than std:: distributions, whose outputs are implementation-defined.
#pragma once

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

namespace hearth {

struct SamplerParams {
    float temperature = 0.0f;  // 0 = greedy
    int top_k = 0;             // 0 = no limit
    float top_p = 1.0f;        // 1 = no limit
    float min_p = 0.0f;        // 0 = no limit
    uint64_t seed = 0;
};

class Sampler {
public:
    explicit Sampler(const SamplerParams& params = {});

    const SamplerParams& params() const { return params_; }
    // Restarts the random sequence as if freshly constructed with `seed`.
    void reseed(uint64_t seed);

    // The next token; -1 only for an empty logit vector.
    int32_t sample(std::span<const float> logits);

    // The distribution sample() draws from, after every filter: (token, probability)
    // pairs summing to 1. Greedy gives the argmax with probability 1. The order is the
    // order of the draw walk (by probability when top-k or top-p sorted it, else by id).
    std::vector<std::pair<int32_t, float>> distribution(std::span<const float> logits);

    bool greedy() const { return params_.temperature <= 0.0f || params_.top_k == 1; }

private:
    struct Candidate {
        int32_t id;
        float logit;
        double p;
    };
    // Fills cands_ with the filtered, normalised candidates.
    void filter(std::span<const float> logits);
    uint64_t next_u64();
    double next_unit();  // uniform in [0, 1)

    SamplerParams params_;
    uint64_t state_[4] = {};
    std::vector<Candidate> cands_;  // reused between calls: no allocation per token
};

// Index of the largest logit (lowest index on ties; NaN never wins); -1 if empty.
int32_t argmax(std::span<const float> logits);

// The k most likely tokens with their log-probabilities (log-softmax of the logits),
// most likely first; ties broken by lower id. k is clamped to the vocabulary size.
std::vector<std::pair<int32_t, float>> top_logprobs(std::span<const float> logits, int k);

}  // namespace hearth
