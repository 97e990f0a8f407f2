#include "tokenizer.h"

#include <xxhash.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <functional>
#include <unordered_map>
#include <utility>

#include "unicode.h"

namespace hearth {

namespace {

using unicode::kLetter;
using unicode::kNumber;
using unicode::kPunctuation;
using unicode::kWhitespace;

constexpr uint32_t kNoMerge = ~uint32_t{0};  // rank of "no merge"

// (left id, right id) -> (rank, merged id), open addressing with linear probing. The BPE
// inner loop does one lookup per candidate pair, so this is the hottest table.
class MergeTable {
public:
    struct Slot {
        uint64_t key = kEmpty;
        uint32_t rank = 0;
        int32_t result = -1;
    };

    void reserve(size_t n) {
        size_t cap = 16;
        while (cap < n * 2) cap *= 2;
        slots_.assign(cap, Slot{});
        shift_ = 64 - std::countr_zero(cap);
    }

    // Later duplicates replace earlier ones, as Hugging Face builds its merge map.
    void insert_or_assign(int32_t left, int32_t right, uint32_t rank, int32_t result) {
        const uint64_t k = key(left, right);
        for (size_t i = index(k);; i = (i + 1) & (slots_.size() - 1)) {
            Slot& s = slots_[i];
            if (s.key == kEmpty || s.key == k) {
                s = Slot{k, rank, result};
                return;
            }
        }
    }

    const Slot* find(int32_t left, int32_t right) const {
        const uint64_t k = key(left, right);
        for (size_t i = index(k);; i = (i + 1) & (slots_.size() - 1)) {
            const Slot& s = slots_[i];
            if (s.key == k) return &s;
            if (s.key == kEmpty) return nullptr;
        }
    }

private:
    // Token ids are non-negative int32, so no real key has all bits set.
    static constexpr uint64_t kEmpty = ~uint64_t{0};
    static uint64_t key(int32_t a, int32_t b) {
        return (uint64_t{static_cast<uint32_t>(a)} << 32) | static_cast<uint32_t>(b);
    }
    size_t index(uint64_t k) const { return (k * 0x9E3779B97F4A7C15ull) >> shift_; }

    std::vector<Slot> slots_;
    int shift_ = 60;
};

}  // namespace

struct TokenizerData {
    PreTokenizerKind pre = PreTokenizerKind::Qwen2;
    bool nfc = false;
    bool ignore_merges = false;
    bool add_bos = false;

    // Token i's GGUF text is text_arena[text_off[i], text_off[i+1]); likewise its bytes.
    std::string text_arena;
    std::string bytes_arena;
    std::vector<uint32_t> text_off;
    std::vector<uint32_t> bytes_off;
    std::vector<Tokenizer::TokenType> types;

    std::unordered_map<std::string_view, int32_t> by_text;   // views into text_arena
    std::unordered_map<std::string_view, int32_t> by_bytes;  // normal tokens; ignore_merges
    std::array<int32_t, 256> byte_token{};
    MergeTable merges;
    // Merges of two single-byte tokens, indexed by (first byte << 8 | second byte): the
    // first merges of every piece, looked up in a table small enough to stay in cache.
    struct PairMerge {
        uint32_t rank = kNoMerge;
        int32_t result = -1;
    };
    std::vector<PairMerge> byte_pairs;

    // Control and user-defined tokens for Template mode, grouped by first byte (the
    // group of byte b is specials[special_begin[b], special_begin[b+1])), longest first.
    struct Special {
        std::string_view text;
        int32_t id;
    };
    std::vector<Special> specials;
    std::array<uint32_t, 257> special_begin{};

    Tokenizer::SpecialTokens special;

    int32_t n_vocab() const { return static_cast<int32_t>(types.size()); }
    std::string_view text(int32_t id) const {
        return std::string_view(text_arena).substr(text_off[id], text_off[id + 1] - text_off[id]);
    }
    std::string_view bytes(int32_t id) const {
        return std::string_view(bytes_arena)
            .substr(bytes_off[id], bytes_off[id + 1] - bytes_off[id]);
    }
};

namespace {

// ---- pre-tokenizers --------------------------------------------------------------

struct Ch {
    uint32_t len;
    uint8_t cls;
    char32_t cp;
};

const std::array<uint8_t, 128> kAsciiClass = [] {
    std::array<uint8_t, 128> t{};
    for (char32_t c = 0; c < 128; ++c) t[c] = unicode::char_class(c);
    return t;
}();

// The character at s[i]. An invalid byte is one character with no class, which the
// regexes treat like the U+FFFD it stands for (a symbol).
inline Ch peek(std::string_view s, size_t i) {
    const auto b = static_cast<uint8_t>(s[i]);
    if (b < 0x80) return {1, kAsciiClass[b], b};
    const unicode::DecodedChar d = unicode::decode_utf8(s, i);
    if (!d.valid) return {1, 0, unicode::kReplacementChar};
    return {d.len, unicode::char_class(d.cp), d.cp};
}

inline bool is_crlf(char32_t cp) { return cp == '\r' || cp == '\n'; }

// End of the run of characters of class `cls` starting at i.
inline size_t scan_class(std::string_view s, size_t i, uint8_t cls) {
    while (i < s.size()) {
        const Ch c = peek(s, i);
        if (!(c.cls & cls)) break;
        i += c.len;
    }
    return i;
}

// (?i:'s|'t|'re|'ve|'m|'ll|'d) with the apostrophe already matched; p is just after it.
// Returns the end of the match or 0. Case-insensitive matching uses Unicode simple case
// folding, under which U+017F LATIN SMALL LETTER LONG S also matches 's'.
inline size_t match_contraction(std::string_view s, size_t p) {
    const size_t n = s.size();
    if (p >= n) return 0;
    const char c = static_cast<char>(s[p] | 0x20);  // ASCII lower case; others never match
    if (c == 's' || c == 't' || c == 'm' || c == 'd') return p + 1;
    if (p + 1 < n) {
        const char c2 = static_cast<char>(s[p + 1] | 0x20);
        if ((c == 'r' && c2 == 'e') || (c == 'v' && c2 == 'e') || (c == 'l' && c2 == 'l')) {
            return p + 2;
        }
        if (s[p] == '\xC5' && s[p + 1] == '\xBF') return p + 2;  // U+017F
    }
    return 0;
}

// The GPT-2-style split shared by Qwen2 (max_digits 1) and Llama 3 (max_digits 3):
//
//   (?i:'s|'t|'re|'ve|'m|'ll|'d) | [^\r\n\p{L}\p{N}]?\p{L}+ | \p{N}{1,max_digits}
//   | ?[^\s\p{L}\p{N}]+[\r\n]* | \s*[\r\n]+ | \s+(?!\S) | \s+
//
// Alternatives are tried in order at each position and the first that matches is taken
// (backtracking semantics, as Oniguruma runs it for Hugging Face). Every character is
// matched by some alternative, so the pieces cover the text.
template <class Emit>
void split_gpt2(std::string_view s, int max_digits, Emit&& emit) {
    const size_t n = s.size();
    size_t i = 0;
    while (i < n) {
        const Ch c0 = peek(s, i);
        size_t end = 0;
        if (c0.cp == '\'') end = match_contraction(s, i + 1);
        if (end == 0) {
            if (c0.cls & kLetter) {
                end = scan_class(s, i + c0.len, kLetter);
            } else if (!is_crlf(c0.cp) && !(c0.cls & kNumber) && i + c0.len < n) {
                const Ch c1 = peek(s, i + c0.len);
                if (c1.cls & kLetter) end = scan_class(s, i + c0.len + c1.len, kLetter);
            }
        }
        if (end == 0 && (c0.cls & kNumber)) {
            end = i + c0.len;
            for (int k = 1; k < max_digits && end < n; ++k) {
                const Ch c = peek(s, end);
                if (!(c.cls & kNumber)) break;
                end += c.len;
            }
        }
        if (end == 0) {
            // ' ?[^\s\p{L}\p{N}]+[\r\n]*': punctuation and symbols.
            const size_t p = c0.cp == ' ' ? i + 1 : i;
            size_t q = p;
            while (q < n) {
                const Ch c = peek(s, q);
                if (c.cls & (kLetter | kNumber | kWhitespace)) break;
                q += c.len;
            }
            if (q > p) {
                while (q < n && (s[q] == '\r' || s[q] == '\n')) ++q;
                end = q;
            }
        }
        if (end == 0) {
            // c0 is whitespace. Over the whitespace run [i, j):
            //   \s*[\r\n]+  backtracks to end just after the run's last CR/LF;
            //   \s+(?!\S)   takes the run at the end of the text, or else all of it but
            //               its last character (which then starts the next piece);
            //   \s+         a single whitespace character before a non-space.
            size_t j = i;
            size_t last_start = i;
            size_t after_newline = 0;
            while (j < n) {
                const Ch c = peek(s, j);
                if (!(c.cls & kWhitespace)) break;
                last_start = j;
                j += c.len;
                if (is_crlf(c.cp)) after_newline = j;
            }
            if (after_newline != 0) {
                end = after_newline;
            } else if (j == n || last_start == i) {
                end = j;
            } else {
                end = last_start;
            }
        }
        emit(s.substr(i, end - i));
        i = end;
    }
}

// DeepSeek-Coder: a sequence of Split pre-tokenizers (each isolating its matches, the
// text between matches kept as pieces too), each applied to every piece of the last:
//   [\r\n]   \s?\p{L}+   \s?\p{P}+   [一-龥ࠀ-一가-퟿]+   \p{N}
inline bool in_deepseek_cjk(char32_t cp) {
    return (cp >= 0x4E00 && cp <= 0x9FA5) || (cp >= 0x0800 && cp <= 0x4E00) ||
           (cp >= 0xAC00 && cp <= 0xD7FF);
}

inline size_t match_deepseek_stage(int stage, std::string_view s, size_t i) {
    const Ch c0 = peek(s, i);
    switch (stage) {
        case 0:
            return is_crlf(c0.cp) ? i + 1 : 0;
        case 1:
        case 2: {
            const uint8_t cls = stage == 1 ? kLetter : kPunctuation;
            if (c0.cls & cls) return scan_class(s, i + c0.len, cls);
            if ((c0.cls & kWhitespace) && i + c0.len < s.size()) {
                const Ch c1 = peek(s, i + c0.len);
                if (c1.cls & cls) return scan_class(s, i + c0.len + c1.len, cls);
            }
            return 0;
        }
        case 3: {
            size_t j = i;
            while (j < s.size()) {
                const Ch c = peek(s, j);
                if (!in_deepseek_cjk(c.cp)) break;
                j += c.len;
            }
            return j > i ? j : 0;
        }
        default:
            return (c0.cls & kNumber) ? i + c0.len : 0;
    }
}

template <class Emit>
void split_deepseek(std::string_view s, int stage, Emit& emit) {
    constexpr int kStages = 5;
    if (stage == kStages) {
        emit(s);
        return;
    }
    size_t gap = 0;
    size_t i = 0;
    while (i < s.size()) {
        const size_t end = match_deepseek_stage(stage, s, i);
        if (end == 0) {
            i += peek(s, i).len;
            continue;
        }
        if (gap < i) split_deepseek(s.substr(gap, i - gap), stage + 1, emit);
        split_deepseek(s.substr(i, end - i), stage + 1, emit);
        i = gap = end;
    }
    if (gap < s.size()) split_deepseek(s.substr(gap), stage + 1, emit);
}

// ---- per-call state --------------------------------------------------------------

// piece bytes -> ids for one encode call. Keys and ids are copied into arenas, so the
// cache does not depend on the lifetime of the text (normalised stretches are temporary).
class PieceCache {
public:
    PieceCache() { slots_.resize(1024); }

    // The cached ids of `piece`, or false.
    bool lookup(std::string_view piece, uint64_t hash, std::vector<int32_t>& out) const {
        for (size_t i = hash & (slots_.size() - 1);; i = (i + 1) & (slots_.size() - 1)) {
            const Slot& s = slots_[i];
            if (s.key_len == kEmpty) return false;
            if (s.hash == hash && s.key_len == piece.size() &&
                std::memcmp(keys_.data() + s.key_off, piece.data(), piece.size()) == 0) {
                out.insert(out.end(), ids_.begin() + s.ids_off,
                           ids_.begin() + s.ids_off + s.ids_len);
                return true;
            }
        }
    }

    void insert(std::string_view piece, uint64_t hash, std::span<const int32_t> ids) {
        if (used_ >= kMaxEntries) return;
        if ((used_ + 1) * 2 > slots_.size()) grow();
        place(Slot{hash, static_cast<uint32_t>(keys_.size()), static_cast<uint32_t>(piece.size()),
                   static_cast<uint32_t>(ids_.size()), static_cast<uint32_t>(ids.size())});
        keys_.append(piece);
        ids_.insert(ids_.end(), ids.begin(), ids.end());
        ++used_;
    }

private:
    static constexpr uint32_t kEmpty = ~uint32_t{0};
    // Bounds the memory of one call on huge inputs of mostly distinct pieces.
    static constexpr size_t kMaxEntries = 1u << 20;

    struct Slot {
        uint64_t hash = 0;
        uint32_t key_off = 0;
        uint32_t key_len = kEmpty;
        uint32_t ids_off = 0;
        uint32_t ids_len = 0;
    };

    void place(const Slot& slot) {
        size_t i = slot.hash & (slots_.size() - 1);
        while (slots_[i].key_len != kEmpty) i = (i + 1) & (slots_.size() - 1);
        slots_[i] = slot;
    }

    void grow() {
        std::vector<Slot> old(slots_.size() * 2);
        old.swap(slots_);
        for (const Slot& s : old) {
            if (s.key_len != kEmpty) place(s);
        }
    }

    std::vector<Slot> slots_;
    std::string keys_;
    std::vector<int32_t> ids_;
    size_t used_ = 0;
};

struct Symbol {
    int32_t id;    // -1 once merged into its left neighbour
    int32_t prev;  // -1 at the start
    int32_t next;  // n at the end
    // The merge of this symbol with its right neighbour as they stand now (rank
    // kNoMerge if none); refreshed whenever either side changes.
    uint32_t rank;
    int32_t result;
};

struct EncodeState {
    PieceCache cache;
    std::vector<Symbol> symbols;
    std::vector<uint64_t> heap;  // (rank << 32 | position), a min-heap
};

// Byte-level BPE of one piece, appending its ids.
void bpe(const TokenizerData& d, std::string_view piece, EncodeState& st,
         std::vector<int32_t>& out) {
    const auto n = static_cast<int32_t>(piece.size());
    if (d.ignore_merges) {
        if (auto it = d.by_bytes.find(piece); it != d.by_bytes.end()) {
            out.push_back(it->second);
            return;
        }
    }
    auto& sym = st.symbols;
    sym.resize(piece.size());
    for (int32_t i = 0; i < n; ++i) {
        sym[i] = Symbol{d.byte_token[static_cast<uint8_t>(piece[i])], i - 1, i + 1, kNoMerge, -1};
    }
    auto& heap = st.heap;
    heap.clear();
    // Looks up the pair at `left`, records it in the symbol and queues it.
    const auto update_pair = [&](int32_t left) -> bool {
        Symbol& s = sym[left];
        s.rank = kNoMerge;
        const int32_t right = s.next;
        if (right >= n) return false;
        // A symbol spans the bytes from its position to the next symbol's.
        if (right == left + 1 && sym[right].next == right + 1) {
            const auto& pm = d.byte_pairs[(static_cast<uint8_t>(piece[left]) << 8) |
                                          static_cast<uint8_t>(piece[right])];
            s.rank = pm.rank;
            s.result = pm.result;
        } else if (const MergeTable::Slot* m = d.merges.find(s.id, sym[right].id)) {
            s.rank = m->rank;
            s.result = m->result;
        }
        if (s.rank == kNoMerge) return false;
        heap.push_back((uint64_t{s.rank} << 32) | static_cast<uint32_t>(left));
        return true;
    };
    for (int32_t i = 0; i + 1 < n; ++i) update_pair(i);
    std::make_heap(heap.begin(), heap.end(), std::greater<>());

    while (!heap.empty()) {
        std::pop_heap(heap.begin(), heap.end(), std::greater<>());
        const uint64_t top = heap.back();
        heap.pop_back();
        const auto rank = static_cast<uint32_t>(top >> 32);
        const auto left = static_cast<int32_t>(top & 0xFFFFFFFFu);
        // Entries go stale when a neighbour merges first. A merge rank names one pair, so
        // an entry whose rank is still the symbol's current pair rank is current.
        Symbol& s = sym[left];
        if (s.id < 0 || s.rank != rank) continue;
        const int32_t right = s.next;
        s.id = s.result;
        sym[right].id = -1;
        s.next = sym[right].next;
        if (s.next < n) sym[s.next].prev = left;
        if (s.prev >= 0 && update_pair(s.prev)) {
            std::push_heap(heap.begin(), heap.end(), std::greater<>());
        }
        if (update_pair(left)) std::push_heap(heap.begin(), heap.end(), std::greater<>());
    }
    for (int32_t i = 0; i < n; i = sym[i].next) out.push_back(sym[i].id);
}

void encode_piece(const TokenizerData& d, std::string_view piece, EncodeState& st,
                  std::vector<int32_t>& out) {
    if (piece.size() == 1) {
        out.push_back(d.byte_token[static_cast<uint8_t>(piece[0])]);
        return;
    }
    // Long pieces (runs of spaces, rulers, minified code) rarely repeat; not caching them
    // also bounds the cache's memory.
    constexpr size_t kMaxCachedPiece = 256;
    // Symbol positions are int32; only a single piece of 1 GiB or more is cut, which no
    // real text has.
    constexpr size_t kMaxPiece = size_t{1} << 30;
    if (piece.size() > kMaxCachedPiece) {
        for (size_t off = 0; off < piece.size(); off += kMaxPiece) {
            bpe(d, piece.substr(off, kMaxPiece), st, out);
        }
        return;
    }
    const uint64_t hash = XXH3_64bits(piece.data(), piece.size());
    if (st.cache.lookup(piece, hash, out)) return;
    const size_t start = out.size();
    bpe(d, piece, st, out);
    st.cache.insert(piece, hash, std::span<const int32_t>(out).subspan(start));
}

bool has_non_ascii(std::string_view s) {
    for (char c : s) {
        if (static_cast<uint8_t>(c) >= 0x80) return true;
    }
    return false;
}

// Normalises and pre-tokenizes one stretch of ordinary text, then BPE-encodes it.
void encode_text(const TokenizerData& d, std::string_view text, EncodeState& st,
                 std::vector<int32_t>& out) {
    if (text.empty()) return;
    std::string normalized;
    if (d.nfc && has_non_ascii(text)) {
        normalized = unicode::nfc(text);
        text = normalized;
    }
    auto emit = [&](std::string_view piece) { encode_piece(d, piece, st, out); };
    switch (d.pre) {
        case PreTokenizerKind::Qwen2: split_gpt2(text, 1, emit); break;
        case PreTokenizerKind::LlamaBpe: split_gpt2(text, 3, emit); break;
        case PreTokenizerKind::DeepseekCoder: split_deepseek(text, 0, emit); break;
    }
}

// The special token that starts at s[i], longest first; nullptr if none.
const TokenizerData::Special* match_special(const TokenizerData& d, std::string_view s,
                                            size_t i) {
    const auto b = static_cast<uint8_t>(s[i]);
    const std::string_view rest = s.substr(i);
    for (uint32_t k = d.special_begin[b]; k < d.special_begin[b + 1]; ++k) {
        if (rest.starts_with(d.specials[k].text)) return &d.specials[k];
    }
    return nullptr;
}

// ---- loading ---------------------------------------------------------------------

struct PreConfig {
    std::string_view name;
    PreTokenizerKind kind;
    bool nfc;
    bool ignore_merges;
};

// What each supported tokenizer.json specifies besides its regex.
constexpr std::array<PreConfig, 3> kPreConfigs = {{
    {"qwen2", PreTokenizerKind::Qwen2, true, false},
    {"llama-bpe", PreTokenizerKind::LlamaBpe, false, true},
    {"deepseek-coder", PreTokenizerKind::DeepseekCoder, false, false},
}};

std::string quoted(std::string_view s) {
    std::string out;
    out.reserve(s.size() + 2);
    out.append(1, '\'').append(s).append(1, '\'');
    return out;
}

// The bytes a token decodes to. Characters outside the byte-level alphabet (possible
// only in special tokens) stand for their own UTF-8, as Hugging Face's ByteLevel decoder
// treats them.
std::string token_to_bytes(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size();) {
        const unicode::DecodedChar c = unicode::decode_utf8(text, i);
        const auto b = c.valid ? unicode::unicode_to_byte(c.cp) : std::nullopt;
        if (b) {
            out.push_back(static_cast<char>(*b));
        } else {
            out.append(text.substr(i, c.len));
        }
        i += c.len;
    }
    return out;
}

Expected<int32_t> optional_id(const GGUFFile& gguf, std::string_view key, int32_t n_vocab) {
    const GGUFValue* v = gguf.find(key);
    if (v == nullptr) return int32_t{-1};
    const std::optional<int64_t> id = v->as_int();
    if (!id || *id < 0 || *id >= n_vocab) {
        return make_error(std::string(key) + ": not a token id of the vocabulary of " +
                          std::to_string(n_vocab) + " tokens");
    }
    return static_cast<int32_t>(*id);
}

}  // namespace

Tokenizer::Tokenizer(std::shared_ptr<const TokenizerData> data) : data_(std::move(data)) {}

Expected<Tokenizer> Tokenizer::from_gguf(const GGUFFile& gguf) {
    auto d = std::make_shared<TokenizerData>();

    const auto model = gguf.get_string("tokenizer.ggml.model");
    if (!model) return make_error("tokenizer.ggml.model is missing");
    if (*model != "gpt2") {
        return make_error("tokenizer.ggml.model is " + quoted(*model) +
                          ": only byte-level BPE ('gpt2') is supported");
    }
    const auto pre = gguf.get_string("tokenizer.ggml.pre");
    if (!pre) return make_error("tokenizer.ggml.pre is missing (the pre-tokenizer to use)");
    const PreConfig* config = nullptr;
    for (const PreConfig& c : kPreConfigs) {
        if (c.name == *pre) config = &c;
    }
    if (config == nullptr) {
        return make_error("tokenizer.ggml.pre " + quoted(*pre) +
                          " is not supported (supported: qwen2, llama-bpe, deepseek-coder)");
    }
    d->pre = config->kind;
    d->nfc = config->nfc;
    d->ignore_merges = config->ignore_merges;
    d->add_bos = gguf.get_bool("tokenizer.ggml.add_bos_token").value_or(false);

    // Tokens and their types.
    const GGUFArray* tokens = gguf.get_array("tokenizer.ggml.tokens");
    if (tokens == nullptr) return make_error("tokenizer.ggml.tokens is missing");
    if (tokens->items.empty() || tokens->items.size() > (1u << 30)) {
        return make_error("tokenizer.ggml.tokens: bad token count " +
                          std::to_string(tokens->items.size()));
    }
    const auto n = static_cast<int32_t>(tokens->items.size());
    const GGUFArray* types = gguf.get_array("tokenizer.ggml.token_type");
    if (types != nullptr && types->items.size() != tokens->items.size()) {
        return make_error("tokenizer.ggml.token_type has " + std::to_string(types->items.size()) +
                          " entries for " + std::to_string(n) + " tokens");
    }
    d->types.resize(static_cast<size_t>(n), TokenType::Normal);
    d->text_off.reserve(static_cast<size_t>(n) + 1);
    d->bytes_off.reserve(static_cast<size_t>(n) + 1);
    d->text_off.push_back(0);
    d->bytes_off.push_back(0);
    for (int32_t id = 0; id < n; ++id) {
        const auto text = tokens->items[static_cast<size_t>(id)].as_string();
        if (!text) {
            return make_error("tokenizer.ggml.tokens[" + std::to_string(id) + "] is not a string");
        }
        if (types != nullptr) {
            const auto t = types->items[static_cast<size_t>(id)].as_int();
            if (!t || *t < 1 || *t > 6) {
                return make_error("tokenizer.ggml.token_type[" + std::to_string(id) +
                                  "] is not a token type (1..6)");
            }
            d->types[static_cast<size_t>(id)] = static_cast<TokenType>(*t);
        }
        const TokenType type = d->types[static_cast<size_t>(id)];
        const bool special = type == TokenType::Control || type == TokenType::UserDefined;
        d->text_arena.append(*text);
        d->bytes_arena.append(special ? std::string(*text) : token_to_bytes(*text));
        if (d->text_arena.size() > UINT32_MAX || d->bytes_arena.size() > UINT32_MAX) {
            return make_error("tokenizer.ggml.tokens: token texts exceed 4 GiB");
        }
        d->text_off.push_back(static_cast<uint32_t>(d->text_arena.size()));
        d->bytes_off.push_back(static_cast<uint32_t>(d->bytes_arena.size()));
    }
    // The arenas are complete: views into them are stable from here on.
    d->by_text.reserve(static_cast<size_t>(n));
    for (int32_t id = 0; id < n; ++id) {
        d->by_text.emplace(d->text(id), id);
        const TokenType type = d->types[static_cast<size_t>(id)];
        if (d->ignore_merges && type == TokenType::Normal) d->by_bytes.emplace(d->bytes(id), id);
        if ((type == TokenType::Control || type == TokenType::UserDefined) &&
            !d->text(id).empty()) {
            d->specials.push_back({d->text(id), id});
        }
    }

    // Every byte must have a token, or some text could not be encoded at all.
    for (int b = 0; b < 256; ++b) {
        std::string spelled;
        unicode::append_utf8(spelled, unicode::byte_to_unicode(static_cast<uint8_t>(b)));
        const auto it = d->by_text.find(spelled);
        if (it == d->by_text.end()) {
            return make_error("tokenizer.ggml.tokens lacks the token for byte " +
                              std::to_string(b) + " (" + quoted(spelled) + ")");
        }
        d->byte_token[static_cast<size_t>(b)] = it->second;
    }

    // Merges: the rank of a merge is its index.
    const GGUFArray* merges = gguf.get_array("tokenizer.ggml.merges");
    if (merges == nullptr) return make_error("tokenizer.ggml.merges is missing");
    if (merges->items.size() >= INT32_MAX) return make_error("tokenizer.ggml.merges: too many");
    d->merges.reserve(merges->items.size());
    std::string joined;
    for (size_t rank = 0; rank < merges->items.size(); ++rank) {
        const auto where = [&] { return "tokenizer.ggml.merges[" + std::to_string(rank) + "] "; };
        const auto merge = merges->items[rank].as_string();
        if (!merge) return make_error(where() + "is not a string");
        // Byte-level token texts never contain a space (it is spelled 'Ġ').
        const size_t space = merge->find(' ');
        if (space == std::string_view::npos || merge->find(' ', space + 1) != merge->npos) {
            return make_error(where() + quoted(*merge) + " is not 'left right'");
        }
        const std::string_view left = merge->substr(0, space);
        const std::string_view right = merge->substr(space + 1);
        joined.assign(left).append(right);
        const auto l = d->by_text.find(left);
        const auto r = d->by_text.find(right);
        const auto m = d->by_text.find(joined);
        if (l == d->by_text.end() || r == d->by_text.end() || m == d->by_text.end()) {
            return make_error(where() + quoted(*merge) +
                              " names a token missing from the vocabulary");
        }
        d->merges.insert_or_assign(l->second, r->second, static_cast<uint32_t>(rank), m->second);
    }
    d->byte_pairs.resize(256 * 256);
    for (size_t pair = 0; pair < d->byte_pairs.size(); ++pair) {
        if (const auto* m = d->merges.find(d->byte_token[pair >> 8], d->byte_token[pair & 0xFF])) {
            d->byte_pairs[pair] = {m->rank, m->result};
        }
    }

    // Special tokens for Template mode: grouped by first byte, longest first, so the
    // first match at a position is the leftmost-longest match Hugging Face makes.
    std::sort(d->specials.begin(), d->specials.end(), [](const auto& a, const auto& b) {
        if (a.text[0] != b.text[0]) {
            return static_cast<uint8_t>(a.text[0]) < static_cast<uint8_t>(b.text[0]);
        }
        if (a.text.size() != b.text.size()) return a.text.size() > b.text.size();
        return a.id < b.id;
    });
    for (int b = 0, k = 0; b <= 256; ++b) {
        while (k < static_cast<int>(d->specials.size()) &&
               static_cast<uint8_t>(d->specials[static_cast<size_t>(k)].text[0]) < b) {
            ++k;
        }
        d->special_begin[static_cast<size_t>(b)] = static_cast<uint32_t>(k);
    }

    // Special ids: the GGUF keys, else the token texts the model families use.
    const auto by_names = [&](std::initializer_list<std::string_view> names) -> int32_t {
        for (std::string_view name : names) {
            if (auto it = d->by_text.find(name); it != d->by_text.end()) return it->second;
        }
        return -1;
    };
    const auto resolve = [&](int32_t& slot, std::string_view key,
                             std::initializer_list<std::string_view> names) -> Status {
        Expected<int32_t> id = optional_id(gguf, key, n);
        if (!id) return id.error();
        slot = *id >= 0 ? *id : by_names(names);
        return Status::success();
    };
    SpecialTokens& sp = d->special;
    HEARTH_TRY(resolve(sp.bos, "tokenizer.ggml.bos_token_id", {}));
    HEARTH_TRY(resolve(sp.eos, "tokenizer.ggml.eos_token_id", {}));
    HEARTH_TRY(resolve(sp.eot, "tokenizer.ggml.eot_token_id", {"<|im_end|>", "<|eot_id|>"}));
    HEARTH_TRY(resolve(sp.pad, "tokenizer.ggml.padding_token_id", {}));
    HEARTH_TRY(resolve(sp.fim_prefix, "tokenizer.ggml.fim_pre_token_id",
                       {"<|fim_prefix|>", "<fim_prefix>", "<｜fim▁begin｜>"}));
    HEARTH_TRY(resolve(sp.fim_suffix, "tokenizer.ggml.fim_suf_token_id",
                       {"<|fim_suffix|>", "<fim_suffix>", "<｜fim▁hole｜>"}));
    HEARTH_TRY(resolve(sp.fim_middle, "tokenizer.ggml.fim_mid_token_id",
                       {"<|fim_middle|>", "<fim_middle>", "<｜fim▁end｜>"}));
    HEARTH_TRY(resolve(sp.fim_pad, "tokenizer.ggml.fim_pad_token_id",
                       {"<|fim_pad|>", "<fim_pad>"}));
    HEARTH_TRY(resolve(sp.fim_repo, "tokenizer.ggml.fim_rep_token_id",
                       {"<|repo_name|>", "<reponame>"}));
    HEARTH_TRY(resolve(sp.fim_sep, "tokenizer.ggml.fim_sep_token_id",
                       {"<|file_sep|>", "<file_sep>"}));

    return Tokenizer(std::move(d));
}

void Tokenizer::encode_append(std::string_view text, EncodeMode mode,
                              std::vector<int32_t>& out) const {
    const TokenizerData& d = *data_;
    EncodeState st;
    if (mode == EncodeMode::Plain || d.specials.empty()) {
        encode_text(d, text, st, out);
        return;
    }
    size_t segment = 0;
    for (size_t i = 0; i < text.size();) {
        const auto b = static_cast<uint8_t>(text[i]);
        if (d.special_begin[b] == d.special_begin[b + 1]) {
            ++i;
            continue;
        }
        const TokenizerData::Special* sp = match_special(d, text, i);
        if (sp == nullptr) {
            ++i;
            continue;
        }
        encode_text(d, text.substr(segment, i - segment), st, out);
        out.push_back(sp->id);
        i += sp->text.size();
        segment = i;
    }
    encode_text(d, text.substr(segment), st, out);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, EncodeMode mode) const {
    std::vector<int32_t> out;
    out.reserve(text.size() / 3 + 4);
    encode_append(text, mode, out);
    return out;
}

std::string Tokenizer::decode(std::span<const int32_t> ids) const {
    std::string out;
    for (int32_t id : ids) out.append(token_bytes(id));
    return out;
}

std::string_view Tokenizer::token_text(int32_t id) const {
    if (id < 0 || id >= data_->n_vocab()) return {};
    return data_->text(id);
}

std::string_view Tokenizer::token_bytes(int32_t id) const {
    if (id < 0 || id >= data_->n_vocab()) return {};
    return data_->bytes(id);
}

int32_t Tokenizer::n_vocab() const { return data_->n_vocab(); }

Tokenizer::TokenType Tokenizer::token_type(int32_t id) const {
    if (id < 0 || id >= data_->n_vocab()) return TokenType::Unused;
    return data_->types[static_cast<size_t>(id)];
}

bool Tokenizer::is_control(int32_t id) const {
    const TokenType t = token_type(id);
    return t == TokenType::Control || t == TokenType::UserDefined;
}

std::optional<int32_t> Tokenizer::find_token(std::string_view text) const {
    const auto it = data_->by_text.find(text);
    if (it == data_->by_text.end()) return std::nullopt;
    return it->second;
}

const Tokenizer::SpecialTokens& Tokenizer::special() const { return data_->special; }
PreTokenizerKind Tokenizer::pre_tokenizer() const { return data_->pre; }
bool Tokenizer::add_bos() const { return data_->add_bos; }

// ---- IncrementalDecoder ----------------------------------------------------------

Tokenizer::IncrementalDecoder::IncrementalDecoder(const Tokenizer& tokenizer)
    : data_(tokenizer.data_) {}

std::string Tokenizer::IncrementalDecoder::push(int32_t id) {
    if (id >= 0 && id < data_->n_vocab()) pending_.append(data_->bytes(id));
    const size_t keep = unicode::incomplete_utf8_tail(pending_);
    std::string ready = pending_.substr(0, pending_.size() - keep);
    pending_.erase(0, pending_.size() - keep);
    return ready;
}

std::string Tokenizer::IncrementalDecoder::flush() {
    std::string rest;
    rest.swap(pending_);
    return rest;
}

}  // namespace hearth
