// Tokenizer: exact against Hugging Face on tokenizer-golden.json for both vocabularies
// and both modes, round trips (including invalid UTF-8), the streaming decoder, special
// tokens, the other pre-tokenizers and loader errors on synthetic GGUF files.
#include "tokenizer.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "unicode.h"

namespace hearth {
namespace {

const std::string kData = HEARTH_TEST_DATA;

// Each test binary loads a vocabulary once; the big one takes a moment.
const Tokenizer& load(const std::string& file) {
    static std::map<std::string, std::pair<std::unique_ptr<GGUFFile>, std::optional<Tokenizer>>>
        cache;
    auto& entry = cache[file];
    if (!entry.second) {
        auto gguf = GGUFFile::open(kData + "/" + file);
        EXPECT_TRUE(gguf.ok()) << gguf.error().message;
        auto tok = Tokenizer::from_gguf(**gguf);
        EXPECT_TRUE(tok.ok()) << tok.error().message;
        entry.first = std::move(*gguf);
        entry.second.emplace(std::move(*tok));
    }
    return *entry.second;
}

const Tokenizer& qwen() { return load("qwen-vocab.gguf"); }
const Tokenizer& small() { return load("qwen2-test-f16.gguf"); }

struct GoldenCase {
    std::string text;
    std::vector<int32_t> ids_special;
    std::vector<int32_t> ids_plain;
};

std::vector<GoldenCase> golden(const std::string& vocab) {
    std::ifstream in(kData + "/tokenizer-golden.json");
    const auto j = nlohmann::json::parse(in);
    std::vector<GoldenCase> cases;
    for (const auto& c : j.at(vocab)) {
        cases.push_back({c.at("text").get<std::string>(),
                         c.at("ids_special").get<std::vector<int32_t>>(),
                         c.at("ids_plain").get<std::vector<int32_t>>()});
    }
    return cases;
}

std::string show(std::string_view s) { return nlohmann::json(s).dump(); }

void expect_golden(const Tokenizer& tok, const std::string& vocab) {
    const auto cases = golden(vocab);
    ASSERT_EQ(cases.size(), 53u);
    for (const GoldenCase& c : cases) {
        EXPECT_EQ(tok.encode(c.text, EncodeMode::Template), c.ids_special) << show(c.text);
        EXPECT_EQ(tok.encode(c.text, EncodeMode::Plain), c.ids_plain) << show(c.text);
    }
}

TEST(Tokenizer, GoldenQwenVocab) { expect_golden(qwen(), "qwen-vocab"); }
TEST(Tokenizer, GoldenSmallVocab) { expect_golden(small(), "small-vocab"); }

TEST(Tokenizer, GoldenDecodeIsNfcText) {
    for (const char* vocab : {"qwen-vocab", "small-vocab"}) {
        const Tokenizer& tok = std::string(vocab) == "qwen-vocab" ? qwen() : small();
        for (const GoldenCase& c : golden(vocab)) {
            // Qwen normalises to NFC, so NFD input comes back composed.
            const std::string expected = unicode::nfc(c.text);
            EXPECT_EQ(tok.decode(c.ids_plain), expected) << show(c.text);
            EXPECT_EQ(tok.decode(c.ids_special), expected) << show(c.text);
            EXPECT_EQ(tok.decode(tok.encode(c.text, EncodeMode::Plain)), expected);
            EXPECT_EQ(tok.decode(tok.encode(c.text, EncodeMode::Template)), expected);
        }
    }
}

TEST(Tokenizer, NfdAndNfcEncodeAlike) {
    const std::string nfd = "caf\x65\xCC\x81 re\xCC\x81sume\xCC\x81";  // e + U+0301
    const std::string composed = "caf\xC3\xA9 r\xC3\xA9sum\xC3\xA9";
    EXPECT_NE(nfd, composed);
    EXPECT_EQ(qwen().encode(nfd, EncodeMode::Plain), qwen().encode(composed, EncodeMode::Plain));
    EXPECT_EQ(qwen().decode(qwen().encode(nfd, EncodeMode::Plain)), composed);
}

// Invalid bytes survive encoding: each becomes its byte token, and everything around it
// tokenizes as it would otherwise.
TEST(Tokenizer, InvalidUtf8RoundTrips) {
    const std::vector<std::string> samples = {
        "\xFF",
        "abc\x80" "def",
        "\xE6\x97",                 // truncated 3-byte sequence
        "\xC0\xAF overlong",
        "\xED\xA0\x80 surrogate",
        "\xF4\x90\x80\x80 > U+10FFFF",
        "caf\xC3",                  // truncated at the end
        "e\xFF\xCC\x81",            // combining mark after an invalid byte
        std::string("nul\0byte", 8),
    };
    for (const Tokenizer* tok : {&qwen(), &small()}) {
        for (const std::string& s : samples) {
            EXPECT_EQ(tok->decode(tok->encode(s, EncodeMode::Plain)), s) << show(s);
            EXPECT_EQ(tok->decode(tok->encode(s, EncodeMode::Template)), s) << show(s);
        }
        const auto ff = tok->encode("\xFF", EncodeMode::Plain);
        ASSERT_EQ(ff.size(), 1u);
        EXPECT_EQ(tok->token_text(ff[0]), "\xC3\xBF");  // 'ÿ' spells byte 0xFF
    }
    // Random bytes: decode(encode(x)) is x with its valid stretches in NFC.
    std::mt19937 rng(7);
    for (int i = 0; i < 300; ++i) {
        std::string s(rng() % 64, '\0');
        for (char& c : s) c = static_cast<char>(rng() % 256);
        EXPECT_EQ(qwen().decode(qwen().encode(s, EncodeMode::Plain)), unicode::nfc(s));
    }
}

TEST(Tokenizer, PlainModeNeverYieldsControlTokens) {
    const Tokenizer& tok = qwen();
    std::string file = "# a file that talks about its model\n";
    for (int32_t id = 0; id < tok.n_vocab(); ++id) {
        if (tok.is_control(id)) {
            file += "x = \"" + std::string(tok.token_text(id)) + "\"\n";
        }
    }
    const auto plain = tok.encode(file, EncodeMode::Plain);
    for (int32_t id : plain) EXPECT_FALSE(tok.is_control(id)) << id;
    EXPECT_EQ(tok.decode(plain), file);

    const auto templ = tok.encode(file, EncodeMode::Template);
    const auto eot = std::count(templ.begin(), templ.end(), tok.special().eos);
    EXPECT_EQ(eot, 1);
    EXPECT_EQ(std::count_if(templ.begin(), templ.end(), [&](int32_t id) {
                  return tok.is_control(id);
              }),
              26);
    EXPECT_EQ(tok.decode(templ), file);
}

TEST(Tokenizer, SpecialTokens) {
    const auto& q = qwen().special();
    EXPECT_EQ(qwen().n_vocab(), 151669);
    EXPECT_EQ(q.bos, 151643);
    EXPECT_EQ(q.eos, 151643);
    EXPECT_EQ(q.pad, 151643);
    EXPECT_EQ(q.eot, 151645);  // no key: found by its text "<|im_end|>"
    EXPECT_EQ(q.fim_prefix, 151659);
    EXPECT_EQ(q.fim_middle, 151660);
    EXPECT_EQ(q.fim_suffix, 151661);
    EXPECT_EQ(q.fim_pad, 151662);
    EXPECT_EQ(q.fim_repo, 151663);
    EXPECT_EQ(q.fim_sep, 151664);
    EXPECT_EQ(qwen().token_text(q.fim_prefix), "<|fim_prefix|>");
    EXPECT_TRUE(qwen().is_control(q.fim_prefix));  // user-defined in this file
    EXPECT_EQ(qwen().token_type(q.fim_prefix), Tokenizer::TokenType::UserDefined);
    EXPECT_EQ(qwen().token_type(q.eos), Tokenizer::TokenType::Control);
    EXPECT_FALSE(qwen().is_control(0));
    EXPECT_FALSE(qwen().add_bos());
    EXPECT_EQ(qwen().pre_tokenizer(), PreTokenizerKind::Qwen2);

    const auto& s = small().special();
    EXPECT_EQ(small().n_vocab(), 2048);
    EXPECT_EQ(s.eos, 2039);
    EXPECT_EQ(s.eot, 2041);
    EXPECT_EQ(s.fim_prefix, 2042);
    EXPECT_EQ(s.fim_middle, 2043);
    EXPECT_EQ(s.fim_suffix, 2044);
    EXPECT_EQ(s.fim_sep, 2047);
    EXPECT_EQ(small().token_type(s.fim_prefix), Tokenizer::TokenType::Control);
}

TEST(Tokenizer, LookupsAndBounds) {
    const Tokenizer& tok = qwen();
    EXPECT_EQ(tok.find_token("<|endoftext|>"), 151643);
    const auto ret = tok.find_token("\xC4\xA0return");  // "Ġreturn"
    ASSERT_TRUE(ret.has_value());
    EXPECT_EQ(tok.token_bytes(*ret), " return");
    EXPECT_EQ(tok.encode(" return", EncodeMode::Plain), std::vector<int32_t>{*ret});
    EXPECT_FALSE(tok.find_token("no such token text").has_value());
    EXPECT_EQ(tok.token_text(-1), "");
    EXPECT_EQ(tok.token_text(tok.n_vocab()), "");
    EXPECT_FALSE(tok.is_control(tok.n_vocab()));
    const std::vector<int32_t> with_bad = {-5, *ret, 1 << 30};
    EXPECT_EQ(tok.decode(with_bad), " return");
    EXPECT_TRUE(tok.encode("", EncodeMode::Template).empty());
}

TEST(Tokenizer, EncodeAppendConcatenatesSegments) {
    const Tokenizer& tok = qwen();
    std::vector<int32_t> ids = {tok.special().fim_prefix};
    tok.encode_append("def f():\n    ", EncodeMode::Plain, ids);
    ids.push_back(tok.special().fim_suffix);
    const auto whole = tok.encode("<|fim_prefix|>def f():\n    <|fim_suffix|>",
                                  EncodeMode::Template);
    EXPECT_EQ(ids, whole);
}

// Long pieces go through the heap-based merge loop; a run of 200k equal letters must
// stay fast and exact (every merge of the run doubles, so the ids repeat).
TEST(Tokenizer, LongPieces) {
    const Tokenizer& tok = qwen();
    const std::string run(200000, 'x');
    const auto ids = tok.encode(run, EncodeMode::Plain);
    EXPECT_EQ(tok.decode(ids), run);
    EXPECT_LT(ids.size(), run.size() / 4);
    const std::string dashes(50000, '-');
    EXPECT_EQ(tok.decode(tok.encode(dashes, EncodeMode::Plain)), dashes);
    const std::string spaces = std::string(30000, ' ') + "x";
    EXPECT_EQ(tok.decode(tok.encode(spaces, EncodeMode::Plain)), spaces);
}

TEST(Tokenizer, ThreadsShareOneTokenizer) {
    const Tokenizer& tok = qwen();
    std::string text;
    for (const GoldenCase& c : golden("qwen-vocab")) text += c.text;
    const auto expected = tok.encode(text, EncodeMode::Template);
    std::vector<std::vector<int32_t>> results(4);
    std::vector<std::thread> threads;
    Tokenizer copy = tok;  // copies share the tables
    for (size_t t = 0; t < results.size(); ++t) {
        threads.emplace_back([&, t] {
            for (int k = 0; k < 20; ++k) results[t] = copy.encode(text, EncodeMode::Template);
        });
    }
    for (auto& th : threads) th.join();
    for (const auto& r : results) EXPECT_EQ(r, expected);
}

// ---- incremental decoding ----------------------------------------------------------

TEST(IncrementalDecoder, HoldsBackSplitCharacters) {
    const Tokenizer& tok = small();
    // The small vocabulary has no CJK tokens: "日本" is six byte tokens, so every
    // character arrives in three pieces.
    const auto ids = tok.encode("\xE6\x97\xA5\xE6\x9C\xAC!", EncodeMode::Plain);
    ASSERT_EQ(ids.size(), 7u);
    Tokenizer::IncrementalDecoder dec(tok);
    std::vector<std::string> outs;
    for (int32_t id : ids) outs.push_back(dec.push(id));
    const std::vector<std::string> expected = {"", "", "\xE6\x97\xA5", "", "", "\xE6\x9C\xAC", "!"};
    EXPECT_EQ(outs, expected);
    EXPECT_EQ(dec.flush(), "");
}

TEST(IncrementalDecoder, StreamsWholeCharactersOnly) {
    for (const Tokenizer* tok : {&qwen(), &small()}) {
        const std::string text =
            "emoji: \xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x92\xBB\xF0\x9F\x9A\x80 "
            "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E \xD0\x9F\xD1\x80\xD0\xB8 x<|im_end|>";
        const auto ids = tok->encode(text, EncodeMode::Template);
        Tokenizer::IncrementalDecoder dec(*tok);
        std::string streamed;
        for (int32_t id : ids) {
            const std::string piece = dec.push(id);
            EXPECT_TRUE(unicode::is_valid_utf8(piece)) << show(piece);
            streamed += piece;
        }
        streamed += dec.flush();
        EXPECT_EQ(streamed, text);
    }
}

TEST(IncrementalDecoder, FlushEmitsIncompleteTailAndBadBytesPassThrough) {
    const Tokenizer& tok = small();
    const auto lead = tok.encode("\xE6", EncodeMode::Plain);
    const auto bad = tok.encode("\xFF", EncodeMode::Plain);
    ASSERT_EQ(lead.size(), 1u);
    ASSERT_EQ(bad.size(), 1u);
    Tokenizer::IncrementalDecoder dec(tok);
    EXPECT_EQ(dec.push(bad[0]), "\xFF");  // can never complete: emitted at once
    EXPECT_EQ(dec.push(lead[0]), "");
    EXPECT_EQ(dec.flush(), "\xE6");
    EXPECT_EQ(dec.flush(), "");
    // A lead byte followed by a byte that cannot continue it is not held back.
    EXPECT_EQ(dec.push(lead[0]), "");
    EXPECT_EQ(dec.push(tok.encode("a", EncodeMode::Plain)[0]), "\xE6" "a");
}

// ---- synthetic vocabularies ---------------------------------------------------------

// Writes a vocabulary-only GGUF v3 file in memory.
class GGUFBuilder {
public:
    GGUFBuilder& str(const std::string& key, const std::string& value) {
        kv(key, GGUFType::STRING);
        put_str(value);
        return *this;
    }
    GGUFBuilder& u32(const std::string& key, uint32_t value) {
        kv(key, GGUFType::UINT32);
        put(value);
        return *this;
    }
    GGUFBuilder& strs(const std::string& key, const std::vector<std::string>& values) {
        kv(key, GGUFType::ARRAY);
        put(static_cast<uint32_t>(GGUFType::STRING));
        put(static_cast<uint64_t>(values.size()));
        for (const auto& v : values) put_str(v);
        return *this;
    }
    GGUFBuilder& i32s(const std::string& key, const std::vector<int32_t>& values) {
        kv(key, GGUFType::ARRAY);
        put(static_cast<uint32_t>(GGUFType::INT32));
        put(static_cast<uint64_t>(values.size()));
        for (int32_t v : values) put(v);
        return *this;
    }
    std::vector<uint8_t> bytes() const {
        std::vector<uint8_t> out;
        const auto append = [&](const auto& v) {
            const auto* p = reinterpret_cast<const uint8_t*>(&v);
            out.insert(out.end(), p, p + sizeof(v));
        };
        append(uint32_t{0x46554747});
        append(uint32_t{3});
        append(uint64_t{0});
        append(n_kv_);
        out.insert(out.end(), body_.begin(), body_.end());
        return out;
    }

private:
    template <class T>
    void put(T v) {
        const auto* p = reinterpret_cast<const uint8_t*>(&v);
        body_.insert(body_.end(), p, p + sizeof(v));
    }
    void put_str(const std::string& s) {
        put(static_cast<uint64_t>(s.size()));
        body_.insert(body_.end(), s.begin(), s.end());
    }
    void kv(const std::string& key, GGUFType type) {
        put_str(key);
        put(static_cast<uint32_t>(type));
        ++n_kv_;
    }
    std::vector<uint8_t> body_;
    uint64_t n_kv_ = 0;
};

// 256 byte tokens, the given merges (their results appended as tokens) and specials.
struct SyntheticVocab {
    std::vector<std::string> tokens;
    std::vector<int32_t> types;
    std::vector<std::string> merges;

    explicit SyntheticVocab(const std::vector<std::string>& merge_list,
                            const std::vector<std::string>& specials = {}) {
        for (int b = 0; b < 256; ++b) {
            tokens.push_back(unicode::bytes_to_byte_level(std::string(1, static_cast<char>(b))));
            types.push_back(1);
        }
        for (const std::string& m : merge_list) {
            // Merges are written in plain text here; spell them in the byte-level alphabet.
            const size_t sp = m.find(' ');
            const std::string l = unicode::bytes_to_byte_level(m.substr(0, sp));
            const std::string r = unicode::bytes_to_byte_level(m.substr(sp + 1));
            merges.push_back(l + " " + r);
            if (std::find(tokens.begin(), tokens.end(), l + r) == tokens.end()) {
                tokens.push_back(l + r);
                types.push_back(1);
            }
        }
        for (const std::string& s : specials) {
            tokens.push_back(s);
            types.push_back(3);
        }
    }

    GGUFBuilder builder(const std::string& pre) const {
        GGUFBuilder b;
        b.str("tokenizer.ggml.model", "gpt2")
            .str("tokenizer.ggml.pre", pre)
            .strs("tokenizer.ggml.tokens", tokens)
            .i32s("tokenizer.ggml.token_type", types)
            .strs("tokenizer.ggml.merges", merges);
        return b;
    }
};

struct Loaded {
    std::vector<uint8_t> bytes;
    std::unique_ptr<GGUFFile> gguf;
};

Expected<Tokenizer> load_synthetic(const GGUFBuilder& b, Loaded& keep) {
    keep.bytes = b.bytes();
    auto gguf = GGUFFile::parse(keep.bytes);
    if (!gguf) return gguf.error();
    keep.gguf = std::move(*gguf);
    return Tokenizer::from_gguf(*keep.gguf);
}

std::vector<std::string> pieces(const Tokenizer& tok, std::string_view text) {
    std::vector<std::string> out;
    for (int32_t id : tok.encode(text, EncodeMode::Plain)) {
        out.emplace_back(tok.token_bytes(id));
    }
    return out;
}

TEST(TokenizerSynthetic, MergesApplyByRankThenLeftmost) {
    // "a a" outranks "aa aa": "aaaaa" -> (aa)(aa)(a) -> (aaaa)(a).
    const SyntheticVocab v({"a a", "aa aa", "b c", "a bc"});
    Loaded keep;
    auto tok = load_synthetic(v.builder("qwen2"), keep);
    ASSERT_TRUE(tok.ok()) << tok.error().message;
    EXPECT_EQ(pieces(*tok, "aaaaa"), (std::vector<std::string>{"aaaa", "a"}));
    EXPECT_EQ(pieces(*tok, "aaa"), (std::vector<std::string>{"aa", "a"}));
    // "a b" is no merge, so "abc" goes through "b c" and then "a bc".
    EXPECT_EQ(pieces(*tok, "abc"), (std::vector<std::string>{"abc"}));
}

// A vocabulary whose merges rebuild every piece of `text` whole, so the ids show where
// the pre-tokenizer split.
std::vector<std::string> split_with(const std::string& pre, const std::string& text,
                                    const std::vector<std::string>& expected_pieces) {
    SyntheticVocab v({});
    for (const std::string& p : expected_pieces) {
        for (size_t k = 1; k < p.size(); ++k) {
            const std::string l = unicode::bytes_to_byte_level(p.substr(0, k));
            const std::string r = unicode::bytes_to_byte_level(p.substr(k, 1));
            v.merges.push_back(l + " " + r);
            if (std::find(v.tokens.begin(), v.tokens.end(), l + r) == v.tokens.end()) {
                v.tokens.push_back(l + r);
                v.types.push_back(1);
            }
        }
    }
    Loaded keep;
    auto tok = load_synthetic(v.builder(pre), keep);
    EXPECT_TRUE(tok.ok()) << tok.error().message;
    if (!tok) return {};
    return pieces(*tok, text);
}

TEST(TokenizerSynthetic, Qwen2Pieces) {
    // A space before a digit stands alone; punctuation takes the newlines after it; a
    // whitespace run before a word leaves its last space to the word; NBSP is
    // whitespace but not [\r\n], so it may lead a word.
    const std::vector<std::string> expect = {"it", "'S", " x", "'ll", " ", "1", "2", "3",
                                             " ++\n\n", "  ", " y", "\t", "\xC2\xA0z", "  "};
    EXPECT_EQ(split_with("qwen2", "it'S x'll 123 ++\n\n   y\t\xC2\xA0z  ", expect), expect);
}

// Where regex engines disagree, Hugging Face's Oniguruma decides: U+FEFF is not \s (so
// it is a symbol), U+0085 is, and case folding lets U+017F match the 's' of "'s".
TEST(TokenizerSynthetic, Qwen2FollowsOnigurumaClasses) {
    // BOM and euro sign are one symbol run (a JS regex would make "\uFEFF", "€x").
    const std::vector<std::string> bom = {"\xEF\xBB\xBF\xE2\x82\xAC", "x"};
    EXPECT_EQ(split_with("qwen2", "\xEF\xBB\xBF\xE2\x82\xACx", bom), bom);
    // Two NELs before a letter: a whitespace run leaving its last character to the word.
    const std::vector<std::string> nel = {"a", "\xC2\x85", "\xC2\x85" "b"};
    EXPECT_EQ(split_with("qwen2", "a\xC2\x85\xC2\x85" "b", nel), nel);
    // The contraction comes first among the alternatives, so "'ſx" gives "'ſ" and "x".
    EXPECT_EQ(split_with("qwen2", "it'\xC5\xBF'\xC5\xBF" "x", {"it", "'\xC5\xBF", "x"}),
              (std::vector<std::string>{"it", "'\xC5\xBF", "'\xC5\xBF", "x"}));
}

TEST(TokenizerSynthetic, LlamaBpeGroupsThreeDigits) {
    const std::vector<std::string> expect = {"123", "456", "7", " x"};
    EXPECT_EQ(split_with("llama-bpe", "1234567 x", expect), expect);
}

TEST(TokenizerSynthetic, DeepseekCoderPieces) {
    // [\r\n] | \s?\p{L}+ | \s?\p{P}+ | CJK runs | \p{N}, each applied to the last's pieces.
    // '=' is a math symbol, not \p{P}, so " = " stays one piece; " 中文" matches
    // \s?\p{L}+ and the CJK stage then isolates "中文" from its space.
    const std::vector<std::string> want = {"int", " x", " = ", "1", "2", ";", "\n", " ",
                                           "\xE4\xB8\xAD\xE6\x96\x87"};
    const auto got = split_with("deepseek-coder", "int x = 12;\n \xE4\xB8\xAD\xE6\x96\x87", want);
    EXPECT_EQ(got, want);
}

TEST(TokenizerSynthetic, TemplateMatchesLongestSpecial) {
    const SyntheticVocab v({}, {"<|a|>", "<|a|><|b|>", "<|b|>"});
    Loaded keep;
    auto tok = load_synthetic(v.builder("qwen2"), keep);
    ASSERT_TRUE(tok.ok()) << tok.error().message;
    const int32_t a = *tok->find_token("<|a|>");
    const int32_t ab = *tok->find_token("<|a|><|b|>");
    const int32_t b = *tok->find_token("<|b|>");
    EXPECT_EQ(tok->encode("<|a|><|b|><|b|><|a|>", EncodeMode::Template),
              (std::vector<int32_t>{ab, b, a}));
    EXPECT_EQ(tok->encode("<|a|>", EncodeMode::Plain).size(), 5u);
}

TEST(TokenizerSynthetic, FimIdsFallBackToTokenText) {
    const SyntheticVocab v({}, {"<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<|endoftext|>"});
    Loaded keep;
    auto tok = load_synthetic(v.builder("qwen2").u32("tokenizer.ggml.eos_token_id", 259), keep);
    ASSERT_TRUE(tok.ok()) << tok.error().message;
    EXPECT_EQ(tok->special().fim_prefix, 256);
    EXPECT_EQ(tok->special().fim_middle, 257);
    EXPECT_EQ(tok->special().fim_suffix, 258);
    EXPECT_EQ(tok->special().eos, 259);
    EXPECT_EQ(tok->special().fim_pad, -1);
    EXPECT_EQ(tok->special().bos, -1);
}

std::string load_error(const GGUFBuilder& b) {
    Loaded keep;
    auto tok = load_synthetic(b, keep);
    return tok.ok() ? std::string("loaded") : tok.error().message;
}

TEST(TokenizerSynthetic, RejectsWhatItCannotTokenize) {
    const SyntheticVocab v({"a b"});
    EXPECT_NE(load_error(v.builder("falcon")).find("'falcon' is not supported"),
              std::string::npos);

    GGUFBuilder spm;
    spm.str("tokenizer.ggml.model", "llama").str("tokenizer.ggml.pre", "default");
    EXPECT_NE(load_error(spm).find("only byte-level BPE"), std::string::npos);

    SyntheticVocab missing_byte({});
    missing_byte.tokens[0x41] = "not-a-byte";
    EXPECT_NE(load_error(missing_byte.builder("qwen2")).find("byte 65"), std::string::npos);

    SyntheticVocab bad_merge({"a b"});
    bad_merge.merges.push_back("a zz");
    EXPECT_NE(load_error(bad_merge.builder("qwen2")).find("tokenizer.ggml.merges[1]"),
              std::string::npos);

    EXPECT_NE(load_error(v.builder("qwen2").u32("tokenizer.ggml.eos_token_id", 100000))
                  .find("tokenizer.ggml.eos_token_id"),
              std::string::npos);

    SyntheticVocab short_types({});
    short_types.types.pop_back();
    EXPECT_NE(load_error(short_types.builder("qwen2")).find("token_type"), std::string::npos);
}

}  // namespace
}  // namespace hearth
