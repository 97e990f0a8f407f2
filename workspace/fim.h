// Fill-in-the-middle prompt templates per model family.
//
// A prompt is built as token segments in a fixed order so that the part that changes
// rarely comes first and stays a stable token prefix (the KV cache reuses it):
//
//   [repository context: repo name, context files]   <- stable across edits
//   [current file: prefix marker, prefix, suffix marker, suffix, middle marker]
//
// Control tokens are inserted by id; every piece of user text (file contents, paths) is
// tokenized in plain mode, so a file containing "<|endoftext|>" never yields a control
// token.
//
// Families (detected from the vocabulary's FIM tokens, overridable by name):
//   qwen        <|repo_name|>R\n<|file_sep|>P\nTEXT\n ... <|file_sep|>P\n
//               <|fim_prefix|>PRE<|fim_suffix|>SUF<|fim_middle|>
//   deepseek    #P\nTEXT\n ... <｜fim▁begin｜>PRE<｜fim▁hole｜>SUF<｜fim▁end｜>
//   starcoder2  <repo_name>R<file_sep>P\nTEXT ... <file_sep>P\n
//               <fim_prefix>PRE<fim_suffix>SUF<fim_middle>
//   codellama   <PRE> PRE <SUF>SUF <MID>  (no repository-level form)
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "completer.h"
#include "result.h"

namespace hearth {

class Tokenizer;

enum class FimFamily { Qwen, DeepSeek, StarCoder2, CodeLlama };

std::string_view fim_family_name(FimFamily f);
std::optional<FimFamily> fim_family_from_name(std::string_view name);

struct FimTokens {
    int32_t prefix = -1, suffix = -1, middle = -1;
    int32_t repo_name = -1, file_sep = -1;  // -1 when the family has none
    // Token ids that end a completion (end of text, FIM pad, file separator, ...).
    std::vector<int32_t> stop;
};

struct FimPrompt {
    std::vector<int32_t> tokens;
    int32_t stable_tokens = 0;  // length of the repository-context prefix
    // Tokens up to the cursor: the context, the file header and the text before the cursor.
    // Typing at the cursor changes only what follows (and the last few of these), so the
    // disk cache checkpoints whole chunks of this part.
    int32_t cursor_tokens = 0;
};

class FimTemplate {
public:
    // Picks the family from the vocabulary (or `override_name` when given) and resolves
    // its control tokens; an error names the tokens the vocabulary lacks.
    static Expected<FimTemplate> detect(const Tokenizer& tok, std::string_view override_name = {});

    FimFamily family() const { return family_; }
    const FimTokens& tokens() const { return tokens_; }

    FimPrompt build(const Tokenizer& tok, const CompletionRequest& req) const;
    // Left-to-right form for a cursor with nothing but whitespace after it: the
    // repository context, then the current file's text up to the cursor, no FIM markers
    // (the file simply continues). Models complete the end of a file better this way.
    FimPrompt build_continuation(const Tokenizer& tok, const CompletionRequest& req) const;

private:
    FimFamily family_ = FimFamily::Qwen;
    FimTokens tokens_;
};

}  // namespace hearth
