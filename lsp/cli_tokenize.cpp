// hearth tokenize / detokenize: text <-> token ids with a model's (or vocab file's)
// tokenizer. Only the vocabulary is loaded, so vocab-only GGUF files work too.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>

#include "cli.h"
#include "cli_util.h"
#include "gguf.h"
#include "tokenizer.h"

namespace hearth::cli {
namespace {

Expected<Tokenizer> open_tokenizer(const std::string& path) {
    auto file = GGUFFile::open(path);
    if (!file) return file.error();
    auto tok = Tokenizer::from_gguf(**file);
    if (!tok) return make_error(path + ": " + tok.error().message);
    return tok;
}

int run_tokenize(const std::string& model, bool plain, bool as_json) {
    auto tok = open_tokenizer(model);
    if (!tok) return fail(tok.error());
    const std::string text(std::istreambuf_iterator<char>(std::cin), {});
    const auto ids = tok->encode(text, plain ? EncodeMode::Plain : EncodeMode::Template);
    if (as_json) {
        nlohmann::json pieces = nlohmann::json::array();
        for (int32_t id : ids) {
            // Token text may be a partial UTF-8 sequence: JSON gets it with replacements.
            pieces.push_back(std::string(tok->token_text(id)));
        }
        nlohmann::json j{{"ids", ids}, {"tokens", pieces}, {"count", ids.size()}};
        std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    } else {
        std::printf("%s\n", join_ids(ids).c_str());
    }
    return 0;
}

int run_detokenize(const std::string& model, const std::string& tokens_arg) {
    auto tok = open_tokenizer(model);
    if (!tok) return fail(tok.error());
    std::string src = tokens_arg;
    if (src.empty()) src.assign(std::istreambuf_iterator<char>(std::cin), {});
    auto ids = parse_ids(src, tok->n_vocab());
    if (!ids) return fail(ids.error());
    const std::string text = tok->decode(*ids);
    std::fwrite(text.data(), 1, text.size(), stdout);
    return 0;
}

}  // namespace

void register_tokenize(CLI::App& app, Outcome& out) {
    struct Args {
        std::string model, tokens;
        bool plain = false, json = false;
    };
    auto a = std::make_shared<Args>();
    auto* tk = app.add_subcommand("tokenize", "Read text on stdin, print token ids");
    tk->add_option("-m,--model", a->model, "GGUF file with a tokenizer")->required();
    tk->add_flag("--plain", a->plain,
                 "Treat special-token text as plain text (as file contents are)");
    tk->add_flag("--json", a->json, "Print {\"ids\", \"tokens\", \"count\"} as JSON");
    tk->callback([&out, a] { out.exit_code = run_tokenize(a->model, a->plain, a->json); });

    auto* dt = app.add_subcommand("detokenize", "Print the text of token ids");
    dt->add_option("-m,--model", a->model, "GGUF file with a tokenizer")->required();
    dt->add_option("--tokens", a->tokens, "Ids separated by commas or spaces (default: stdin)");
    dt->callback([&out, a] { out.exit_code = run_detokenize(a->model, a->tokens); });
}

}  // namespace hearth::cli
