// The stop rules applied to model output before it reaches the editor.
#include <gtest/gtest.h>

#include "code_actions.h"
#include "postprocess.h"

using namespace hearth::lsp;

namespace {

std::string pp(std::string_view completion, std::string_view prefix, std::string_view suffix,
               int max_lines = 0, size_t max_bytes = 0, std::string* cut_by = nullptr) {
    PostprocessOptions o;
    o.max_lines = max_lines;
    o.max_bytes = max_bytes;
    PostprocessResult r = postprocess_completion(completion, prefix, suffix, o);
    if (cut_by) *cut_by = r.cut_by;
    return r.text;
}

}  // namespace

TEST(LspPostprocess, DedentBelowTheCursorLineEndsTheCompletion) {
    std::string cut;
    // Python: the cursor inside a function body; the model goes on to the next function.
    EXPECT_EQ(pp("return a + b\n\ndef other():\n    pass", "def add(a, b):\n    ", "", 0, 0, &cut),
              "return a + b");
    EXPECT_EQ(cut, "block_end");
    // Deeper and equal lines stay.
    EXPECT_EQ(pp("if x:\n        y()\n    z()\nw()", "def f(x):\n    ", ""),
              "if x:\n        y()\n    z()");
    // Braces: the closing brace of the enclosing function is dedented and cut.
    EXPECT_EQ(pp("int y = x;\n    return y;\n}\nint g() {", "int f(int x) {\n    ", "\n}\n"),
              "int y = x;\n    return y;");
}

TEST(LspPostprocess, BlockOpenerKeepsTheBodyAndItsClosingLine) {
    // Cursor at the end of "def f():": the body is indented, the next def ends it.
    EXPECT_EQ(pp("\n    return 1\n\ndef g():\n    return 2", "def f():", ""), "\n    return 1");
    // Brace opener: the closing brace at the opener's indentation closes the block.
    EXPECT_EQ(pp("\n    return 1;\n}\n\nint g() {", "int f() {", ""), "\n    return 1;\n}");
    // ...unless the same brace is already the next line of the file.
    EXPECT_EQ(pp("\n    return 1;\n}", "int f() {", "\n}\n"), "\n    return 1;");
}

TEST(LspPostprocess, BlankCursorLineTakesTheFirstCompletionLine) {
    EXPECT_EQ(pp("    x = 1\n    y = 2\nz = 3", "def f():\n", ""), "    x = 1\n    y = 2");
}

TEST(LspPostprocess, TabsCountAsFourColumns) {
    EXPECT_EQ(pp("a()\n\tb()\n  c()", "if x:\n\t", ""), "a()\n\tb()");
    EXPECT_EQ(indent_width("\t  x"), 6);
}

TEST(LspPostprocess, NoRepeatOfTheNextLines) {
    std::string cut;
    EXPECT_EQ(pp("a = 1\nb = 2\nc = 3", "", "\nb = 2\nc = 3\n", 0, 0, &cut), "a = 1");
    EXPECT_EQ(cut, "repeat_next_line");
    // Indentation matters: an inner "}" is not the outer one.
    EXPECT_EQ(pp("if (a) {\n        b();\n    }", "void f() {\n    ", "\n}\n"),
              "if (a) {\n        b();\n    }");
}

TEST(LspPostprocess, NoRepeatOfTheRestOfTheLine) {
    std::string cut;
    EXPECT_EQ(pp("a, b)", "print(", ")", 0, 0, &cut), "a, b");
    EXPECT_EQ(cut, "suffix_overlap");
    EXPECT_EQ(pp("x\");", "log(\"", "\");\nnext()"), "x");
    EXPECT_EQ(pp("f(g(x))", "y = ", ")"), "f(g(x)");
    EXPECT_EQ(pp(")", "f(", ")"), "");  // only what is already there
    EXPECT_EQ(pp("abc", "f(", ")"), "abc");
}

TEST(LspPostprocess, CapsTrailingWhitespaceAndEmpty) {
    std::string cut;
    EXPECT_EQ(pp("a\nb\nc\nd", "", "", 2, 0, &cut), "a\nb");
    EXPECT_EQ(cut, "max_lines");
    EXPECT_EQ(pp("x = 1   \ny = 2\t\n\n\n", "", ""), "x = 1\ny = 2");
    EXPECT_EQ(pp("   \n\t\n", "", ""), "");
    EXPECT_EQ(pp("", "", ""), "");
    // A byte cap never splits a character.
    EXPECT_EQ(pp("ab\xE4\xB8\xAD", "", "", 0, 4, &cut), "ab");
    EXPECT_EQ(cut, "max_bytes");
    // Keeps the leading space the model chose, and normalises CRLF.
    EXPECT_EQ(pp(" a + b\r\n    c", "    return", ""), " a + b\n    c");
}

TEST(LspPostprocess, CleanRewrite) {
    EXPECT_EQ(clean_rewrite("```python\ndef f():\n    return 1\n```\n", "def f(): return 1\n"),
              "def f():\n    return 1\n");
    EXPECT_EQ(clean_rewrite("\n\nx = 1  \n\n", "x=1"), "x = 1");
    EXPECT_EQ(clean_rewrite("x = 1", "x=1\n"), "x = 1\n");
}

TEST(LspCodeActions, BlockAtAndPlans) {
    TextDocument d("file:///a.py", "python", 3,
                   "def f(x):\n    if x:\n        return 1\n    return 2\n\nprint(f(1))\n");
    auto block = block_at(d, 0, PositionEncoding::Utf16);
    ASSERT_TRUE(block);
    EXPECT_EQ(block->start, (Position{0, 0}));
    EXPECT_EQ(block->end, (Position{4, 0}));
    EXPECT_FALSE(block_at(d, 4, PositionEncoding::Utf16));  // blank line
    auto inner = block_at(d, 1, PositionEncoding::Utf16);
    ASSERT_TRUE(inner);
    EXPECT_EQ(inner->end, (Position{3, 0}));
    auto last = block_at(d, 5, PositionEncoding::Utf16);
    ASSERT_TRUE(last);
    EXPECT_EQ(last->end, (Position{6, 0}));

    CodeActionParams p;
    p.text_document.uri = d.uri();
    p.range = Range{{0, 4}, {0, 4}};
    Diagnostic diag;
    diag.range = Range{{3, 4}, {3, 12}};
    diag.message = "unreachable\ncode";
    p.context.diagnostics.push_back(diag);
    auto actions = plan_code_actions(d, p, "Improve", PositionEncoding::Utf16);
    ASSERT_EQ(actions.size(),
              2u);  // no selection: no "Rewrite selection…"; diagnostic not in range
    EXPECT_EQ(actions[0].title, "Add documentation");
    EXPECT_EQ(actions[1].title, "Simplify");
    EXPECT_EQ(actions[0].data.version, 3);

    p.range = Range{{2, 0}, {3, 5}};
    actions = plan_code_actions(d, p, "Improve", PositionEncoding::Utf16);
    ASSERT_EQ(actions.size(), 4u);
    EXPECT_EQ(actions[0].title, "Rewrite selection…");
    EXPECT_EQ(actions[0].data.instruction, "Improve");
    EXPECT_EQ(actions[3].title, "Fix: unreachable");
    EXPECT_EQ(actions[3].kind, "quickfix");
    EXPECT_EQ(actions[3].data.range.start, (Position{3, 0}));
    EXPECT_EQ(actions[3].data.range.end, (Position{4, 0}));

    p.context.only = std::vector<std::string>{"quickfix"};
    actions = plan_code_actions(d, p, "Improve", PositionEncoding::Utf16);
    ASSERT_EQ(actions.size(), 1u);
    EXPECT_TRUE(kind_allowed("refactor.rewrite", std::vector<std::string>{"refactor"}));
    EXPECT_FALSE(kind_allowed("refactorx", std::vector<std::string>{"refactor"}));
}

TEST(LspPostprocess, TruncateLabelKeepsCharactersWhole) {
    EXPECT_EQ(truncate_label("short", 80), "short");
    EXPECT_EQ(truncate_label("abcdef", 3), "abc…");
    EXPECT_EQ(truncate_label("a\xE4\xB8\xAD\xE4\xB8\xAD", 5), "a\xE4\xB8\xAD…");
}
