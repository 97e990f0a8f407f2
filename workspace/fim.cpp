#include "fim.h"

#include <array>

#include "tokenizer.h"

namespace hearth {

std::string_view fim_family_name(FimFamily f) {
    switch (f) {
        case FimFamily::Qwen: return "qwen";
        case FimFamily::DeepSeek: return "deepseek";
        case FimFamily::StarCoder2: return "starcoder2";
        case FimFamily::CodeLlama: return "codellama";
    }
    return "qwen";
}

std::optional<FimFamily> fim_family_from_name(std::string_view name) {
    for (FimFamily f : {FimFamily::Qwen, FimFamily::DeepSeek, FimFamily::StarCoder2,
                        FimFamily::CodeLlama}) {
        if (fim_family_name(f) == name) return f;
    }
    return std::nullopt;
}

namespace {

struct FamilySpec {
    FimFamily family;
    const char* prefix;
    const char* suffix;
    const char* middle;
    const char* repo_name;  // nullptr: none
    const char* file_sep;   // nullptr: none
    std::array<const char*, 4> extra_stops;
};

// Control-token spellings per family, in detection order.
constexpr FamilySpec kFamilies[] = {
    {FimFamily::Qwen, "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|repo_name|>",
     "<|file_sep|>", {"<|endoftext|>", "<|fim_pad|>", "<|im_end|>", nullptr}},
    {FimFamily::DeepSeek, "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "begin\xEF\xBD\x9C>",
     "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "hole\xEF\xBD\x9C>",
     "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "end\xEF\xBD\x9C>", nullptr, nullptr,
     {"<\xEF\xBD\x9C" "end\xE2\x96\x81" "of\xE2\x96\x81" "sentence\xEF\xBD\x9C>", "<|EOT|>",
      nullptr, nullptr}},
    {FimFamily::StarCoder2, "<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<repo_name>",
     "<file_sep>", {"<|endoftext|>", "<fim_pad>", nullptr, nullptr}},
    {FimFamily::CodeLlama, "\xE2\x96\x81<PRE>", "\xE2\x96\x81<SUF>", "\xE2\x96\x81<MID>",
     nullptr, nullptr, {"\xE2\x96\x81<EOT>", "</s>", nullptr, nullptr}},
};

const FamilySpec& spec_of(FimFamily f) {
    for (const FamilySpec& s : kFamilies) {
        if (s.family == f) return s;
    }
    return kFamilies[0];
}

void append(std::vector<int32_t>& out, const std::vector<int32_t>& ids) {
    out.insert(out.end(), ids.begin(), ids.end());
}

}  // namespace

Expected<FimTemplate> FimTemplate::detect(const Tokenizer& tok, std::string_view override_name) {
    const FamilySpec* chosen = nullptr;
    if (!override_name.empty()) {
        auto f = fim_family_from_name(override_name);
        if (!f) {
            return make_error("unknown FIM template '" + std::string(override_name) +
                              "' (known: qwen, deepseek, starcoder2, codellama)");
        }
        chosen = &spec_of(*f);
    } else {
        for (const FamilySpec& s : kFamilies) {
            if (tok.find_token(s.prefix) && tok.find_token(s.suffix) && tok.find_token(s.middle)) {
                chosen = &s;
                break;
            }
        }
        if (chosen == nullptr) {
            return make_error("the model's vocabulary has no fill-in-the-middle tokens "
                              "(looked for qwen, deepseek, starcoder2 and codellama FIM tokens)");
        }
    }

    FimTemplate t;
    t.family_ = chosen->family;
    auto need = [&](const char* text, int32_t& id) -> Status {
        auto found = tok.find_token(text);
        if (!found) {
            return make_error("FIM template '" + std::string(fim_family_name(chosen->family)) +
                              "': the vocabulary has no token " + text);
        }
        id = *found;
        return {};
    };
    HEARTH_TRY(need(chosen->prefix, t.tokens_.prefix));
    HEARTH_TRY(need(chosen->suffix, t.tokens_.suffix));
    HEARTH_TRY(need(chosen->middle, t.tokens_.middle));
    // Repository-level markers are optional: without them the context files are dropped.
    if (chosen->repo_name) {
        if (auto id = tok.find_token(chosen->repo_name)) t.tokens_.repo_name = *id;
    }
    if (chosen->file_sep) {
        if (auto id = tok.find_token(chosen->file_sep)) t.tokens_.file_sep = *id;
    }
    for (const char* s : chosen->extra_stops) {
        if (s == nullptr) continue;
        if (auto id = tok.find_token(s)) t.tokens_.stop.push_back(*id);
    }
    for (int32_t id : {tok.special().eos, tok.special().eot}) {
        if (id >= 0) t.tokens_.stop.push_back(id);
    }
    // A model that starts the next file or a new FIM section is done with this one.
    for (int32_t id : {t.tokens_.file_sep, t.tokens_.prefix, t.tokens_.suffix, t.tokens_.middle,
                       t.tokens_.repo_name}) {
        if (id >= 0) t.tokens_.stop.push_back(id);
    }
    return t;
}

namespace {

// Appends the repository context (the stable part of every prompt) to p.
void append_context(const Tokenizer& tok, FimFamily family, const FimTokens& k,
                    const CompletionRequest& req, FimPrompt& p) {
    auto text = [&](std::string_view s) { append(p.tokens, tok.encode(s, EncodeMode::Plain)); };
    switch (family) {
        case FimFamily::Qwen:
        case FimFamily::StarCoder2:
            if (k.file_sep >= 0 && (!req.context.empty() || !req.path.empty())) {
                if (k.repo_name >= 0) {
                    p.tokens.push_back(k.repo_name);
                    text(req.repo_name.empty() ? std::string("workspace") : req.repo_name);
                    if (family == FimFamily::Qwen) text("\n");
                }
                for (const ContextFile& f : req.context) {
                    p.tokens.push_back(k.file_sep);
                    text(f.path + "\n" + f.text);
                    if (family == FimFamily::Qwen) text("\n");
                }
            }
            break;
        case FimFamily::DeepSeek:
            for (const ContextFile& f : req.context) text("#" + f.path + "\n" + f.text + "\n");
            break;
        case FimFamily::CodeLlama:
            break;  // no repository-level form
    }
    p.stable_tokens = static_cast<int32_t>(p.tokens.size());
}

}  // namespace

FimPrompt FimTemplate::build_continuation(const Tokenizer& tok,
                                          const CompletionRequest& req) const {
    FimPrompt p;
    append_context(tok, family_, tokens_, req, p);
    auto text = [&](std::string_view s) { append(p.tokens, tok.encode(s, EncodeMode::Plain)); };
    if ((family_ == FimFamily::Qwen || family_ == FimFamily::StarCoder2) &&
        tokens_.file_sep >= 0 && !req.path.empty()) {
        p.tokens.push_back(tokens_.file_sep);
        text(req.path + "\n");
    } else if (family_ == FimFamily::DeepSeek && !req.path.empty() && !req.context.empty()) {
        text("#" + req.path + "\n");
    }
    text(req.prefix);
    p.cursor_tokens = static_cast<int32_t>(p.tokens.size());
    return p;
}

FimPrompt FimTemplate::build(const Tokenizer& tok, const CompletionRequest& req) const {
    FimPrompt p;
    append_context(tok, family_, tokens_, req, p);
    auto text = [&](std::string_view s) { append(p.tokens, tok.encode(s, EncodeMode::Plain)); };
    const FimTokens& k = tokens_;

    // Current file: prefix-suffix-middle order.
    if ((family_ == FimFamily::Qwen || family_ == FimFamily::StarCoder2) && k.file_sep >= 0 &&
        !req.path.empty()) {
        p.tokens.push_back(k.file_sep);
        text(req.path + "\n");
    }
    if (family_ == FimFamily::DeepSeek && !req.path.empty() && !req.context.empty()) {
        text("#" + req.path + "\n");
    }
    p.tokens.push_back(k.prefix);
    if (family_ == FimFamily::CodeLlama) text(" ");
    text(req.prefix);
    p.cursor_tokens = static_cast<int32_t>(p.tokens.size());
    if (family_ == FimFamily::CodeLlama) text(" ");
    p.tokens.push_back(k.suffix);
    text(req.suffix);
    if (family_ == FimFamily::CodeLlama) text(" ");
    p.tokens.push_back(k.middle);
    return p;
}

}  // namespace hearth
