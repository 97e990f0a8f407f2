// Unicode support for the tokenizer: UTF-8 decoding and encoding that tolerate invalid
// bytes, general categories and the White_Space property, NFC normalisation (through
// utf8proc) and the GPT-2 byte <-> code point mapping of byte-level BPE vocabularies.
//
// UTF-8 (RFC 3629) as accepted here:
//   U+0000..U+007F     0xxxxxxx
//   U+0080..U+07FF     110xxxxx 10xxxxxx                    (lead C2..DF)
//   U+0800..U+FFFF     1110xxxx 10xxxxxx 10xxxxxx           (E0: second byte A0..BF,
//                                                            ED: second byte 80..9F)
//   U+10000..U+10FFFF  11110xxx 10xxxxxx 10xxxxxx 10xxxxxx  (F0: second byte 90..BF,
//                                                            F4: second byte 80..8F)
// Overlong forms, surrogates (U+D800..U+DFFF), code points above U+10FFFF, stray
// continuation bytes and truncated sequences are invalid. An invalid sequence is reported
// one byte at a time, so callers can keep the raw byte and resynchronise on the next one.
//
// GPT-2 byte-level mapping: byte-level BPE vocabularies (GPT-2, Qwen, Llama 3, DeepSeek)
// spell every byte as one printable code point so that token texts are valid Unicode.
// Bytes 0x21..0x7E, 0xA1..0xAC and 0xAE..0xFF map to the code point of the same value;
// the remaining 68 bytes (0x00..0x20, 0x7F..0xA0, 0xAD), in increasing order, map to
// U+0100, U+0101, ... U+0143. So the space 0x20 is 'Ġ' (U+0120) and '\n' is 'Ċ' (U+010A).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace hearth::unicode {

inline constexpr char32_t kReplacementChar = 0xFFFD;

struct DecodedChar {
    char32_t cp = 0;    // the code point; kReplacementChar when !valid
    uint32_t len = 1;   // bytes consumed: 1..4, exactly 1 for an invalid byte
    bool valid = true;
};

// Decodes the sequence that starts at s[pos] (pos < s.size()); never reads past s.
DecodedChar decode_utf8(std::string_view s, size_t pos);

// Appends the UTF-8 form of cp; surrogates and values above U+10FFFF append U+FFFD.
void append_utf8(std::string& out, char32_t cp);

bool is_valid_utf8(std::string_view s);

// Number of trailing bytes of s that form the start of a valid multi-byte sequence still
// missing bytes (0..3). A streaming decoder holds those back until the rest arrives.
size_t incomplete_utf8_tail(std::string_view s);

// Unicode general category, in utf8proc's numbering.
enum class Category : uint8_t {
    Cn, Lu, Ll, Lt, Lm, Lo, Mn, Mc, Me, Nd, Nl, No, Pc, Pd, Ps, Pe, Pi, Pf, Po,
    Sm, Sc, Sk, So, Zs, Zl, Zp, Cc, Cf, Cs, Co
};
Category general_category(char32_t cp);

// Character classes used by the pre-tokenizers, as bit flags (regex \p{L}, \p{N}, \p{P},
// \s). A code point may be in none of them (symbols, marks, controls, unassigned).
enum CharClass : uint8_t {
    kLetter = 1,       // \p{L}: Lu Ll Lt Lm Lo
    kNumber = 2,       // \p{N}: Nd Nl No
    kPunctuation = 4,  // \p{P}: Pc Pd Ps Pe Pi Pf Po
    kWhitespace = 8,   // \s: the White_Space property (not Zs: it includes \t..\r, U+0085)
};
// Flags of cp; table-driven for the BMP, so cheap enough to call per character.
uint8_t char_class(char32_t cp);

inline bool is_letter(char32_t cp) { return char_class(cp) & kLetter; }
inline bool is_number(char32_t cp) { return char_class(cp) & kNumber; }
inline bool is_punctuation(char32_t cp) { return char_class(cp) & kPunctuation; }
inline bool is_whitespace(char32_t cp) { return char_class(cp) & kWhitespace; }

// Canonical composition (NFC). Invalid bytes are kept unchanged in place and split the
// text around them; ASCII stretches are copied without calling into utf8proc.
std::string nfc(std::string_view s);

// The Unicode version of the category and normalisation tables (utf8proc's).
std::string_view unicode_version();

// GPT-2 byte-level mapping (see the top of this file).
char32_t byte_to_unicode(uint8_t b);
// The byte spelled by cp, or nullopt when cp is not one of the 256 mapped code points.
std::optional<uint8_t> unicode_to_byte(char32_t cp);
// Spells raw bytes as byte-level text (UTF-8 of the mapped code points).
std::string bytes_to_byte_level(std::string_view bytes);
// The raw bytes spelled by byte-level text; nullopt if it holds anything else.
std::optional<std::string> byte_level_to_bytes(std::string_view text);

}  // namespace hearth::unicode
