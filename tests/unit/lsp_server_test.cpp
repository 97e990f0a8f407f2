// The real server driven through the in-memory transport: lifecycle, protocol errors,
// text sync and encodings, inline and classic completion, code actions, commands,
// settings and status.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "in_process_server.h"

using namespace hearth::lsp;
using namespace std::chrono_literals;

namespace {

constexpr const char* kUri = "file:///w/main.py";

int code_of(const json& response) {
    return response.at("error").at("code").get<int>();
}

json pos(int line, int character) {
    return json{{"line", line}, {"character", character}};
}

json inline_params(const std::string& uri, int line, int character, int trigger = 1) {
    return json{{"textDocument", {{"uri", uri}}},
                {"position", pos(line, character)},
                {"context", {{"triggerKind", trigger}}}};
}

json inline_caps() {
    return json{{"textDocument", {{"inlineCompletion", json::object()}}}};
}

class LspServer : public ::testing::Test {
  protected:
    void start(LspServerOptions options = {}) {
        options.settings.debounce_ms = 0;
        server = std::make_unique<InProcessServer>(std::move(options),
                                                   InProcessServer::fake_factory(fake, loads));
    }
    MemoryClient& client() { return server->client(); }
    void open(const std::string& text, const std::string& uri = kUri, int version = 1) {
        client().notify(
            "textDocument/didOpen",
            {{"textDocument",
              {{"uri", uri}, {"languageId", "python"}, {"version", version}, {"text", text}}}});
    }
    // Waits until the model is loaded (the first status notification).
    void wait_ready() { ASSERT_FALSE(client().wait_for("hearth/status").is_null()); }

    std::shared_ptr<FakeCompleterState> fake = std::make_shared<FakeCompleterState>();
    std::shared_ptr<std::atomic<int>> loads = std::make_shared<std::atomic<int>>(0);
    std::unique_ptr<InProcessServer> server;
};

}  // namespace

TEST_F(LspServer, InitializeAdvertisesCapabilitiesAndServerInfo) {
    start();
    json r = client().initialize(inline_caps());
    ASSERT_TRUE(r.contains("result")) << r;
    const json& result = r["result"];
    EXPECT_EQ(result["serverInfo"]["name"], "hearth");
    EXPECT_EQ(result["serverInfo"]["version"], "0.1.0");
    const json& caps = result["capabilities"];
    EXPECT_EQ(caps["positionEncoding"], "utf-16");
    EXPECT_EQ(caps["textDocumentSync"]["change"], 2);
    EXPECT_EQ(caps["textDocumentSync"]["openClose"], true);
    EXPECT_EQ(caps["inlineCompletionProvider"], true);
    EXPECT_FALSE(caps.contains("completionProvider"));  // the client has inline completion
    EXPECT_EQ(caps["codeActionProvider"]["codeActionKinds"],
              json::array({"quickfix", "refactor.rewrite"}));
    EXPECT_EQ(caps["executeCommandProvider"]["commands"],
              json::array({"hearth.applyRewrite", "hearth.status", "hearth.reloadModel",
                           "hearth.clearCache"}));
}

TEST_F(LspServer, Utf8WhenOfferedAndClassicCompletionForOtherClients) {
    start();
    json r = client().initialize(json{{"general", {{"positionEncodings", {"utf-16", "utf-8"}}}}});
    EXPECT_EQ(r["result"]["capabilities"]["positionEncoding"], "utf-8");
    EXPECT_TRUE(r["result"]["capabilities"].contains("completionProvider"));
}

TEST_F(LspServer, LifecycleErrorsAndExitCodes) {
    start();
    json early = client().request("textDocument/inlineCompletion", inline_params(kUri, 0, 0));
    EXPECT_EQ(code_of(early), -32002);
    client().initialize();
    EXPECT_EQ(code_of(client().request("initialize", {{"capabilities", json::object()}})), -32600);
    EXPECT_EQ(code_of(client().request("no/such/method", json::object())), -32601);
    EXPECT_EQ(code_of(client().request("$/no.such.request", json::object())), -32601);
    json down = client().request("shutdown", nullptr);
    EXPECT_TRUE(down.contains("result") && down["result"].is_null()) << down;
    EXPECT_EQ(code_of(client().request("textDocument/completion", json::object())), -32600);
    client().notify("exit", nullptr);
    EXPECT_EQ(server->wait_exit(), 0);
}

TEST_F(LspServer, ExitWithoutShutdownIsOne) {
    start();
    client().initialize();
    client().notify("exit", nullptr);
    EXPECT_EQ(server->wait_exit(), 1);
}

TEST_F(LspServer, EndOfInputWithoutShutdownIsOne) {
    start();
    client().initialize();
    server->transport().client_close();
    EXPECT_EQ(server->wait_exit(), 1);
}

TEST_F(LspServer, HostileBytesGetErrorsAndTheServerKeepsServing) {
    start();
    client().initialize();
    MemoryTransport& t = server->transport();
    t.client_write(frame_message("{oops"));
    t.client_write(frame_message("[]"));
    t.client_write(frame_message(R"({"jsonrpc":"2.0","id":1.5,"method":"x"})"));
    t.client_write(frame_message(R"({"jsonrpc":"2.0","id":77,"method":"shutdown","params":"s"})"));
    t.client_write("Garbage-Without-Colon\r\n\r\n{\"x\":1}");
    t.client_write("Content-Length: 5\r\nContent-Length: 5\r\n\r\n{}{}{");
    t.client_write(frame_message(std::string(500, '[') + std::string(500, ']')));
    t.client_write(frame_message(R"({"jsonrpc":"2.0","method":"unknown/notification"})"));
    t.client_write(frame_message(R"({"jsonrpc":"2.0","method":"$/unknown"})"));
    std::vector<int> codes;
    for (int i = 0; i < 5; ++i) {
        auto m = t.client_next(5s);
        ASSERT_TRUE(m.has_value());
        if (m->contains("method")) {  // window/logMessage and the like
            --i;
            continue;
        }
        EXPECT_TRUE((*m)["id"].is_null() || (*m)["id"] == 77) << *m;
        codes.push_back((*m)["error"]["code"].get<int>());
    }
    EXPECT_EQ(codes, (std::vector<int>{-32700, -32600, -32600, -32600, -32700}));
    json status = client().request("workspace/executeCommand", {{"command", "hearth.status"}});
    EXPECT_TRUE(status.contains("result")) << status;
}

TEST_F(LspServer, OversizedMessageIsSkippedAndTheNextOneServed) {
    LspServerOptions o;
    o.framing.max_content_length = 1024;
    start(o);
    client().initialize();
    std::string big = R"({"jsonrpc":"2.0","id":900,"method":"x","params":{"p":")" +
                      std::string(5000, 'a') + "\"}}";
    server->transport().client_write(frame_message(big));
    json status = client().request("workspace/executeCommand", {{"command", "hearth.status"}});
    EXPECT_TRUE(status.contains("result")) << status;
    EXPECT_EQ(client().responses_for(900), 0u);
}

TEST_F(LspServer, InvalidParamsNameTheField) {
    start();
    client().initialize();
    json p = inline_params(kUri, 0, 0);
    p["position"]["line"] = "zero";
    json r = client().request("textDocument/inlineCompletion", p);
    EXPECT_EQ(code_of(r), -32602);
    EXPECT_EQ(r["error"]["message"], "params.position.line: expected a non-negative integer");
    p = inline_params(kUri, 0, 0);
    p["context"]["triggerKind"] = 7;
    r = client().request("textDocument/inlineCompletion", p);
    EXPECT_EQ(code_of(r), -32602);
    EXPECT_EQ(r["error"]["message"],
              "params.context.triggerKind: expected 1 (Invoked) or 2 (Automatic)");
}

TEST_F(LspServer, InlineCompletionSendsPrefixSuffixAndReplies) {
    fake->completion = "a + b";
    start();
    client().initialize(inline_caps());
    wait_ready();
    open("def add(a, b):\n    return \n\nprint(add(1, 2))\n");
    json r = client().request("textDocument/inlineCompletion", inline_params(kUri, 1, 11));
    ASSERT_TRUE(r.contains("result")) << r;
    const json& items = r["result"]["items"];
    ASSERT_EQ(items.size(), 1u);
    EXPECT_EQ(items[0]["insertText"], "a + b");
    EXPECT_EQ(items[0]["range"], json({{"start", pos(1, 11)}, {"end", pos(1, 11)}}));
    hearth::CompletionRequest last = fake->last_completion();
    EXPECT_EQ(last.prefix, "def add(a, b):\n    return ");
    EXPECT_EQ(last.suffix, "\n\nprint(add(1, 2))\n");
    EXPECT_EQ(last.path, "/w/main.py");
    EXPECT_EQ(last.max_tokens, 128);
    EXPECT_FALSE(last.single_line);

    json status = client().wait_for("hearth/status");
    ASSERT_FALSE(status.is_null());
    for (const char* key :
         {"backend", "device", "prompt_tokens", "reused_tokens", "restored_tokens",
          "prefilled_tokens", "generated_tokens", "ms_total", "tokens_per_second"}) {
        EXPECT_TRUE(status["params"].contains(key)) << key;
    }
    EXPECT_EQ(status["params"]["backend"], "fake");
    EXPECT_EQ(status["params"]["event"], "completion");
}

TEST_F(LspServer, PostProcessingAppliesBeforeTheReply) {
    fake->completion = "x, y)\n    more = 1\nnot_in_block()";
    start();
    client().initialize(inline_caps());
    wait_ready();
    open("def f():\n    g()\n");
    // Cursor between "g(" and ")": the completion's ")" is already there, and the
    // request is single-line because text follows the cursor.
    json r = client().request("textDocument/inlineCompletion", inline_params(kUri, 1, 6));
    ASSERT_EQ(r["result"]["items"].size(), 1u) << r;
    EXPECT_EQ(r["result"]["items"][0]["insertText"], "x, y)\n    more = 1");
    EXPECT_TRUE(fake->last_completion().single_line);

    fake->completion = "   \n  ";
    r = client().request("textDocument/inlineCompletion", inline_params(kUri, 1, 4));
    EXPECT_EQ(r["result"]["items"], json::array());
}

TEST_F(LspServer, StopRulesEndGenerationWhereTheyCutWithTheSameAnswer) {
    // The model would go on to the next function; the block ends at its first character.
    fake->completion = " a + b\n\ndef other():\n    return 1\n";
    start();
    client().initialize(inline_caps());
    wait_ready();
    open("def add(a, b):\n    return\n");
    json r = client().request("textDocument/inlineCompletion", inline_params(kUri, 1, 10));
    ASSERT_EQ(r["result"]["items"].size(), 1u) << r;
    EXPECT_EQ(r["result"]["items"][0]["insertText"], " a + b");
    json status = client().wait_for("hearth/status");
    ASSERT_FALSE(status.is_null());
    EXPECT_EQ(status["params"]["stop_reason"], "block_end");
    EXPECT_EQ(status["params"]["cut_by"], "block_end");
    // What the rules saw: the text as far as the first character of the next block.
    std::string reason;
    hearth::CompletionRequest last = fake->last_completion();
    ASSERT_TRUE(last.stop_on_text);
    EXPECT_FALSE(last.stop_on_text(" a + b\n\n", reason));
    EXPECT_TRUE(last.stop_on_text(" a + b\n\nd", reason));
    EXPECT_EQ(reason, "block_end");
}

TEST_F(LspServer, AutomaticRequestsGetTheSmallerTokenBudget) {
    start();
    client().initialize(inline_caps());
    wait_ready();
    open("x = f(\ny = 2\n");
    client().request("textDocument/inlineCompletion", inline_params(kUri, 0, 6, 2));
    EXPECT_EQ(fake->last_completion().max_tokens, 48);
    EXPECT_EQ(fake->last_completion().max_suffix_tokens, 128);
    json status = client().wait_for("hearth/status");
    ASSERT_FALSE(status.is_null());
    EXPECT_EQ(status["params"]["automatic"], true);
    EXPECT_GE(status["params"]["ms_queue"].get<double>(), 0.0);
    EXPECT_GE(status["params"]["ms_reply"].get<double>(),
              status["params"]["ms_queue"].get<double>());
    client().request("textDocument/inlineCompletion", inline_params(kUri, 0, 6, 1));
    EXPECT_EQ(fake->last_completion().max_tokens, 128);
    EXPECT_EQ(fake->last_completion().max_suffix_tokens, 0);  // the engine's own limit
    status = client().wait_for("hearth/status");
    ASSERT_FALSE(status.is_null());
    EXPECT_EQ(status["params"]["automatic"], false);
    // Mid-line (text after the cursor) the answer is the rest of one line: 32 at most.
    open("print()\n", "file:///w/other.py");
    client().request("textDocument/inlineCompletion", inline_params("file:///w/other.py", 0, 6, 2));
    EXPECT_TRUE(fake->last_completion().single_line);
    EXPECT_EQ(fake->last_completion().max_tokens, 32);
    client().request("textDocument/inlineCompletion", inline_params("file:///w/other.py", 0, 6, 1));
    EXPECT_EQ(fake->last_completion().max_tokens, 128);
    // maxTokens stays the ceiling.
    client().notify("workspace/didChangeConfiguration", {{"settings", {{"maxTokens", 20}}}});
    client().request("textDocument/inlineCompletion", inline_params(kUri, 0, 6, 2));
    EXPECT_EQ(fake->last_completion().max_tokens, 20);
    client().notify("workspace/didChangeConfiguration",
                    {{"settings", {{"maxTokens", 200}, {"maxTokensAutomatic", 64}}}});
    client().request("textDocument/inlineCompletion", inline_params(kUri, 0, 6, 2));
    EXPECT_EQ(fake->last_completion().max_tokens, 64);
}

TEST_F(LspServer, LatencyBudgetAnswersAutomaticRequestsWithTheCompleteLines) {
    // 44 characters at 5 ms each: the 50 ms budget runs out in the second line or later.
    fake->completion = "first = 1\nsecond = 2\nthird = 3\nfourth = 4\n";
    fake->char_delay = 5ms;
    start();
    client().initialize(inline_caps(), {{"automaticLatencyMs", 50}});
    wait_ready();
    open("\n");
    json r = client().request("textDocument/inlineCompletion", inline_params(kUri, 0, 0, 2));
    ASSERT_EQ(r["result"]["items"].size(), 1u) << r;
    const std::string text = r["result"]["items"][0]["insertText"];
    EXPECT_TRUE(text == "first = 1" || text == "first = 1\nsecond = 2" ||
                text == "first = 1\nsecond = 2\nthird = 3")
        << text;
    json status = client().wait_for("hearth/status");
    ASSERT_FALSE(status.is_null());
    EXPECT_EQ(status["params"]["stop_reason"], "latency_budget");
    // Never before a line is complete, however late.
    hearth::CompletionRequest last = fake->last_completion();
    std::string reason;
    EXPECT_FALSE(last.stop_on_text("first = ", reason));
    EXPECT_FALSE(last.stop_on_text("\n\n", reason));  // blank lines are no answer
    EXPECT_TRUE(last.stop_on_text("first = 1\nsec", reason));
    EXPECT_EQ(reason, "latency_budget");

    // Invoked requests are never cut short this way.
    r = client().request("textDocument/inlineCompletion", inline_params(kUri, 0, 0, 1));
    ASSERT_EQ(r["result"]["items"].size(), 1u) << r;
    EXPECT_EQ(r["result"]["items"][0]["insertText"],
              "first = 1\nsecond = 2\nthird = 3\nfourth = 4");
    status = client().wait_for("hearth/status");
    ASSERT_FALSE(status.is_null());
    EXPECT_EQ(status["params"]["stop_reason"], "eos");

    // 0 turns it off.
    client().notify("workspace/didChangeConfiguration",
                    {{"settings", {{"automaticLatencyMs", 0}}}});
    r = client().request("textDocument/inlineCompletion", inline_params(kUri, 0, 0, 2));
    ASSERT_EQ(r["result"]["items"].size(), 1u) << r;
    EXPECT_EQ(r["result"]["items"][0]["insertText"],
              "first = 1\nsecond = 2\nthird = 3\nfourth = 4");
}

TEST_F(LspServer, AutomaticTriggerSkipsTheMiddleOfAWord) {
    start();
    client().initialize(inline_caps());
    wait_ready();
    open("value = compute(x)\n");
    json r = client().request("textDocument/inlineCompletion", inline_params(kUri, 0, 10, 2));
    EXPECT_EQ(r["result"]["items"], json::array());
    EXPECT_EQ(fake->complete_calls.load(), 0);
    // Before closing punctuation only: allowed.
    r = client().request("textDocument/inlineCompletion", inline_params(kUri, 0, 17, 2));
    EXPECT_EQ(r["result"]["items"].size(), 1u);
    // Invoked explicitly: allowed anywhere.
    r = client().request("textDocument/inlineCompletion", inline_params(kUri, 0, 10, 1));
    EXPECT_EQ(r["result"]["items"].size(), 1u);
    EXPECT_EQ(fake->complete_calls.load(), 2);
}

TEST_F(LspServer, SelectedCompletionInfoIsExtended) {
    fake->completion = "(items)";
    start();
    client().initialize(inline_caps());
    wait_ready();
    open("total = le\n");
    json p = inline_params(kUri, 0, 10, 2);
    p["context"]["selectedCompletionInfo"] = {
        {"range", {{"start", pos(0, 8)}, {"end", pos(0, 10)}}}, {"text", "len"}};
    json r = client().request("textDocument/inlineCompletion", p);
    ASSERT_EQ(r["result"]["items"].size(), 1u) << r;
    EXPECT_EQ(r["result"]["items"][0]["insertText"], "len(items)");
    EXPECT_EQ(r["result"]["items"][0]["range"], json({{"start", pos(0, 8)}, {"end", pos(0, 10)}}));
    EXPECT_EQ(fake->last_completion().prefix, "total = len");
}

TEST_F(LspServer, Utf16AndUtf8PositionsWithMultiByteText) {
    // "é" 1 UTF-16 unit / 2 bytes, "中" 1 / 3, "😀" 2 / 4.
    const std::string line = "s = \"\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80\" + ";
    for (bool utf8 : {false, true}) {
        SCOPED_TRACE(utf8 ? "utf-8" : "utf-16");
        fake = std::make_shared<FakeCompleterState>();
        fake->completion = "x";
        start();
        json caps = inline_caps();
        if (utf8) caps["general"] = {{"positionEncodings", {"utf-8"}}};
        client().initialize(caps);
        wait_ready();
        open(line + "\n");
        // After the closing quote: UTF-16 10, UTF-8 15.
        int after_quote = utf8 ? 15 : 10;
        json r =
            client().request("textDocument/inlineCompletion", inline_params(kUri, 0, after_quote));
        ASSERT_EQ(r["result"]["items"].size(), 1u) << r;
        EXPECT_EQ(fake->last_completion().prefix, line.substr(0, 15));
        // Between the two halves of 😀 (UTF-16 8) or inside its bytes (UTF-8 11).
        json bad = client().request("textDocument/inlineCompletion",
                                    inline_params(kUri, 0, utf8 ? 11 : 8));
        EXPECT_EQ(code_of(bad), -32602);
        // An edit replacing 😀 with "!" in the negotiated encoding.
        json range = utf8 ? json{{"start", pos(0, 10)}, {"end", pos(0, 14)}}
                          : json{{"start", pos(0, 7)}, {"end", pos(0, 9)}};
        client().notify("textDocument/didChange",
                        {{"textDocument", {{"uri", kUri}, {"version", 2}}},
                         {"contentChanges", json::array({{{"range", range}, {"text", "!"}}})}});
        // The line end is now UTF-16 12 / UTF-8 15 (past it is clamped).
        r = client().request("textDocument/inlineCompletion", inline_params(kUri, 0, 100));
        ASSERT_EQ(r["result"]["items"].size(), 1u);
        EXPECT_EQ(fake->last_completion().prefix, "s = \"\xC3\xA9\xE4\xB8\xAD!\" + ");
        EXPECT_EQ(r["result"]["items"][0]["range"]["start"], pos(0, utf8 ? 15 : 12));
        server.reset();
    }
}

TEST_F(LspServer, OutOfRangeEditIsRejectedAndTheDocumentKept) {
    start();
    client().initialize(inline_caps());
    wait_ready();
    open("abc\n");
    client().notify(
        "textDocument/didChange",
        {{"textDocument", {{"uri", kUri}, {"version", 2}}},
         {"contentChanges", json::array({{{"range", {{"start", pos(5, 0)}, {"end", pos(5, 1)}}},
                                          {"text", "zzz"}}})}});
    json log;
    do {
        log = client().wait_for("window/logMessage");
        ASSERT_FALSE(log.is_null());
    } while (log["params"]["message"].get<std::string>().find("rejected") == std::string::npos);
    EXPECT_EQ(log["params"]["type"], 2);
    client().request("textDocument/inlineCompletion", inline_params(kUri, 0, 3));
    EXPECT_EQ(fake->last_completion().prefix, "abc");
    EXPECT_EQ(fake->last_completion().suffix, "\n");
}

TEST_F(LspServer, FullSyncDidCloseAndUnknownDocuments) {
    start();
    client().initialize(inline_caps());
    wait_ready();
    open("one\n");
    client().notify("textDocument/didChange",
                    {{"textDocument", {{"uri", kUri}, {"version", 2}}},
                     {"contentChanges", json::array({{{"text", "two\nthree"}}})}});
    client().notify("textDocument/didSave", {{"textDocument", {{"uri", kUri}}}});
    client().request("textDocument/inlineCompletion", inline_params(kUri, 1, 5));
    EXPECT_EQ(fake->last_completion().prefix, "two\nthree");
    client().notify("textDocument/didClose", {{"textDocument", {{"uri", kUri}}}});
    json r = client().request("textDocument/inlineCompletion", inline_params(kUri, 0, 0));
    EXPECT_EQ(r["result"]["items"], json::array());
    EXPECT_EQ(fake->complete_calls.load(), 1);
}

TEST_F(LspServer, ClassicCompletionReplacesTheWordBeforeTheCursor) {
    fake->completion = "urn a + b";
    start();
    client().initialize();
    wait_ready();
    open("def add(a, b):\n    ret\n");
    json r = client().request("textDocument/completion",
                              {{"textDocument", {{"uri", kUri}}}, {"position", pos(1, 7)}});
    ASSERT_TRUE(r.contains("result")) << r;
    EXPECT_EQ(r["result"]["isIncomplete"], true);
    ASSERT_EQ(r["result"]["items"].size(), 1u);
    const json& item = r["result"]["items"][0];
    EXPECT_EQ(item["label"], "return a + b");
    EXPECT_EQ(item["filterText"], "ret");
    EXPECT_EQ(item["insertTextFormat"], 1);
    EXPECT_EQ(item["kind"], 1);
    EXPECT_EQ(item["textEdit"]["newText"], "return a + b");
    EXPECT_EQ(item["textEdit"]["range"], json({{"start", pos(1, 4)}, {"end", pos(1, 7)}}));
}

TEST_F(LspServer, CodeActionsListCheaplyAndResolveIntoAnEdit) {
    fake->rewrite = "```python\ndef add(a, b):\n    \"\"\"Adds.\"\"\"\n    return a + b\n```";
    start();
    json caps = json::parse(R"({"textDocument": {"codeAction": {
        "dataSupport": true, "resolveSupport": {"properties": ["edit"]},
        "codeActionLiteralSupport": {"codeActionKind": {"valueSet": ["quickfix", "refactor"]}}}}})");
    json init = client().initialize(caps);
    EXPECT_EQ(init["result"]["capabilities"]["codeActionProvider"]["resolveProvider"], true);
    wait_ready();
    open("def add(a, b):\n    return a + b\n\nprint(add(1, 2))\n");
    json diag = {{"range", {{"start", pos(1, 4)}, {"end", pos(1, 10)}}},
                 {"message", "suspicious return"}};
    json r = client().request("textDocument/codeAction",
                              {{"textDocument", {{"uri", kUri}}},
                               {"range", {{"start", pos(0, 0)}, {"end", pos(0, 0)}}},
                               {"context", {{"diagnostics", json::array({diag})}}}});
    ASSERT_TRUE(r["result"].is_array()) << r;
    std::vector<std::string> titles;
    for (const auto& a : r["result"]) {
        titles.push_back(a["title"]);
        EXPECT_FALSE(a.contains("edit"));
        EXPECT_TRUE(a.contains("data"));
    }
    EXPECT_EQ(titles, (std::vector<std::string>{"Add documentation", "Simplify"}));
    EXPECT_EQ(fake->rewrite_calls.load(), 0);

    json resolved = client().request("codeAction/resolve", r["result"][0]);
    ASSERT_TRUE(resolved.contains("result")) << resolved;
    const json& edits = resolved["result"]["edit"]["changes"][kUri];
    ASSERT_EQ(edits.size(), 1u);
    EXPECT_EQ(edits[0]["range"], json({{"start", pos(0, 0)}, {"end", pos(2, 0)}}));
    EXPECT_EQ(edits[0]["newText"], "def add(a, b):\n    \"\"\"Adds.\"\"\"\n    return a + b\n");
    EXPECT_EQ(resolved["result"]["title"], "Add documentation");
    EXPECT_EQ(fake->last_rewrite().code, "def add(a, b):\n    return a + b\n");
    EXPECT_EQ(fake->last_rewrite().language, "python");

    // A selection lists "Rewrite selection…" and the quickfix for the diagnostic in it.
    r = client().request("textDocument/codeAction",
                         {{"textDocument", {{"uri", kUri}}},
                          {"range", {{"start", pos(1, 0)}, {"end", pos(1, 16)}}},
                          {"context", {{"diagnostics", json::array({diag})}}}});
    ASSERT_EQ(r["result"].size(), 4u) << r;
    EXPECT_EQ(r["result"][0]["title"], "Rewrite selection…");
    EXPECT_EQ(r["result"][3]["title"], "Fix: suspicious return");
    EXPECT_EQ(r["result"][3]["kind"], "quickfix");
    EXPECT_EQ(r["result"][3]["diagnostics"][0], diag);

    // After an edit the listed action is stale.
    client().notify("textDocument/didChange",
                    {{"textDocument", {{"uri", kUri}, {"version", 5}}},
                     {"contentChanges", json::array({{{"text", "x = 1\n"}}})}});
    json stale = client().request("codeAction/resolve", r["result"][0]);
    EXPECT_EQ(code_of(stale), -32801);
}

TEST_F(LspServer, CodeActionsWithoutResolveUseTheApplyRewriteCommand) {
    fake->rewrite = "y = 2";
    start();
    json caps = json::parse(
        R"({"workspace": {"applyEdit": true, "workspaceEdit": {"documentChanges": true}},
        "textDocument": {"codeAction": {"codeActionLiteralSupport": {"codeActionKind": {"valueSet": []}}}}})");
    client().initialize(caps);
    wait_ready();
    open("x = 1\n", kUri, 3);
    json applied_edit;
    client().on_server_request("workspace/applyEdit", [&](const json& params) {
        applied_edit = params;
        return json{{"applied", true}};
    });
    json r = client().request("textDocument/codeAction",
                              {{"textDocument", {{"uri", kUri}}},
                               {"range", {{"start", pos(0, 0)}, {"end", pos(0, 5)}}},
                               {"context", {{"diagnostics", json::array()}}}});
    ASSERT_EQ(r["result"].size(), 3u) << r;
    const json& action = r["result"][0];
    EXPECT_FALSE(action.contains("data"));
    ASSERT_TRUE(action.contains("command"));
    EXPECT_EQ(action["command"]["command"], "hearth.applyRewrite");

    json done = client().request("workspace/executeCommand", action["command"]);
    ASSERT_TRUE(done.contains("result")) << done;
    EXPECT_EQ(done["result"]["applied"], true);
    const json& change = applied_edit["edit"]["documentChanges"][0];
    EXPECT_EQ(change["textDocument"]["version"], 3);
    EXPECT_EQ(change["edits"][0]["newText"], "y = 2");
    EXPECT_EQ(fake->last_rewrite().instruction, "Improve this code");

    // An instruction given by the editor wins.
    json args = action["command"]["arguments"][0];
    args["instruction"] = "Rename x to y";
    client().request("workspace/executeCommand",
                     {{"command", "hearth.applyRewrite"}, {"arguments", json::array({args})}});
    EXPECT_EQ(fake->last_rewrite().instruction, "Rename x to y");

    // Bad arguments are InvalidParams with the path.
    json bad = client().request(
        "workspace/executeCommand",
        {{"command", "hearth.applyRewrite"}, {"arguments", json::array({{{"uri", 5}}})}});
    EXPECT_EQ(code_of(bad), -32602);
    EXPECT_EQ(bad["error"]["message"], "params.arguments[0].uri: expected a string");
}

TEST_F(LspServer, CodeActionsWithoutLiteralsAreCommands) {
    start();
    client().initialize(json{{"workspace", {{"applyEdit", true}}}});
    wait_ready();
    open("x = 1\n");
    json r =
        client().request("textDocument/codeAction",
                         {{"textDocument", {{"uri", kUri}}},
                          {"range", {{"start", pos(0, 0)}, {"end", pos(0, 0)}}},
                          {"context", {{"diagnostics", json::array()}, {"only", {"quickfix"}}}}});
    EXPECT_EQ(r["result"], json::array());  // `only` filters out the refactorings
    r = client().request("textDocument/codeAction",
                         {{"textDocument", {{"uri", kUri}}},
                          {"range", {{"start", pos(0, 0)}, {"end", pos(0, 0)}}},
                          {"context", {{"diagnostics", json::array()}}}});
    ASSERT_EQ(r["result"].size(), 2u);
    EXPECT_EQ(r["result"][0]["command"], "hearth.applyRewrite");
    EXPECT_EQ(r["result"][0]["title"], "Add documentation");
}

TEST_F(LspServer, SettingsFromInitializationOptionsAndConfigurationChanges) {
    LspServerOptions o;
    o.settings.model_path = "cli.gguf";
    start(o);
    json init_options = {{"hearth", {{"maxTokens", 64}, {"temperature", 9.5}, {"backend", "cpu"}}}};
    client().initialize(inline_caps(), init_options);
    json warn = client().wait_for("window/logMessage");
    ASSERT_FALSE(warn.is_null());
    EXPECT_NE(warn["params"]["message"].get<std::string>().find("temperature"), std::string::npos);
    wait_ready();
    json s = client().request("workspace/executeCommand", {{"command", "hearth.status"}})["result"];
    EXPECT_EQ(s["state"], "ready");
    EXPECT_EQ(s["backend"], "fake");
    EXPECT_EQ(s["settings"]["maxTokens"], 64);
    EXPECT_EQ(s["settings"]["temperature"], 0.0);  // rejected, default kept
    EXPECT_EQ(s["settings"]["model"], "cli.gguf");
    EXPECT_EQ(s["settings"]["backend"], "cpu");
    EXPECT_EQ(loads->load(), 1);

    // A non-engine setting applies without a reload; a model change reloads.
    client().notify("workspace/didChangeConfiguration",
                    {{"settings", {{"hearth", {{"maxLines", 3}}}}}});
    s = client().request("workspace/executeCommand", {{"command", "hearth.status"}})["result"];
    EXPECT_EQ(s["settings"]["maxLines"], 3);
    EXPECT_EQ(loads->load(), 1);
    client().notify("workspace/didChangeConfiguration",
                    {{"settings", {{"model", "other.gguf"}, {"contextSize", "big"}}}});
    ASSERT_FALSE(client().wait_for("hearth/status").is_null());  // reloaded
    EXPECT_EQ(loads->load(), 2);
    s = client().request("workspace/executeCommand", {{"command", "hearth.status"}})["result"];
    EXPECT_EQ(s["settings"]["model"], "other.gguf");
    EXPECT_EQ(s["settings"]["contextSize"], 4096);

    open("x\n");
    client().request("textDocument/inlineCompletion", inline_params(kUri, 0, 1));
    EXPECT_EQ(fake->last_completion().max_tokens, 64);
    EXPECT_EQ(fake->last_completion().max_lines, 3);
}

TEST(LspSettings, Validation) {
    Settings s;
    auto w = s.apply(json{{"maxTokens", 0},
                          {"debounceMs", 20},
                          {"logLevel", "loud"},
                          {"backend", 3},
                          {"cacheMaxMb", 100},
                          {"unknownKey", true}});
    EXPECT_EQ(w.size(), 3u);
    EXPECT_EQ(s.max_tokens, 128);
    EXPECT_EQ(s.debounce_ms, 20);
    EXPECT_EQ(s.log_level, "info");
    EXPECT_EQ(s.backend, "auto");
    EXPECT_EQ(s.cache_max_mb, 100);
    EXPECT_EQ(s.max_tokens_automatic, 48);
    EXPECT_EQ(s.automatic_latency_ms, 500);
    EXPECT_EQ(s.max_suffix_tokens_automatic, 128);
    w = s.apply(json{{"maxTokensAutomatic", 0},
                     {"automaticLatencyMs", -1},
                     {"maxSuffixTokensAutomatic", "all"}});
    EXPECT_EQ(w.size(), 3u);
    EXPECT_EQ(s.max_suffix_tokens_automatic, 128);
    EXPECT_TRUE(s.apply(json{{"maxSuffixTokensAutomatic", 0}}).empty());
    EXPECT_EQ(s.max_suffix_tokens_automatic, 0);
    EXPECT_EQ(s.max_tokens_automatic, 48);
    EXPECT_EQ(s.automatic_latency_ms, 500);
    w = s.apply(json{{"maxTokensAutomatic", 4096}, {"automaticLatencyMs", 0}});
    EXPECT_TRUE(w.empty());
    EXPECT_EQ(s.max_tokens_automatic, 4096);
    EXPECT_EQ(s.automatic_latency_ms, 0);
    EXPECT_EQ(s.to_json()["maxTokensAutomatic"], 4096);
    EXPECT_EQ(s.to_json()["automaticLatencyMs"], 0);
    EXPECT_EQ(s.apply(json{{"maxTokensAutomatic", 4097}}).size(), 1u);
    EXPECT_EQ(s.apply(json{{"automaticLatencyMs", 60001}}).size(), 1u);
    EXPECT_EQ(s.apply(json("nope")).size(), 1u);
    EXPECT_TRUE(s.apply(nullptr).empty());
    Settings t = s;
    t.apply(json{{"temperature", 0.5}});
    EXPECT_FALSE(t.engine_differs(s));
    t.apply(json{{"contextSize", 8192}});
    EXPECT_TRUE(t.engine_differs(s));
}

TEST_F(LspServer, ModelLoadFailureIsReportedAndTheServerKeepsServing) {
    server = std::make_unique<InProcessServer>(
        LspServerOptions{},
        [](const Settings&,
           const ProgressFn&) -> hearth::Expected<std::unique_ptr<hearth::Completer>> {
            return hearth::make_error("model.gguf: bad magic");
        });
    json caps = inline_caps();
    caps["textDocument"]["codeAction"] = json::parse(
        R"({"dataSupport": true, "resolveSupport": {"properties": ["edit"]}, "codeActionLiteralSupport": {}})");
    client().initialize(caps);
    json shown = client().wait_for("window/showMessage");
    ASSERT_FALSE(shown.is_null());
    EXPECT_NE(shown["params"]["message"].get<std::string>().find("bad magic"), std::string::npos);
    open("x = 1\n");
    json r = client().request("textDocument/inlineCompletion", inline_params(kUri, 0, 5));
    EXPECT_EQ(r["result"]["items"], json::array());
    json actions = client().request("textDocument/codeAction",
                                    {{"textDocument", {{"uri", kUri}}},
                                     {"range", {{"start", pos(0, 0)}, {"end", pos(0, 5)}}},
                                     {"context", {{"diagnostics", json::array()}}}});
    json resolved = client().request("codeAction/resolve", actions["result"][0]);
    EXPECT_EQ(code_of(resolved), -32803);
    EXPECT_NE(resolved["error"]["message"].get<std::string>().find("bad magic"), std::string::npos);
    json s = client().request("workspace/executeCommand", {{"command", "hearth.status"}})["result"];
    EXPECT_EQ(s["state"], "error");
}

TEST_F(LspServer, DynamicRegistrationAndTrace) {
    start();
    json caps = {{"textDocument", {{"inlineCompletion", {{"dynamicRegistration", true}}}}},
                 {"workspace", {{"didChangeConfiguration", {{"dynamicRegistration", true}}}}}};
    json init = client().initialize(caps);
    EXPECT_FALSE(init["result"]["capabilities"].contains("inlineCompletionProvider"));
    json reg = client().wait_for("client/registerCapability");
    ASSERT_FALSE(reg.is_null());
    const json& regs = reg["params"]["registrations"];
    ASSERT_EQ(regs.size(), 2u);
    EXPECT_EQ(regs[0]["method"], "textDocument/inlineCompletion");
    EXPECT_EQ(regs[1]["method"], "workspace/didChangeConfiguration");

    client().notify("$/setTrace", {{"value", "messages"}});
    client().request("workspace/executeCommand", {{"command", "hearth.status"}});
    json trace = client().wait_for("$/logTrace");
    ASSERT_FALSE(trace.is_null());
    EXPECT_NE(trace["params"]["message"].get<std::string>().find("workspace/executeCommand"),
              std::string::npos);
}

TEST_F(LspServer, ModelLoadReportsWorkDoneProgress) {
    start();
    client().initialize(json{{"window", {{"workDoneProgress", true}}}});
    json create = client().wait_for("window/workDoneProgress/create");
    ASSERT_FALSE(create.is_null());
    std::string token = create["params"]["token"];
    std::vector<std::string> kinds;
    while (kinds.empty() || kinds.back() != "end") {
        json p = client().wait_for("$/progress");
        ASSERT_FALSE(p.is_null());
        EXPECT_EQ(p["params"]["token"], token);
        kinds.push_back(p["params"]["value"]["kind"]);
    }
    EXPECT_EQ(kinds.front(), "begin");
    EXPECT_EQ(kinds.back(), "end");
}

TEST_F(LspServer, PathsAreDecodedRelativeToTheRoot) {
    start();
    client().request("initialize", {{"processId", nullptr},
                                    {"rootUri", "file:///home/me/my%20proj"},
                                    {"capabilities", inline_caps()}});
    client().notify("initialized", json::object());
    wait_ready();
    open("x = 1\n", "file:///home/me/my%20proj/src/a%2Bb.py");
    client().request("textDocument/inlineCompletion",
                     inline_params("file:///home/me/my%20proj/src/a%2Bb.py", 0, 5));
    EXPECT_EQ(fake->last_completion().path, "src/a+b.py");
    EXPECT_EQ(fake->last_completion().repo_name, "my proj");
    open("y\n", "file:///elsewhere/b.py");
    client().request("textDocument/inlineCompletion",
                     inline_params("file:///elsewhere/b.py", 0, 1));
    EXPECT_EQ(fake->last_completion().path, "/elsewhere/b.py");
}

TEST_F(LspServer, ExitsWhenTheEditorProcessIsGone) {
    pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) ::_exit(0);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    LspServerOptions o;
    o.parent_check_interval = 20ms;
    start(o);
    json r =
        client().request("initialize", {{"processId", child}, {"capabilities", json::object()}});
    ASSERT_TRUE(r.contains("result"));
    EXPECT_EQ(server->wait_exit(5s), 1);
}

TEST_F(LspServer, KeepsRunningWhileTheEditorLives) {
    LspServerOptions o;
    o.parent_check_interval = 10ms;
    start(o);
    client().request("initialize", {{"processId", ::getpid()}, {"capabilities", json::object()}});
    std::this_thread::sleep_for(100ms);
    json s = client().request("workspace/executeCommand", {{"command", "hearth.status"}});
    EXPECT_TRUE(s.contains("result"));
}

TEST_F(LspServer, ModelLoadsOnFirstUseWithoutInitialized) {
    fake->completion = "42";
    start();
    client().request("initialize", {{"processId", nullptr}, {"capabilities", inline_caps()}});
    open("x = \n");
    json r = client().request("textDocument/inlineCompletion", inline_params(kUri, 0, 4));
    ASSERT_EQ(r["result"]["items"].size(), 1u) << r;
    EXPECT_EQ(r["result"]["items"][0]["insertText"], "42");
    EXPECT_EQ(loads->load(), 1);
}
