// hearth: an offline code assistant. `hearth lsp` is the language server; the other
// subcommands inspect models and run the engine from the shell.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <iostream>

#include "cli.h"

namespace hearth::cli {

int fail(const std::string& message) {
    std::fprintf(stderr, "hearth: %s\n", message.c_str());
    return 1;
}

int fail(const Error& error) { return fail(error.message); }

}  // namespace hearth::cli

int main(int argc, char** argv) {
    // stdout belongs to the protocol (lsp) or to the command's output: logs go to stderr.
    spdlog::set_default_logger(spdlog::stderr_color_mt("hearth"));
    spdlog::set_level(spdlog::level::warn);

    CLI::App app{"hearth: an offline code assistant (LSP server and LLM engine)", "hearth"};
    app.set_version_flag("--version", std::string("hearth ") + HEARTH_VERSION);
    app.require_subcommand(1);
    bool verbose = false;
    app.add_flag("-v,--verbose", verbose, "Log engine details to stderr");

    hearth::cli::Outcome out;
    hearth::cli::register_info(app, out);
    hearth::cli::register_tokenize(app, out);
    hearth::cli::register_logits(app, out);
    hearth::cli::register_complete(app, out);
    hearth::cli::register_lsp(app, out);
    hearth::cli::register_demo(app, out);
    hearth::cli::register_synth(app, out);
    hearth::cli::register_bench(app, out);
    hearth::cli::register_cache(app, out);
    hearth::cli::register_bench_workspace(app, out);
    app.parse_complete_callback([&] {
        if (verbose) spdlog::set_level(spdlog::level::info);
    });

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    } catch (const std::exception& e) {
        // Subcommands return errors as values; this only catches what escapes a library
        // (e.g. std::bad_alloc) so the user sees a message instead of a signal.
        return hearth::cli::fail(e.what());
    }
    std::fflush(stdout);
    return out.exit_code;
}
