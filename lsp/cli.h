// The `hearth` command line: one registration function per subcommand (cli_<name>.cpp).
//
// Every subcommand reports failure as one line on stderr ("hearth: <message>") and a
// non-zero exit code: 1 for a runtime error (bad model file, bad input), 2 for a usage
// error (CLI11 reports those). Nothing here calls exit(); main returns the code.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>

#include "result.h"
#include "server.h"

namespace hearth::cli {

// Set by a subcommand's callback; main returns it.
struct Outcome {
    int exit_code = 0;
};

// Prints "hearth: <message>" to stderr and returns 1.
int fail(const std::string& message);
int fail(const Error& error);

// The Completer factory `hearth lsp` and `hearth demo` serve with: loads the model
// named by the settings and builds an EngineCompleter on the chosen backend.
lsp::CompleterFactory engine_completer_factory();

void register_info(CLI::App& app, Outcome& out);
void register_tokenize(CLI::App& app, Outcome& out);
void register_logits(CLI::App& app, Outcome& out);
void register_complete(CLI::App& app, Outcome& out);
void register_lsp(CLI::App& app, Outcome& out);
void register_demo(CLI::App& app, Outcome& out);
void register_synth(CLI::App& app, Outcome& out);
void register_bench(CLI::App& app, Outcome& out);
void register_cache(CLI::App& app, Outcome& out);
void register_bench_workspace(CLI::App& app, Outcome& out);

}  // namespace hearth::cli
