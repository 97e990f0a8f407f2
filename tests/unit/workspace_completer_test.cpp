// FIM templates and the engine-backed Completer on the bundled demo model (CPU backend).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <string_view>
#include <vector>

#include "demo_model.h"
#include "engine.h"
#include "engine_completer.h"
#include "fim.h"
#include "postprocess.h"

namespace hearth {
namespace {

using test::demo_model;
const auto data = test::data_path;

std::unique_ptr<EngineCompleter> make_completer() {
    EngineCompleterOptions o;
    o.backend.kind = BackendKind::Cpu;
    o.n_ctx = 1024;
    auto c = EngineCompleter::create(demo_model(), o);
    EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message);
    return c.ok() ? std::move(*c) : nullptr;
}

TEST(Fim, DetectsTheQwenFamily) {
    const Tokenizer& tok = *demo_model().tokenizer;
    auto t = FimTemplate::detect(tok);
    ASSERT_TRUE(t.ok()) << t.error().message;
    EXPECT_EQ(t->family(), FimFamily::Qwen);
    EXPECT_EQ(t->tokens().prefix, *tok.find_token("<|fim_prefix|>"));
    EXPECT_EQ(t->tokens().suffix, *tok.find_token("<|fim_suffix|>"));
    EXPECT_EQ(t->tokens().middle, *tok.find_token("<|fim_middle|>"));
    EXPECT_EQ(t->tokens().file_sep, *tok.find_token("<|file_sep|>"));
    const auto& stop = t->tokens().stop;
    EXPECT_NE(std::find(stop.begin(), stop.end(), *tok.find_token("<|endoftext|>")), stop.end());
}

TEST(Fim, OverrideNamesMissingTokens) {
    const Tokenizer& tok = *demo_model().tokenizer;
    auto bad = FimTemplate::detect(tok, "deepseek");
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error().message.find("no token"), std::string::npos) << bad.error().message;
    auto unknown = FimTemplate::detect(tok, "gpt5");
    ASSERT_FALSE(unknown.ok());
    EXPECT_NE(unknown.error().message.find("unknown FIM template"), std::string::npos);
}

TEST(Fim, PrefixSuffixMiddleOrderWithPlainText) {
    const Tokenizer& tok = *demo_model().tokenizer;
    auto t = FimTemplate::detect(tok);
    ASSERT_TRUE(t.ok());
    CompletionRequest req;
    req.prefix = "x = '<|endoftext|>'\n";
    req.suffix = "print(x)\n";
    const FimPrompt p = t->build(tok, req);
    std::vector<int32_t> expect{t->tokens().prefix};
    tok.encode_append(req.prefix, EncodeMode::Plain, expect);
    expect.push_back(t->tokens().suffix);
    tok.encode_append(req.suffix, EncodeMode::Plain, expect);
    expect.push_back(t->tokens().middle);
    EXPECT_EQ(p.tokens, expect);
    EXPECT_EQ(p.stable_tokens, 0);
    // File text never yields a control token.
    const int32_t eot = *tok.find_token("<|endoftext|>");
    EXPECT_EQ(std::count(p.tokens.begin(), p.tokens.end(), eot), 0);
}

TEST(Fim, RepositoryContextIsAStablePrefix) {
    const Tokenizer& tok = *demo_model().tokenizer;
    auto t = FimTemplate::detect(tok);
    ASSERT_TRUE(t.ok());
    CompletionRequest a;
    a.repo_name = "demo";
    a.path = "pkg/b.py";
    a.context = {{"pkg/a.py", "def helper():\n    return 1\n"}, {"pkg/c.py", "X = 2\n"}};
    a.prefix = "from pkg.a import helper\n";
    CompletionRequest b = a;
    b.prefix += "y = helper()\n";
    b.suffix = "\nprint(y)\n";
    const FimPrompt pa = t->build(tok, a), pb = t->build(tok, b);
    ASSERT_GT(pa.stable_tokens, 0);
    EXPECT_EQ(pa.stable_tokens, pb.stable_tokens);
    EXPECT_TRUE(std::equal(pa.tokens.begin(), pa.tokens.begin() + pa.stable_tokens, pb.tokens.begin()));
    EXPECT_EQ(pa.tokens[0], t->tokens().repo_name);
    EXPECT_EQ(std::count(pa.tokens.begin(), pa.tokens.end(), t->tokens().file_sep), 3);
    // The continuation form shares the same stable part and ends with the file text.
    const FimPrompt pc = t->build_continuation(tok, a);
    EXPECT_TRUE(std::equal(pa.tokens.begin(), pa.tokens.begin() + pa.stable_tokens, pc.tokens.begin()));
    EXPECT_EQ(std::count(pc.tokens.begin(), pc.tokens.end(), t->tokens().prefix), 0);
}

TEST(EngineCompleter, ContinuesPython) {
    auto c = make_completer();
    ASSERT_NE(c, nullptr);
    CompletionRequest req;
    req.prefix = "def add(a, b):\n    return";
    req.max_tokens = 6;
    auto r = c->complete(req);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->text.rfind(" a + b", 0), 0u) << r->text;
    EXPECT_EQ(r->stats.backend, "cpu");
    EXPECT_EQ(r->stats.prompt_tokens, r->stats.prefilled_tokens + r->stats.reused_tokens);
    EXPECT_GT(r->stats.generated_tokens, 0);
    EXPECT_LE(r->stats.generated_tokens, 6);
}

TEST(EngineCompleter, TypedIndentationIsNotRepeated) {
    auto c = make_completer();
    ASSERT_NE(c, nullptr);
    CompletionRequest req;
    req.prefix = "class Stack:\n    def __init__(self):\n        self.items = []\n\n"
                 "    def push(self, item):\n        ";
    req.max_tokens = 12;
    req.max_lines = 1;
    auto r = c->complete(req);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->text, "self.items.append(item)");
    EXPECT_EQ(r->stop_reason, "end_of_line");
}

TEST(EngineCompleter, StopRulesSeeTheTextAsTheCallerGetsIt) {
    auto c = make_completer();
    ASSERT_NE(c, nullptr);
    CompletionRequest req;
    // Typed indentation: left out of the prompt and taken off the completion; the rules
    // must never see it (nor be asked while it is unknown).
    req.prefix = "class Stack:\n    def __init__(self):\n        self.items = []\n\n"
                 "    def push(self, item):\n        ";
    req.max_tokens = 12;
    std::vector<std::string> seen;
    req.stop_on_text = [&seen](std::string_view text, std::string&) {
        seen.emplace_back(text);
        return false;
    };
    auto r = c->complete(req);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_TRUE(r->text.starts_with("self.items.append(item)")) << r->text;
    ASSERT_FALSE(seen.empty());
    for (const std::string& t : seen) EXPECT_TRUE(r->text.starts_with(t)) << t;

    // A rule that fires ends generation there and names the reason.
    req.stop_on_text = [](std::string_view text, std::string& reason) {
        if (text.find('(') == std::string_view::npos) return false;
        reason = "custom";
        return true;
    };
    r = c->complete(req);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->stop_reason, "custom");
    EXPECT_TRUE(r->text.starts_with("self.items.append(")) << r->text;
    EXPECT_LE(r->text.size(), std::string("self.items.append(item").size()) << r->text;
    // The line cap still comes first.
    req.max_lines = 1;
    req.prefix = "def add(a, b):\n    return";
    r = c->complete(req);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->stop_reason, "end_of_line");
}

// The server's post-processing rules applied while generating, on the real model: the same
// answers as generating to the end, for fewer tokens.
TEST(EngineCompleter, PostprocessRulesWhileGeneratingGiveTheSameAnswers) {
    struct Case {
        std::string prefix, suffix;
    };
    const std::vector<Case> cases = {
        {"def add(a, b):\n    return", "\n\ndef sub(a, b):\n    return a - b\n"},
        {"def add(a, b):\n    return", ""},
        {"class Stack:\n    def __init__(self):\n        self.items = []\n\n"
         "    def push(self, item):\n        ",
         "\n\n    def pop(self):\n        return self.items.pop()\n"},
        {"import os\n\n\ndef read(path):\n    with open(path", ""},
        {"def f(x):\n    if x:", "\n    return 0\n"},
        {"for i in range(10):", "\nprint('done')\n"},
        {"def area(r):\n    return 3.14 * (r", ")\n\nprint(area(2))\n"},
        {"def main():\n    args = sys.argv[1:]\n", "\n\nif __name__ == '__main__':\n    main()\n"},
    };
    int saved = 0;
    for (const Case& k : cases) {
        SCOPED_TRACE(k.prefix);
        CompletionRequest req;
        req.prefix = k.prefix;
        req.suffix = k.suffix;
        req.max_tokens = 64;
        req.max_lines = 16;
        const std::string_view rest = std::string_view(k.suffix).substr(0, k.suffix.find('\n'));
        req.single_line = rest.find_first_not_of(" \t") != std::string_view::npos;
        lsp::PostprocessOptions o{req.max_lines, static_cast<size_t>(req.max_tokens) * 32};
        const std::string prefix_line = k.prefix.substr(k.prefix.find_last_of('\n') + 1);
        // A fresh completer each time, so both runs evaluate the prompt the same way.
        auto whole = make_completer()->complete(req);
        ASSERT_TRUE(whole.ok()) << whole.error().message;
        req.stop_on_text = [&](std::string_view text, std::string& reason) {
            return lsp::postprocess_would_cut(text, prefix_line, k.suffix, o, reason);
        };
        auto early = make_completer()->complete(req);
        ASSERT_TRUE(early.ok()) << early.error().message;
        EXPECT_EQ(lsp::postprocess_completion(early->text, prefix_line, k.suffix, o).text,
                  lsp::postprocess_completion(whole->text, prefix_line, k.suffix, o).text)
            << "whole: " << whole->text << "\nearly: " << early->text;
        EXPECT_LE(early->stats.generated_tokens, whole->stats.generated_tokens);
        if (early->stats.generated_tokens < whole->stats.generated_tokens) ++saved;
    }
    EXPECT_GT(saved, 0);
}

TEST(EngineCompleter, ReusesTheEvaluatedPrefix) {
    auto c = make_completer();
    ASSERT_NE(c, nullptr);
    CompletionRequest req;
    req.prefix = "import os\n\n\ndef read_lines(path):\n    with open(path) as f:\n";
    req.max_tokens = 4;
    auto first = c->complete(req);
    ASSERT_TRUE(first.ok());
    EXPECT_EQ(first->stats.reused_tokens, 0);
    req.prefix += "        lines = f.readlines()\n";
    auto second = c->complete(req);
    ASSERT_TRUE(second.ok());
    EXPECT_GT(second->stats.reused_tokens, first->stats.prompt_tokens / 2);
    EXPECT_LT(second->stats.prefilled_tokens, second->stats.prompt_tokens / 2);
}

TEST(EngineCompleter, CancellationStopsTheCall) {
    auto c = make_completer();
    ASSERT_NE(c, nullptr);
    CompletionRequest req;
    req.prefix = "def f():\n    return";
    req.cancelled = [] { return true; };
    auto r = c->complete(req);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message, "cancelled");
    // The completer keeps working after a cancelled call.
    req.cancelled = nullptr;
    req.max_tokens = 3;
    EXPECT_TRUE(c->complete(req).ok());
}

TEST(EngineCompleter, LongPromptsAreFittedToTheContext) {
    auto c = make_completer();
    ASSERT_NE(c, nullptr);
    CompletionRequest req;
    for (int i = 0; i < 400; ++i) req.prefix += "x" + std::to_string(i) + " = " + std::to_string(i) + "\n";
    req.suffix = "\nprint(x1)\n";
    req.max_tokens = 8;
    auto r = c->complete(req);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_LE(r->stats.prompt_tokens + 8, c->n_ctx());
    EXPECT_GT(r->stats.prompt_tokens, c->n_ctx() / 2);
}

TEST(EngineCompleter, TheSuffixKeepsItsFirstLinesUpToItsBudget) {
    EngineCompleterOptions o;
    o.backend.kind = BackendKind::Cpu;
    o.n_ctx = 1024;
    o.max_suffix_tokens = 64;
    auto made = EngineCompleter::create(demo_model(), o);
    ASSERT_TRUE(made.ok()) << made.error().message;
    auto& c = *made;
    CompletionRequest req;
    req.prefix = "def area(r):\n    return ";
    for (int i = 0; i < 100; ++i) req.suffix += "\n\ndef f" + std::to_string(i) + "():\n    pass";
    req.max_tokens = 4;
    auto r = c->complete(req);
    ASSERT_TRUE(r.ok()) << r.error().message;
    CompletionRequest short_suffix = req;
    short_suffix.suffix.clear();
    short_suffix.suffix = "\n";  // whitespace only would switch to the left-to-right form
    short_suffix.suffix += "x";
    auto bare = c->complete(short_suffix);
    ASSERT_TRUE(bare.ok());
    // The prompt holds at most ~64 suffix tokens more than with a one-token suffix.
    EXPECT_LE(r->stats.prompt_tokens, bare->stats.prompt_tokens + 64);
    EXPECT_GT(r->stats.prompt_tokens, bare->stats.prompt_tokens + 32);
    // A request may ask for fewer, never for more.
    CompletionRequest fewer = req;
    fewer.max_suffix_tokens = 24;
    auto cut = c->complete(fewer);
    ASSERT_TRUE(cut.ok());
    EXPECT_LE(cut->stats.prompt_tokens, bare->stats.prompt_tokens + 24);
    EXPECT_GT(cut->stats.prompt_tokens, bare->stats.prompt_tokens + 8);
    CompletionRequest more = req;
    more.max_suffix_tokens = 400;
    auto capped = c->complete(more);
    ASSERT_TRUE(capped.ok());
    EXPECT_EQ(capped->stats.prompt_tokens, r->stats.prompt_tokens);
}

TEST(EngineCompleter, RewriteWithoutChatTemplateUsesFim) {
    auto c = make_completer();
    ASSERT_NE(c, nullptr);
    EXPECT_FALSE(c->has_chat_template());
    RewriteRequest req;
    req.language = "python";
    req.instruction = "Simplify";
    req.prefix = "def total(xs):\n";
    req.code = "    s = 0\n    for x in xs:\n        s = s + x\n    return s\n";
    req.max_tokens = 24;
    auto r = c->rewrite(req);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_GT(r->stats.generated_tokens, 0);
    EXPECT_LE(std::count(r->text.begin(), r->text.end(), '\n'), 4 * 2 + 4);
}

}  // namespace
}  // namespace hearth
