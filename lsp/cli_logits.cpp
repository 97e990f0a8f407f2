// hearth logits --model M --tokens 1,2,3 [--backend cpu] [--top K]
// Prints {"positions": [[[id, logprob], ...], ...]}: for every input position, the K most
// likely next tokens with their log-probabilities (one prefill over all positions).
#include <nlohmann/json.hpp>

#include <cstdio>

#include "cli.h"
#include "cli_util.h"
#include "engine.h"
#include "sampler.h"

namespace hearth::cli {
namespace {

struct Args {
    std::string model, tokens, backend = "cpu";
    int top = 20;
    int threads = 0;
};

int run_logits(const Args& a) {
    auto kind = parse_backend_kind(a.backend);
    if (!kind) return fail(kind.error());
    auto m = load_model(a.model);
    if (!m) return fail(m.error());
    auto ids = parse_ids(a.tokens, m->model->hparams().n_vocab);
    if (!ids) return fail(ids.error());
    if (ids->empty()) return fail("--tokens is empty");
    if (a.top < 1) return fail("--top must be at least 1");

    BackendOptions bo;
    bo.kind = *kind;
    bo.n_threads = a.threads;
    bo.progress = upload_progress_printer();
    auto backend = make_backend(m->model, bo);
    if (!backend) return fail(backend.error());
    auto session = (*backend)->create_session(static_cast<int32_t>(ids->size()));
    if (!session) return fail(session.error());
    std::vector<float> logits;
    if (Status s = (*session)->eval(*ids, 0, /*logits_all=*/true, logits); !s.ok()) return fail(s.error());

    const size_t n_vocab = static_cast<size_t>(m->model->hparams().n_vocab);
    nlohmann::json positions = nlohmann::json::array();
    for (size_t p = 0; p < ids->size(); ++p) {
        std::span<const float> row(logits.data() + p * n_vocab, n_vocab);
        nlohmann::json top = nlohmann::json::array();
        for (const auto& [id, lp] : top_logprobs(row, a.top)) top.push_back({id, lp});
        positions.push_back(std::move(top));
    }
    nlohmann::json out{{"positions", std::move(positions)}};
    std::printf("%s\n", out.dump().c_str());
    return 0;
}

}  // namespace

void register_logits(CLI::App& app, Outcome& out) {
    auto a = std::make_shared<Args>();
    auto* cmd = app.add_subcommand("logits", "Print the top next-token log-probabilities per position");
    cmd->add_option("-m,--model", a->model, "GGUF model")->required();
    cmd->add_option("--tokens", a->tokens, "Token ids, e.g. 1,2,3")->required();
    cmd->add_option("--backend", a->backend, "cpu, vulkan or auto")->capture_default_str();
    cmd->add_option("--top", a->top, "Tokens per position")->capture_default_str();
    cmd->add_option("--threads", a->threads, "CPU threads (0: all)");
    cmd->callback([&out, a] { out.exit_code = run_logits(*a); });
}

}  // namespace hearth::cli
