// hearth gguf-synth --shape NAME --type T --vocab VOCAB.gguf -o OUT.gguf
// Writes random weights in a real model's shapes (see engine/synth.h).
#include <chrono>
#include <cstdio>

#include "cli.h"
#include "synth.h"

namespace hearth::cli {
namespace {

int run_synth(SynthOptions opts, bool quiet) {
    const auto t0 = std::chrono::steady_clock::now();
    int last_pct = -1;
    if (!quiet) {
        opts.progress = [&last_pct](uint64_t done, uint64_t total) {
            const int pct = total ? static_cast<int>(done * 100 / total) : 100;
            if (pct != last_pct) {
                std::fprintf(stderr, "\rhearth: writing %3d%% (%.2f of %.2f GiB)", pct,
                             static_cast<double>(done) / (1 << 30), static_cast<double>(total) / (1 << 30));
                last_pct = pct;
            }
        };
    }
    Status s = synthesize_model(opts);
    if (!quiet && last_pct >= 0) std::fprintf(stderr, "\n");
    if (!s.ok()) return fail(s.error());
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!quiet) std::fprintf(stderr, "hearth: wrote %s in %.1f s\n", opts.out_path.c_str(), secs);
    return 0;
}

}  // namespace

void register_synth(CLI::App& app, Outcome& out) {
    auto opts = std::make_shared<SynthOptions>();
    auto quiet = std::make_shared<bool>(false);
    std::string shapes;
    for (const SynthShape& s : synth_shapes()) shapes += (shapes.empty() ? "" : ", ") + std::string(s.name);
    auto* cmd = app.add_subcommand("gguf-synth", "Write a GGUF with random weights in a real model shape");
    cmd->add_option("--shape", opts->shape, "One of: " + shapes)->required();
    cmd->add_option("--type", opts->type, "f16, q8_0 or q4_k_m")->required();
    cmd->add_option("--vocab", opts->vocab_path, "GGUF whose tokenizer to copy")->required();
    cmd->add_option("-o,--output", opts->out_path, "Output GGUF path")->required();
    cmd->add_option("--seed", opts->seed, "Seed")->capture_default_str();
    cmd->add_option("--layers", opts->n_layer_override, "Fewer layers than the shape (tests)");
    cmd->add_flag("-q,--quiet", *quiet, "No progress on stderr");
    cmd->callback([&out, opts, quiet] { out.exit_code = run_synth(*opts, *quiet); });
}

}  // namespace hearth::cli
