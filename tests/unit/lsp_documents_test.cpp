// Documents: line index, the three position encodings with multi-byte text, edits.
#include <gtest/gtest.h>

#include "documents.h"

using namespace hearth::lsp;

namespace {

// "é" is 2 UTF-8 bytes / 1 UTF-16 unit, "中" 3 / 1, "😀" 4 / 2 (a surrogate pair).
const std::string kText = "a\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80z\nline2\r\nline3\rlast";

TextDocument doc(std::string text = kText) {
    return TextDocument("file:///t", "python", 1, std::move(text));
}

TextDocumentContentChangeEvent edit(Position a, Position b, std::string text) {
    return TextDocumentContentChangeEvent{Range{a, b}, std::move(text)};
}

}  // namespace

TEST(LspDocuments, LinesAndAllThreeLineBreaks) {
    TextDocument d = doc();
    ASSERT_EQ(d.line_count(), 4u);
    EXPECT_EQ(d.line_text(1), "line2");
    EXPECT_EQ(d.line_text(2), "line3");
    EXPECT_EQ(d.line_text(3), "last");
    EXPECT_EQ(d.eol(), "\n");
    EXPECT_EQ(TextDocument("u", "c", 1, "a\r\nb").eol(), "\r\n");
    EXPECT_EQ(TextDocument("u", "c", 1, "").line_count(), 1u);
    EXPECT_EQ(TextDocument("u", "c", 1, "x\n").line_count(), 2u);
}

TEST(LspDocuments, OffsetsPerEncoding) {
    TextDocument d = doc();
    // Before 'z': a(1) é(1|2) 中(1|3) 😀(2|4) -> utf16 5, utf8 10, utf32 4.
    EXPECT_EQ(*d.offset_at({0, 5}, PositionEncoding::Utf16), 10u);
    EXPECT_EQ(*d.offset_at({0, 10}, PositionEncoding::Utf8), 10u);
    EXPECT_EQ(*d.offset_at({0, 4}, PositionEncoding::Utf32), 10u);
    // After é.
    EXPECT_EQ(*d.offset_at({0, 2}, PositionEncoding::Utf16), 3u);
    EXPECT_EQ(*d.offset_at({0, 3}, PositionEncoding::Utf8), 3u);
    // Back again.
    EXPECT_EQ(d.position_at(10, PositionEncoding::Utf16), (Position{0, 5}));
    EXPECT_EQ(d.position_at(10, PositionEncoding::Utf8), (Position{0, 10}));
    EXPECT_EQ(d.position_at(10, PositionEncoding::Utf32), (Position{0, 4}));
    EXPECT_EQ(d.position_at(d.text().size(), PositionEncoding::Utf16), (Position{3, 4}));
    // Second line after "\n", third after "\r\n".
    EXPECT_EQ(*d.offset_at({1, 0}, PositionEncoding::Utf16), 12u);
    EXPECT_EQ(*d.offset_at({2, 0}, PositionEncoding::Utf16), 19u);
}

TEST(LspDocuments, InsideACharacterIsAnErrorPastTheLineIsClamped) {
    TextDocument d = doc();
    EXPECT_FALSE(d.offset_at({0, 4}, PositionEncoding::Utf16).ok());  // between the surrogates
    EXPECT_FALSE(d.offset_at({0, 2}, PositionEncoding::Utf8).ok());   // inside é
    EXPECT_FALSE(d.offset_at({0, 8}, PositionEncoding::Utf8).ok());   // inside 😀
    EXPECT_EQ(*d.offset_at({0, 100}, PositionEncoding::Utf16), 11u);  // clamped before "\n"
    EXPECT_EQ(*d.offset_at({1, 100}, PositionEncoding::Utf8), 17u);   // clamped before "\r\n"
    EXPECT_FALSE(d.offset_at({4, 0}, PositionEncoding::Utf16).ok());  // no such line
}

TEST(LspDocuments, InvalidUtf8CountsOneUnitPerByte) {
    TextDocument d("u", "c", 1, "a\xff\xC3z");
    EXPECT_EQ(*d.offset_at({0, 3}, PositionEncoding::Utf16), 3u);
    EXPECT_EQ(count_units("a\xff\xC3z", PositionEncoding::Utf16), 4u);
    EXPECT_EQ(count_units("\xF0\x9F\x98\x80", PositionEncoding::Utf16), 2u);
    EXPECT_EQ(count_units("\xF0\x9F\x98\x80", PositionEncoding::Utf32), 1u);
}

TEST(LspDocuments, IncrementalEditsInUtf16AndUtf8) {
    TextDocument a = doc();
    // Replace 😀 by "!" using UTF-16 positions (3..5), then the same in UTF-8 (6..10).
    ASSERT_TRUE(a.apply_changes({edit({0, 3}, {0, 5}, "!")}, 2, PositionEncoding::Utf16));
    TextDocument b = doc();
    ASSERT_TRUE(b.apply_changes({edit({0, 6}, {0, 10}, "!")}, 2, PositionEncoding::Utf8));
    EXPECT_EQ(a.text(), b.text());
    EXPECT_EQ(a.line_text(0), "a\xC3\xA9\xE4\xB8\xAD!z");
    EXPECT_EQ(a.version(), 2);
    // Inserting lines keeps the index right.
    ASSERT_TRUE(a.apply_changes({edit({1, 0}, {1, 0}, "new\n")}, 3, PositionEncoding::Utf16));
    EXPECT_EQ(a.line_count(), 5u);
    EXPECT_EQ(a.line_text(1), "new");
    EXPECT_EQ(a.line_text(2), "line2");
}

TEST(LspDocuments, SeveralChangesApplyInOrder) {
    TextDocument d("u", "c", 1, "abc");
    ASSERT_TRUE(d.apply_changes(
        {edit({0, 3}, {0, 3}, "d"), edit({0, 0}, {0, 1}, "A"),
         TextDocumentContentChangeEvent{std::nullopt, "full\ntext"}, edit({1, 0}, {1, 4}, "T")},
        5, PositionEncoding::Utf16));
    EXPECT_EQ(d.text(), "full\nT");
}

TEST(LspDocuments, BadEditsLeaveTheDocumentUnchanged) {
    const std::vector<std::vector<TextDocumentContentChangeEvent>> bad = {
        {edit({9, 0}, {9, 1}, "x")},                              // no such line
        {edit({0, 4}, {0, 5}, "x")},                              // inside a surrogate pair
        {edit({0, 5}, {0, 1}, "x")},                              // start after end
        {edit({0, 0}, {0, 1}, "ok"), edit({7, 0}, {7, 0}, "x")},  // second change bad
    };
    for (const auto& changes : bad) {
        TextDocument d = doc();
        EXPECT_FALSE(d.apply_changes(changes, 9, PositionEncoding::Utf16).ok());
        EXPECT_EQ(d.text(), kText);
        EXPECT_EQ(d.version(), 1);
        EXPECT_EQ(d.line_count(), 4u);
    }
}

TEST(LspDocuments, StoreOpensChangesAndCloses) {
    DocumentStore store;
    ASSERT_TRUE(store.open(TextDocumentItem{"file:///a", "python", 1, "x = 1\n"}));
    ASSERT_TRUE(store.open(TextDocumentItem{"file:///b", "cpp", 1, "int x;\n"}));
    EXPECT_EQ(store.size(), 2u);
    DidChangeTextDocumentParams p;
    p.text_document = {"file:///a", 2};
    p.content_changes = {edit({0, 4}, {0, 5}, "2")};
    ASSERT_TRUE(store.change(p, PositionEncoding::Utf16));
    EXPECT_EQ(store.get("file:///a")->text(), "x = 2\n");
    p.text_document.uri = "file:///missing";
    EXPECT_FALSE(store.change(p, PositionEncoding::Utf16).ok());
    EXPECT_TRUE(store.close("file:///a"));
    EXPECT_EQ(store.get("file:///a"), nullptr);
    EXPECT_FALSE(store.close("file:///a"));
}
