// UTF-8 decoding and encoding, categories, NFC and the GPT-2 byte-level mapping.
#include "unicode.h"

#include <gtest/gtest.h>

#include <set>
#include <vector>

namespace hearth::unicode {
namespace {

TEST(Utf8, DecodesValidSequences) {
    const std::string s = "a\xC3\xA9\xE6\x97\xA5\xF0\x9F\x98\x80";  // a é 日 😀
    std::vector<char32_t> cps;
    std::vector<uint32_t> lens;
    for (size_t i = 0; i < s.size();) {
        const DecodedChar d = decode_utf8(s, i);
        EXPECT_TRUE(d.valid);
        cps.push_back(d.cp);
        lens.push_back(d.len);
        i += d.len;
    }
    EXPECT_EQ(cps, (std::vector<char32_t>{U'a', 0xE9, 0x65E5, 0x1F600}));
    EXPECT_EQ(lens, (std::vector<uint32_t>{1, 2, 3, 4}));
}

TEST(Utf8, InvalidBytesAreReportedOneAtATime) {
    const std::vector<std::string> invalid = {
        "\x80",              // stray continuation
        "\xC0\xAF",          // overlong '/'
        "\xC1\xBF",          // overlong
        "\xE0\x80\xAF",      // overlong 3-byte
        "\xED\xA0\x80",      // surrogate U+D800
        "\xF0\x80\x80\xAF",  // overlong 4-byte
        "\xF4\x90\x80\x80",  // U+110000
        "\xF5\x80\x80\x80",  // lead byte out of range
        "\xE6\x97",          // truncated
        "\xC3",              // truncated at the end
        "\xE6\x41\x41",      // continuation missing
    };
    for (const std::string& s : invalid) {
        const DecodedChar d = decode_utf8(s, 0);
        EXPECT_FALSE(d.valid) << testing::PrintToString(s);
        EXPECT_EQ(d.len, 1u);
        EXPECT_EQ(d.cp, kReplacementChar);
        EXPECT_FALSE(is_valid_utf8(s));
    }
    EXPECT_TRUE(is_valid_utf8(""));
    EXPECT_TRUE(is_valid_utf8("\xEF\xBF\xBD plain \xF4\x8F\xBF\xBF"));  // U+FFFD, U+10FFFF
}

TEST(Utf8, EncodeDecodeEveryScalarValue) {
    std::string buf;
    for (char32_t cp = 0; cp <= 0x10FFFF; ++cp) {
        if (cp >= 0xD800 && cp <= 0xDFFF) continue;
        buf.clear();
        append_utf8(buf, cp);
        const DecodedChar d = decode_utf8(buf, 0);
        ASSERT_TRUE(d.valid) << uint32_t{cp};
        ASSERT_EQ(d.cp, cp);
        ASSERT_EQ(d.len, buf.size());
    }
    buf.clear();
    append_utf8(buf, 0xD800);
    append_utf8(buf, 0x110000);
    EXPECT_EQ(buf, "\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(Utf8, IncompleteTail) {
    EXPECT_EQ(incomplete_utf8_tail(""), 0u);
    EXPECT_EQ(incomplete_utf8_tail("abc"), 0u);
    EXPECT_EQ(incomplete_utf8_tail("a\xE6"), 1u);
    EXPECT_EQ(incomplete_utf8_tail("a\xE6\x97"), 2u);
    EXPECT_EQ(incomplete_utf8_tail("a\xE6\x97\xA5"), 0u);
    EXPECT_EQ(incomplete_utf8_tail("\xF0\x9F\x98"), 3u);
    EXPECT_EQ(incomplete_utf8_tail("\xF0\x9F\x98\x80"), 0u);
    EXPECT_EQ(incomplete_utf8_tail("\xFF"), 0u);      // can never start a sequence
    EXPECT_EQ(incomplete_utf8_tail("\xE0\x80"), 0u);  // overlong: never completes
    EXPECT_EQ(incomplete_utf8_tail("\xED\xA0"), 0u);  // would be a surrogate
    EXPECT_EQ(incomplete_utf8_tail("\x80\x80\x80"), 0u);
}

TEST(Categories, GeneralCategory) {
    EXPECT_EQ(general_category(U'A'), Category::Lu);
    EXPECT_EQ(general_category(0xE9), Category::Ll);      // é
    EXPECT_EQ(general_category(0x65E5), Category::Lo);    // 日
    EXPECT_EQ(general_category(0x0663), Category::Nd);    // Arabic-Indic three
    EXPECT_EQ(general_category(0x2167), Category::Nl);    // Roman numeral eight
    EXPECT_EQ(general_category(0xBD), Category::No);      // ½
    EXPECT_EQ(general_category(U'_'), Category::Pc);
    EXPECT_EQ(general_category(U'$'), Category::Sc);
    EXPECT_EQ(general_category(0x301), Category::Mn);     // combining acute
    EXPECT_EQ(general_category(0x1F600), Category::So);   // 😀
    EXPECT_EQ(general_category(0x110000), Category::Cn);
}

TEST(Categories, CharClasses) {
    EXPECT_EQ(char_class(U'a'), kLetter);
    EXPECT_EQ(char_class(U'7'), kNumber);
    EXPECT_EQ(char_class(U'.'), kPunctuation);
    EXPECT_EQ(char_class(U'+'), 0);   // Sm: not \p{P}
    EXPECT_EQ(char_class(U'`'), 0);   // Sk
    EXPECT_EQ(char_class(0x1D400), kLetter);  // mathematical bold A, outside the BMP
    EXPECT_EQ(char_class(0x1F600), 0);
    // White_Space, not the Zs category: controls \t..\r and NEL are in, ZWSP and the
    // BOM are not.
    for (char32_t ws : {0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2000, 0x200A,
                        0x2028, 0x2029, 0x202F, 0x205F, 0x3000}) {
        EXPECT_TRUE(is_whitespace(ws)) << std::hex << uint32_t{ws};
    }
    for (char32_t not_ws : {0x200B, 0xFEFF, 0x180E, 0x1C, 0x00}) {
        EXPECT_FALSE(is_whitespace(not_ws)) << std::hex << uint32_t{not_ws};
    }
    EXPECT_EQ(char_class(0x3000), kWhitespace);
}

TEST(Nfc, ComposesAndKeepsInvalidBytes) {
    EXPECT_EQ(nfc(""), "");
    EXPECT_EQ(nfc("plain ascii\n"), "plain ascii\n");
    EXPECT_EQ(nfc("e\xCC\x81"), "\xC3\xA9");                    // e + U+0301 -> é
    EXPECT_EQ(nfc("caf\x65\xCC\x81!"), "caf\xC3\xA9!");
    EXPECT_EQ(nfc("\xE1\x84\x80\xE1\x85\xA1"), "\xEA\xB0\x80");  // Hangul jamo -> 가
    // Combining marks are put in canonical order (dot below, ccc 220, before dot
    // above, ccc 230) and then composed: q has no precomposed forms, so only reordering.
    EXPECT_EQ(nfc("q\xCC\x87\xCC\xA3"), "q\xCC\xA3\xCC\x87");
    EXPECT_EQ(nfc("\xE2\x84\xAB"), "\xC3\x85");  // Angstrom sign -> Å (singleton)
    // A compatibility character is not NFC's business.
    EXPECT_EQ(nfc("\xEF\xAC\x81"), "\xEF\xAC\x81");  // ﬁ ligature stays
    // Invalid bytes stay in place and split the text: the mark after 0xFF has no base.
    EXPECT_EQ(nfc("e\xFF\xCC\x81x"), "e\xFF\xCC\x81x");
    EXPECT_EQ(nfc("\xFF" "e\xCC\x81\xC3"), "\xFF\xC3\xA9\xC3");
    // Already-NFC text comes back unchanged.
    const std::string nfc_text = "\xE6\x97\xA5\xE6\x9C\xAC \xD0\x9F\xD1\x80\xD0\xB8 \xC3\xA9";
    EXPECT_EQ(nfc(nfc_text), nfc_text);
    EXPECT_FALSE(unicode_version().empty());
}

TEST(ByteLevel, MappingIsABijectionOfPrintableCodePoints) {
    std::set<char32_t> seen;
    for (int b = 0; b < 256; ++b) {
        const char32_t cp = byte_to_unicode(static_cast<uint8_t>(b));
        EXPECT_TRUE(seen.insert(cp).second);
        EXPECT_EQ(unicode_to_byte(cp), b);
        EXPECT_FALSE(is_whitespace(cp)) << b;
        EXPECT_NE(general_category(cp), Category::Cc) << b;
    }
    EXPECT_EQ(byte_to_unicode('A'), U'A');
    EXPECT_EQ(byte_to_unicode(0x20), 0x120u);  // 'Ġ'
    EXPECT_EQ(byte_to_unicode(0x0A), 0x10Au);  // 'Ċ'
    EXPECT_EQ(byte_to_unicode(0x00), 0x100u);
    EXPECT_EQ(byte_to_unicode(0x7F), 0x121u);
    EXPECT_EQ(byte_to_unicode(0xAD), 0x143u);
    EXPECT_EQ(byte_to_unicode(0xFF), 0xFFu);
    EXPECT_FALSE(unicode_to_byte(0x20).has_value());
    EXPECT_FALSE(unicode_to_byte(0x144).has_value());
}

TEST(ByteLevel, SpellsAndReadsBytes) {
    std::string all;
    for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
    const std::string spelled = bytes_to_byte_level(all);
    EXPECT_TRUE(is_valid_utf8(spelled));
    EXPECT_EQ(byte_level_to_bytes(spelled), all);
    EXPECT_EQ(bytes_to_byte_level(" return\n"), "\xC4\xA0return\xC4\x8A");
    EXPECT_FALSE(byte_level_to_bytes("a b").has_value());           // raw space
    EXPECT_FALSE(byte_level_to_bytes("\xE6\x97\xA5").has_value());  // 日
    EXPECT_FALSE(byte_level_to_bytes("\xC4").has_value());          // invalid UTF-8
}

}  // namespace
}  // namespace hearth::unicode
