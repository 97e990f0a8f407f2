// The stop rules applied to model output before it reaches the editor.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

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

// ---- stop rules applied while generating ------------------------------------------------

namespace {

struct Case {
    std::string prefix;
    std::string suffix;
};

// The cursor situations the rules distinguish: block openers (colon and brace), a line
// with text, a blank and an indented blank line, text after the cursor, a next line that
// the model may repeat, tabs.
const std::vector<Case>& cursor_cases() {
    static const std::vector<Case> cases = {
        {"def add(a, b):\n    return", ""},
        {"def add(a, b):\n    return", "\n\ndef other():\n    pass\n"},
        {"def f():", "\n    pass\n"},
        {"int f() {", "\n}\n"},
        {"int f() {\n    ", "\n}\n"},
        {"class Stack:\n    def push(self, item):\n        ", "\n\n    def pop(self):\n"},
        {"def f():\n", ""},
        {"def f():\n    x = 1\n    ", "\n    return x\n"},
        {"    x = f(", ")\n    y = 2\n"},
        {"print(", ")"},
        {"log(\"", "\");\nnext()"},
        {"if x:\n\t", "\n\tz()\n"},
        {"items = [", "]\n"},
        {"", "\nb = 2\nc = 3\n"},
        {"x = ", ""},
    };
    return cases;
}

// Model outputs of every shape the rules look at: dedents, closers, blank runs, repeats of
// the suffix, CRLF, trailing whitespace, overlaps with the rest of the line, characters of
// several bytes.
const std::vector<std::string>& completions() {
    static const std::vector<std::string> texts = {
        " a + b\n\ndef other():\n    pass\n",
        " a + b",
        "\n    return 1\n\ndef g():\n    return 2",
        "\n    return 1;\n}\n\nint g() {\n}",
        "\n    return 1;\n}",
        "int y = x;\n    return y;\n}\nint g() {",
        "self.items.append(item)\n\n    def pop(self):\n        return self.items.pop()\n",
        "    x = 1\n    y = 2\nz = 3",
        "return x\n    return x\nfoo()",
        "a)\n    y = 2\nz = 3",
        "a, b)",
        "a, b)\nprint(c)",
        "x\");\nnext()\nmore()",
        "a()\n\tb()\n  c()",
        "1, 2, 3]\nitems.sort()",
        "a = 1\nb = 2\nc = 3",
        "a = 1\r\nb = 2\r\nc = 3\r\n",
        "x = 1   \ny = 2\t\n\n\n\n    \nz",
        "   \n\t\n",
        "\n\n\n    pass\n\n\nx",
        "f(\"\xE4\xB8\xAD\xE6\x96\x87\")\n    g()\nh()",
        "if x:\n        y()\n    z()\nw()\n",
        "\n",
        "",
        "foo(bar,\n        baz)\n    qux()\n",
        "\n        return 2\n    }\n}\n",
        "1\n2\n3\n4\n5\n6\n7\n8\n9",
        "a = 1\n    \n\t\nb = 2\n",
    };
    return texts;
}

PostprocessResult full(std::string_view text, const Case& c, const PostprocessOptions& o) {
    return postprocess_completion(text, c.prefix, c.suffix, o);
}

std::vector<PostprocessOptions> option_sets() {
    std::vector<PostprocessOptions> sets;
    for (int32_t lines : {0, 1, 2, 16}) {
        for (size_t bytes : {size_t{0}, size_t{9}, size_t{4096}}) {
            sets.push_back(PostprocessOptions{lines, bytes});
        }
    }
    return sets;
}

}  // namespace

// The promise the early stop relies on: wherever the check fires, stopping there gives
// exactly the text that generating to the end gives. (cut_by may name another rule when two
// cut at the same line: the early text may show the line cap where the whole one showed
// the block end that came later.)
TEST(LspPostprocessStreaming, StoppingWhereTheCheckFiresChangesNothing) {
    int fired = 0;
    for (const Case& c : cursor_cases()) {
        for (const std::string& text : completions()) {
            for (const PostprocessOptions& o : option_sets()) {
                const PostprocessResult whole = full(text, c, o);
                for (size_t n = 0; n <= text.size(); ++n) {
                    std::string rule;
                    const std::string head = text.substr(0, n);
                    if (!postprocess_would_cut(head, c.prefix, c.suffix, o, rule)) continue;
                    ++fired;
                    const PostprocessResult early = full(head, c, o);
                    ASSERT_EQ(early.text, whole.text)
                        << "prefix=" << testing::PrintToString(c.prefix)
                        << " suffix=" << testing::PrintToString(c.suffix)
                        << " text=" << testing::PrintToString(text) << " stopped after "
                        << n << " bytes by " << rule << " max_lines=" << o.max_lines
                        << " max_bytes=" << o.max_bytes;
                    EXPECT_FALSE(rule.empty());
                    // Once decided, every longer text is decided too.
                    std::string later;
                    EXPECT_TRUE(postprocess_would_cut(text, c.prefix, c.suffix, o, later));
                    break;
                }
            }
        }
    }
    EXPECT_GT(fired, 500);  // the check is not vacuous
}

// The same promise against arbitrary continuations, not just the ones listed: random texts
// over the characters the rules care about, checked at every length against random tails.
TEST(LspPostprocessStreaming, NoContinuationChangesADecidedText) {
    std::mt19937 rng(1234);
    const std::string alphabet = "  \t\n\n\r:{}()[]ab#\"";
    auto random_text = [&](size_t max_len) {
        std::string s(rng() % (max_len + 1), ' ');
        for (char& ch : s) ch = alphabet[rng() % alphabet.size()];
        return s;
    };
    const std::vector<std::string> prefix_lines = {"", "  ", "\t", "a:", "  a{", "a (", "  ab"};
    int fired = 0;
    for (int round = 0; round < 3000; ++round) {
        const Case c{"x\n" + prefix_lines[rng() % prefix_lines.size()],
                     random_text(4) + "\n" + random_text(3) + "\n" + random_text(6)};
        const PostprocessOptions o{static_cast<int32_t>(rng() % 4),
                                   rng() % 3 == 0 ? static_cast<size_t>(rng() % 12) : size_t{0}};
        const std::string text = random_text(24);
        for (size_t n = 0; n <= text.size(); ++n) {
            std::string rule;
            const std::string head = text.substr(0, n);
            if (!postprocess_would_cut(head, c.prefix, c.suffix, o, rule)) continue;
            ++fired;
            const std::string expect = full(head, c, o).text;
            for (int t = 0; t < 20; ++t) {
                const std::string longer = head + random_text(10);
                ASSERT_EQ(full(longer, c, o).text, expect)
                    << "prefix=" << testing::PrintToString(c.prefix)
                    << " suffix=" << testing::PrintToString(c.suffix)
                    << " head=" << testing::PrintToString(head)
                    << " longer=" << testing::PrintToString(longer) << " rule=" << rule
                    << " max_lines=" << o.max_lines << " max_bytes=" << o.max_bytes;
            }
        }
    }
    EXPECT_GT(fired, 1000);
}

TEST(LspPostprocessStreaming, FiresAsSoonAsTheVerdictIsKnown) {
    const PostprocessOptions o{16, 4096};
    std::string rule;
    auto cut = [&](std::string_view text, std::string_view prefix, std::string_view suffix,
                   const PostprocessOptions& opts) {
        rule.clear();
        return postprocess_would_cut(text, prefix, suffix, opts, rule);
    };
    // The cursor at the end of a function body line: a one-line answer, whatever follows,
    // is known at the first character of the next function (not at its end).
    const std::string body = "def add(a, b):\n    return";
    EXPECT_FALSE(cut(" a + b", body, "", o));
    EXPECT_FALSE(cut(" a + b\n", body, "", o));
    EXPECT_FALSE(cut(" a + b\n\n", body, "", o));
    EXPECT_FALSE(cut(" a + b\n\n  ", body, "", o));  // could still be indented deeper
    EXPECT_TRUE(cut(" a + b\n\nd", body, "", o));
    EXPECT_EQ(rule, "block_end");
    // Deeper lines keep the block open.
    EXPECT_FALSE(cut(" a + b\n    c = 1\n        d", body, "", o));
    // After a block opener the body ends at its first line back at the opener's depth...
    EXPECT_TRUE(cut("\n    return 1\nd", "def f():", "", o));
    EXPECT_EQ(rule, "block_end");
    // ...except a closing bracket there, which is kept, so its line must end first.
    EXPECT_FALSE(cut("\n    return 1;\n}", "int f() {", "", o));
    EXPECT_FALSE(cut("\n    return 1;\n} // end", "int f() {", "", o));
    EXPECT_TRUE(cut("\n    return 1;\n} // end\n", "int f() {", "", o));
    EXPECT_EQ(rule, "block_end");
    // A repeat of the next line is known only once the line is complete.
    EXPECT_FALSE(cut("a = 1\nb = 2", "", "\nb = 2\nc = 3\n", o));
    EXPECT_TRUE(cut("a = 1\nb = 2\n", "", "\nb = 2\nc = 3\n", o));
    EXPECT_EQ(rule, "repeat_next_line");
    // A line that can no longer become the next line is no repeat.
    EXPECT_FALSE(cut("a = 1\nb = 3", "", "\nb = 2\nc = 3\n", o));
    // The line cap: at the break that completes the last allowed line (one line for a
    // single-line answer).
    const PostprocessOptions one{1, 4096};
    EXPECT_FALSE(cut("value)", "print(", ")", one));
    EXPECT_TRUE(cut("value)\n", "print(", ")", one));
    EXPECT_EQ(rule, "max_lines");
    EXPECT_FALSE(cut("1\n2\n3", "", "", {3, 0}));
    EXPECT_TRUE(cut("1\n2\n3\n", "", "", {3, 0}));
    // CRLF: the '\r' already ends the line.
    EXPECT_TRUE(cut("1\r", "", "", {1, 0}));
    // The byte cap: once more than max_bytes bytes are sure to be kept.
    EXPECT_FALSE(cut("abcdefgh", "", "", {0, 8}));
    EXPECT_TRUE(cut("abcdefghi", "", "", {0, 8}));
    EXPECT_EQ(rule, "max_bytes");
    // ...trailing whitespace may still be trimmed away, so it does not count.
    EXPECT_FALSE(cut("abcdefgh   ", "", "", {0, 8}));
    // Nothing decided: an empty text, one growing line, a blank first line.
    EXPECT_FALSE(cut("", body, "", o));
    EXPECT_FALSE(cut(" a + b + c + d", body, "", o));
    EXPECT_FALSE(cut("\n\n\n", "def f():", "", o));
}

TEST(LspPostprocessStreaming, CompleteLines) {
    EXPECT_EQ(complete_lines(""), "");
    EXPECT_EQ(complete_lines("abc"), "");
    EXPECT_EQ(complete_lines("abc\n"), "abc");
    EXPECT_EQ(complete_lines("abc\ndef"), "abc");
    EXPECT_EQ(complete_lines("a\nb\nc"), "a\nb");
    EXPECT_EQ(complete_lines("a\r\nb"), "a");
    EXPECT_EQ(complete_lines("a\r"), "a");
    EXPECT_EQ(complete_lines("\n"), "");
}
