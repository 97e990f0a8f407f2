// Byte-level BPE tokenizer (GPT-2 family: Qwen2/2.5/3, Llama 3, DeepSeek-Coder), loaded
// from the `tokenizer.ggml.*` metadata of a GGUF file and exact against Hugging Face
// `tokenizers` for the same vocabulary.
//
// GGUF metadata read (llama.cpp's conventions):
//   tokenizer.ggml.model        string    must be "gpt2" (byte-level BPE)
//   tokenizer.ggml.pre          string    pre-tokenizer: "qwen2", "llama-bpe" or
//                                         "deepseek-coder"; anything else is an error
//   tokenizer.ggml.tokens       [string]  token texts; id = index. Normal tokens are
//                                         spelled in the GPT-2 byte-level alphabet
//                                         (unicode.h); special tokens literally
//   tokenizer.ggml.token_type   [i32]     optional, per token: 1 normal, 2 unknown,
//                                         3 control, 4 user-defined, 5 unused, 6 byte
//   tokenizer.ggml.merges       [string]  "left right" per merge, highest priority first
//   tokenizer.ggml.{bos,eos,eot,padding}_token_id            u32, optional
//   tokenizer.ggml.fim_{pre,suf,mid,pad,rep,sep}_token_id   u32, optional; when absent
//                                         the token is looked up by its usual text
//                                         ("<|fim_prefix|>", "<fim_prefix>", ...)
//   tokenizer.ggml.add_bos_token bool     optional
//
// Encoding, as Hugging Face does it for these tokenizers:
//   1. (Template mode only) control and user-defined token texts are cut out of the
//      text, leftmost-longest, and become their ids. Plain mode never does this: a file
//      that contains "<|endoftext|>" is just text.
//   2. Each remaining stretch is NFC-normalised (qwen2 only; its tokenizer.json has an
//      NFC normaliser) and split by the pre-tokenizer's regex, implemented by hand over
//      code points (see tokenizer.cpp for the exact patterns).
//   3. Each piece is spelled as bytes and merged by BPE: repeatedly the adjacent pair
//      with the lowest merge rank (leftmost on ties) is replaced by its merge.
// The regexes mean what they mean to Oniguruma, which Hugging Face runs: \s is the
// White_Space property (U+0085 in, U+FEFF out) and (?i:'s) also matches "'ſ" (U+017F).
//
// Invalid UTF-8 is accepted: each invalid byte is one character of no class (a symbol,
// like the U+FFFD it stands for) to the pre-tokenizer, is left out of normalisation,
// and goes through BPE as the byte it is. So decode(encode(x)) == x for any bytes x
// whose valid stretches are in NFC (for any x with the pre-tokenizers without NFC).
//
// A Tokenizer is immutable after loading and shares its tables between copies, so any
// number of threads may encode and decode at once. Each encode call keeps its own cache
// of piece -> ids, so repeated words in one call cost one hash lookup.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gguf.h"
#include "result.h"

namespace hearth {

struct TokenizerData;  // the immutable tables, shared by copies (tokenizer.cpp)

enum class EncodeMode {
    Template,  // special-token text becomes control tokens (prompt templates)
    Plain,     // everything is ordinary text (file contents, user text)
};

enum class PreTokenizerKind {
    Qwen2,          // Qwen2 regex, single digits, NFC
    LlamaBpe,       // Llama 3 regex (digit runs of up to 3), no normaliser, ignore_merges
    DeepseekCoder,  // DeepSeek-Coder's sequence of five splits, no normaliser
};

class Tokenizer {
public:
    struct SpecialTokens {
        int32_t bos = -1;
        int32_t eos = -1;
        int32_t eot = -1;
        int32_t pad = -1;
        int32_t fim_prefix = -1;
        int32_t fim_suffix = -1;
        int32_t fim_middle = -1;
        int32_t fim_pad = -1;
        int32_t fim_repo = -1;  // "<|repo_name|>": starts repository-level context
        int32_t fim_sep = -1;   // "<|file_sep|>": separates files in that context
    };

    // Token types as GGUF stores them.
    enum class TokenType : uint8_t {
        Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6
    };

    static Expected<Tokenizer> from_gguf(const GGUFFile& gguf);

    std::vector<int32_t> encode(std::string_view text, EncodeMode mode) const;
    // As encode, appending to `out` (prompt assembly builds one vector from segments).
    void encode_append(std::string_view text, EncodeMode mode, std::vector<int32_t>& out) const;

    // The bytes the ids stand for; special tokens render as their text and ids outside
    // the vocabulary render as nothing. Not necessarily valid UTF-8 (a multi-byte
    // character may be split across a range's ends).
    std::string decode(std::span<const int32_t> ids) const;

    // The token's text as the GGUF spells it (byte-level alphabet for normal tokens);
    // empty for an id outside the vocabulary.
    std::string_view token_text(int32_t id) const;
    // The bytes that decode() produces for the token.
    std::string_view token_bytes(int32_t id) const;
    int32_t n_vocab() const;
    TokenType token_type(int32_t id) const;
    // Control and user-defined tokens (Qwen's FIM tokens are user-defined in some
    // files and control in others): tokens that only Template mode produces.
    bool is_control(int32_t id) const;
    // Looks a token up by its GGUF text (e.g. "<|fim_prefix|>", "Ġreturn").
    std::optional<int32_t> find_token(std::string_view text) const;

    const SpecialTokens& special() const;
    PreTokenizerKind pre_tokenizer() const;
    bool add_bos() const;

    // Streams the text of generated tokens: holds back the bytes of a UTF-8 character
    // until its last byte has arrived, so every push() returns whole characters.
    // Bytes that can never complete a character are emitted as they are.
    class IncrementalDecoder {
    public:
        explicit IncrementalDecoder(const Tokenizer& tokenizer);
        std::string push(int32_t id);
        // Emits whatever is held back (an incomplete character at the end of a stream).
        std::string flush();

    private:
        std::shared_ptr<const TokenizerData> data_;
        std::string pending_;
    };

private:
    explicit Tokenizer(std::shared_ptr<const TokenizerData> data);
    std::shared_ptr<const TokenizerData> data_;
};

}  // namespace hearth
