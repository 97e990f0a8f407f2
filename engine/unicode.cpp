#include "unicode.h"

#include <utf8proc.h>

#include <array>
#include <cstdlib>
#include <memory>
#include <vector>

namespace hearth::unicode {

static_assert(static_cast<int>(Category::Lu) == UTF8PROC_CATEGORY_LU);
static_assert(static_cast<int>(Category::Nd) == UTF8PROC_CATEGORY_ND);
static_assert(static_cast<int>(Category::Po) == UTF8PROC_CATEGORY_PO);
static_assert(static_cast<int>(Category::Co) == UTF8PROC_CATEGORY_CO);

// ---- UTF-8 -----------------------------------------------------------------------

namespace {

bool is_cont(uint8_t b) { return (b & 0xC0) == 0x80; }

// Sequence length announced by a lead byte, or 0 for a byte that cannot start one
// (continuation bytes, the overlong leads C0/C1, and F5..FF).
uint32_t lead_length(uint8_t b) {
    if (b < 0x80) return 1;
    if (b < 0xC2) return 0;
    if (b < 0xE0) return 2;
    if (b < 0xF0) return 3;
    if (b < 0xF5) return 4;
    return 0;
}

// Whether `second` may follow `lead`; this is where overlongs, surrogates and values
// above U+10FFFF are excluded.
bool second_byte_ok(uint8_t lead, uint8_t second) {
    switch (lead) {
        case 0xE0: return second >= 0xA0 && second <= 0xBF;
        case 0xED: return second >= 0x80 && second <= 0x9F;
        case 0xF0: return second >= 0x90 && second <= 0xBF;
        case 0xF4: return second >= 0x80 && second <= 0x8F;
        default: return is_cont(second);
    }
}

}  // namespace

DecodedChar decode_utf8(std::string_view s, size_t pos) {
    const auto* p = reinterpret_cast<const uint8_t*>(s.data()) + pos;
    const size_t avail = s.size() - pos;
    const uint8_t b0 = p[0];
    if (b0 < 0x80) return {b0, 1, true};
    const uint32_t len = lead_length(b0);
    if (len == 0 || avail < len || !second_byte_ok(b0, p[1])) return {kReplacementChar, 1, false};
    for (uint32_t k = 2; k < len; ++k) {
        if (!is_cont(p[k])) return {kReplacementChar, 1, false};
    }
    char32_t cp = 0;
    switch (len) {
        case 2: cp = (char32_t(b0 & 0x1F) << 6) | (p[1] & 0x3F); break;
        case 3: cp = (char32_t(b0 & 0x0F) << 12) | (char32_t(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
            break;
        default:
            cp = (char32_t(b0 & 0x07) << 18) | (char32_t(p[1] & 0x3F) << 12) |
                 (char32_t(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
            break;
    }
    return {cp, len, true};
}

void append_utf8(std::string& out, char32_t cp) {
    if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) cp = kReplacementChar;
    if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
}

bool is_valid_utf8(std::string_view s) {
    for (size_t i = 0; i < s.size();) {
        if (static_cast<uint8_t>(s[i]) < 0x80) {
            ++i;
            continue;
        }
        const DecodedChar d = decode_utf8(s, i);
        if (!d.valid) return false;
        i += d.len;
    }
    return true;
}

size_t incomplete_utf8_tail(std::string_view s) {
    const auto* p = reinterpret_cast<const uint8_t*>(s.data());
    const size_t n = s.size();
    // A sequence is at most 4 bytes, so an incomplete one starts within the last 3.
    for (size_t t = 1; t <= 3 && t <= n; ++t) {
        const uint8_t b = p[n - t];
        if (is_cont(b)) continue;
        const uint32_t len = lead_length(b);
        if (len <= t) return 0;  // ASCII, an invalid lead, or a sequence already complete
        if (t >= 2 && !second_byte_ok(b, p[n - t + 1])) return 0;
        return t;
    }
    return 0;
}

// ---- categories ------------------------------------------------------------------

Category general_category(char32_t cp) {
    if (cp > 0x10FFFF) return Category::Cn;
    return static_cast<Category>(utf8proc_category(static_cast<utf8proc_int32_t>(cp)));
}

namespace {

bool white_space_property(char32_t cp) {
    // PropList.txt White_Space: stable since Unicode 6.3 (U+180E left it then).
    switch (cp) {
        case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D: case 0x20: case 0x85:
        case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F:
        case 0x3000:
            return true;
        default:
            return cp >= 0x2000 && cp <= 0x200A;
    }
}

uint8_t compute_class(char32_t cp) {
    uint8_t flags = white_space_property(cp) ? kWhitespace : 0;
    switch (general_category(cp)) {
        case Category::Lu: case Category::Ll: case Category::Lt: case Category::Lm:
        case Category::Lo:
            flags |= kLetter;
            break;
        case Category::Nd: case Category::Nl: case Category::No:
            flags |= kNumber;
            break;
        case Category::Pc: case Category::Pd: case Category::Ps: case Category::Pe:
        case Category::Pi: case Category::Pf: case Category::Po:
            flags |= kPunctuation;
            break;
        default:
            break;
    }
    return flags;
}

const std::array<uint8_t, 0x10000>& bmp_classes() {
    static const auto table = [] {
        auto t = std::make_unique<std::array<uint8_t, 0x10000>>();
        for (char32_t cp = 0; cp < 0x10000; ++cp) (*t)[cp] = compute_class(cp);
        return t;
    }();
    return *table;
}

}  // namespace

uint8_t char_class(char32_t cp) {
    if (cp < 0x10000) return bmp_classes()[cp];
    return compute_class(cp);
}

// ---- NFC -------------------------------------------------------------------------

namespace {

// Appends NFC of a span of valid UTF-8.
void append_nfc(std::string& out, std::string_view span) {
    utf8proc_uint8_t* mapped = nullptr;
    const utf8proc_ssize_t n =
        utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(span.data()),
                     static_cast<utf8proc_ssize_t>(span.size()), &mapped,
                     static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
    if (n < 0) {
        // Only reachable on allocation failure: the span was validated. Keep the text.
        out.append(span);
    } else {
        out.append(reinterpret_cast<const char*>(mapped), static_cast<size_t>(n));
    }
    std::free(mapped);
}

}  // namespace

std::string nfc(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    const size_t n = s.size();
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && static_cast<uint8_t>(s[j]) < 0x80) ++j;
        if (j == n) {
            out.append(s.substr(i));
            break;
        }
        // NFC of ASCII is ASCII, and no composition has an ASCII second element, so
        // only the run of non-ASCII characters plus the one starter before it (which a
        // combining mark may compose with) needs normalising.
        const size_t start = j > i ? j - 1 : j;
        out.append(s.substr(i, start - i));
        size_t k = j;
        while (k < n && static_cast<uint8_t>(s[k]) >= 0x80) {
            const DecodedChar d = decode_utf8(s, k);
            if (!d.valid) break;
            k += d.len;
        }
        if (k > j) {
            append_nfc(out, s.substr(start, k - start));
        } else {
            out.append(s.substr(start, k - start));
        }
        if (k < n && static_cast<uint8_t>(s[k]) >= 0x80) {
            out.push_back(s[k]);  // an invalid byte: kept as is
            ++k;
        }
        i = k;
    }
    return out;
}

std::string_view unicode_version() { return utf8proc_unicode_version(); }

// ---- GPT-2 byte-level mapping ----------------------------------------------------

namespace {

struct ByteLevelTables {
    std::array<char32_t, 256> to_cp{};
    std::array<int16_t, 0x144> to_byte{};  // every mapped code point is below U+0144
};

constexpr bool maps_to_itself(int b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

constexpr ByteLevelTables make_byte_level_tables() {
    ByteLevelTables t;
    for (auto& v : t.to_byte) v = -1;
    char32_t next = 0x100;
    for (int b = 0; b < 256; ++b) {
        const char32_t cp = maps_to_itself(b) ? static_cast<char32_t>(b) : next++;
        t.to_cp[static_cast<size_t>(b)] = cp;
        t.to_byte[cp] = static_cast<int16_t>(b);
    }
    return t;
}

constexpr ByteLevelTables kByteLevel = make_byte_level_tables();
static_assert(kByteLevel.to_cp[0x20] == 0x120 && kByteLevel.to_cp[0x0A] == 0x10A);
static_assert(kByteLevel.to_cp[0xAD] == 0x143);

}  // namespace

char32_t byte_to_unicode(uint8_t b) { return kByteLevel.to_cp[b]; }

std::optional<uint8_t> unicode_to_byte(char32_t cp) {
    if (cp >= kByteLevel.to_byte.size() || kByteLevel.to_byte[cp] < 0) return std::nullopt;
    return static_cast<uint8_t>(kByteLevel.to_byte[cp]);
}

std::string bytes_to_byte_level(std::string_view bytes) {
    std::string out;
    out.reserve(bytes.size() * 2);
    for (char c : bytes) append_utf8(out, byte_to_unicode(static_cast<uint8_t>(c)));
    return out;
}

std::optional<std::string> byte_level_to_bytes(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size();) {
        const DecodedChar d = decode_utf8(text, i);
        if (!d.valid) return std::nullopt;
        const auto b = unicode_to_byte(d.cp);
        if (!b) return std::nullopt;
        out.push_back(static_cast<char>(*b));
        i += d.len;
    }
    return out;
}

}  // namespace hearth::unicode
