// Scheduling of model work: cancellation, supersession, debounce, request storms,
// prefill progress, and one reply per request throughout.
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "in_process_server.h"
#include "latency_replay.h"

using namespace hearth::lsp;
using namespace std::chrono_literals;

namespace {

json pos(int line, int character) {
    return json{{"line", line}, {"character", character}};
}

json inline_params(const std::string& uri, int line, int character, int trigger = 1) {
    return json{{"textDocument", {{"uri", uri}}},
                {"position", pos(line, character)},
                {"context", {{"triggerKind", trigger}}}};
}

class LspScheduling : public ::testing::Test {
  protected:
    void start(int debounce_ms = 0, size_t max_pending = 64, json caps = json::object()) {
        LspServerOptions o;
        o.settings.debounce_ms = debounce_ms;
        o.max_pending_completions = max_pending;
        o.progress_min_tokens = 16;
        server = std::make_unique<InProcessServer>(o, InProcessServer::fake_factory(fake));
        if (!caps.contains("textDocument"))
            caps["textDocument"] = {{"inlineCompletion", json::object()}};
        client().initialize(caps);
        ASSERT_FALSE(client().wait_for("hearth/status").is_null());  // model loaded
    }
    MemoryClient& client() { return server->client(); }
    void open(const std::string& uri, const std::string& text) {
        client().notify(
            "textDocument/didOpen",
            {{"textDocument",
              {{"uri", uri}, {"languageId", "python"}, {"version", 1}, {"text", text}}}});
    }
    // Waits until the fake completer is inside a call.
    bool wait_running() {
        for (int i = 0; i < 2000; ++i) {
            if (fake->running.load() > 0) return true;
            std::this_thread::sleep_for(1ms);
        }
        return false;
    }
    json status() {
        return client().request("workspace/executeCommand",
                                {{"command", "hearth.status"}})["result"];
    }

    std::shared_ptr<FakeCompleterState> fake = std::make_shared<FakeCompleterState>();
    std::unique_ptr<InProcessServer> server;
};

}  // namespace

TEST_F(LspScheduling, CancelRequestStopsRunningWork) {
    fake->delay = 5s;
    start();
    open("file:///a.py", "x = \n");
    json id =
        client().send_request("textDocument/inlineCompletion", inline_params("file:///a.py", 0, 4));
    ASSERT_TRUE(wait_running());
    auto t0 = std::chrono::steady_clock::now();
    client().notify("$/cancelRequest", {{"id", id}});
    json r = client().wait_response(id);
    auto waited = std::chrono::steady_clock::now() - t0;
    ASSERT_TRUE(r.contains("error")) << r;
    EXPECT_EQ(r["error"]["code"], -32800);
    EXPECT_LT(waited, 2s);
    EXPECT_EQ(fake->cancelled_calls.load(), 1);
    EXPECT_EQ(client().responses_for(id), 1u);
    // Cancelling something already answered is harmless.
    client().notify("$/cancelRequest", {{"id", id}});
    client().notify("$/cancelRequest", {{"id", "never-sent"}});
    EXPECT_EQ(status()["state"], "ready");
}

TEST_F(LspScheduling, CancelQueuedRequestIsAnsweredAtOnce) {
    fake->delay = 3s;
    start();
    open("file:///a.py", "a = \n");
    open("file:///b.py", "b = \n");
    json running =
        client().send_request("textDocument/inlineCompletion", inline_params("file:///a.py", 0, 4));
    ASSERT_TRUE(wait_running());
    json queued =
        client().send_request("textDocument/inlineCompletion", inline_params("file:///b.py", 0, 4));
    client().notify("$/cancelRequest", {{"id", queued}});
    json r = client().wait_response(queued);
    EXPECT_EQ(r["error"]["code"], -32800);
    EXPECT_EQ(fake->complete_calls.load(), 1);  // the queued one never reached the model
    client().notify("$/cancelRequest", {{"id", running}});
    EXPECT_EQ(client().wait_response(running)["error"]["code"], -32800);
}

TEST_F(LspScheduling, NewerRequestForTheSameDocumentSupersedes) {
    fake->delay = 300ms;
    fake->completion = "done";
    start();
    open("file:///a.py", "x = \n");
    json first =
        client().send_request("textDocument/inlineCompletion", inline_params("file:///a.py", 0, 4));
    ASSERT_TRUE(wait_running());
    // Both in one write, so they normally reach the loop before the first call returns.
    json second = 1002;
    json third = 1003;
    server->transport().client_write(
        frame_message(dump_json(make_request(second, "textDocument/inlineCompletion",
                                             inline_params("file:///a.py", 0, 4)))) +
        frame_message(dump_json(make_request(third, "textDocument/inlineCompletion",
                                             inline_params("file:///a.py", 0, 4)))));
    // The pending second is answered at once (empty), the running first when its call
    // notices `cancelled`, and only the third gets text.
    json r2 = client().wait_response(second);
    EXPECT_EQ(r2["result"]["items"], json::array());
    json r1 = client().wait_response(first);
    EXPECT_EQ(r1["result"]["items"], json::array());
    json r3 = client().wait_response(third);
    ASSERT_EQ(r3["result"]["items"].size(), 1u) << r3;
    EXPECT_EQ(r3["result"]["items"][0]["insertText"], "done");
    // Usually 2 calls (first, third); 3 when the second started before the third arrived.
    EXPECT_GE(fake->complete_calls.load(), 2);
    EXPECT_LE(fake->complete_calls.load(), 3);
    EXPECT_EQ(fake->cancelled_calls.load(), fake->complete_calls.load() - 1);
    EXPECT_EQ(fake->max_running.load(), 1);
}

TEST_F(LspScheduling, DebounceCoalescesAutomaticRequests) {
    start(/*debounce_ms=*/150);
    open("file:///a.py", "x = \n");
    auto t0 = std::chrono::steady_clock::now();
    std::vector<json> ids;
    for (int i = 0; i < 5; ++i) {
        ids.push_back(client().send_request("textDocument/inlineCompletion",
                                            inline_params("file:///a.py", 0, 4, 2)));
    }
    json last = client().wait_response(ids.back());
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 150ms);
    EXPECT_EQ(last["result"]["items"].size(), 1u);
    for (size_t i = 0; i + 1 < ids.size(); ++i) {
        EXPECT_EQ(client().wait_response(ids[i])["result"]["items"], json::array());
    }
    EXPECT_EQ(fake->complete_calls.load(), 1);
    // Invoked requests do not wait.
    t0 = std::chrono::steady_clock::now();
    client().request("textDocument/inlineCompletion", inline_params("file:///a.py", 0, 4, 1));
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 140ms);
}

TEST_F(LspScheduling, RequestStormStaysBoundedAndTheNewestIsServed) {
    fake->delay = 2ms;
    start(/*debounce_ms=*/0, /*max_pending=*/8);
    open("file:///a.py", "def f():\n    return \n");
    constexpr int kStorm = 500;
    std::vector<json> ids;
    ids.reserve(kStorm);
    for (int i = 0; i < kStorm; ++i) {
        ids.push_back(client().send_request("textDocument/inlineCompletion",
                                            inline_params("file:///a.py", 1, 11, 1 + i % 2)));
    }
    json last = client().wait_response(ids.back());
    ASSERT_EQ(last["result"]["items"].size(), 1u) << last;
    int empty = 0;
    for (int i = 0; i + 1 < kStorm; ++i) {
        json r = client().wait_response(ids[i]);
        ASSERT_TRUE(r.contains("result")) << r;
        if (r["result"]["items"].empty()) ++empty;
    }
    for (const auto& id : ids) EXPECT_EQ(client().responses_for(id), 1u);
    EXPECT_GT(empty, kStorm / 2);                        // most were superseded...
    EXPECT_LT(fake->complete_calls.load(), kStorm / 2);  // ...without reaching the model
    EXPECT_EQ(fake->max_running.load(), 1);
    EXPECT_LE(status()["pendingCompletionsHighWater"].get<int>(), 1);  // one slot per document
}

TEST_F(LspScheduling, FloodOfMessagesIsAbsorbedWithBoundedBacklog) {
    start();
    open("file:///a.py", "x\n");
    std::string flood;
    for (int i = 0; i < 20000; ++i) {
        flood += frame_message(
            R"({"jsonrpc":"2.0","method":"$/progress","params":{"token":1,"value":{}}})");
    }
    for (int i = 0; i < 200; ++i) {
        flood += frame_message(dump_json(make_request(100000 + i, "textDocument/inlineCompletion",
                                                      inline_params("file:///a.py", 0, 1))));
    }
    server->transport().client_write(flood);
    for (int i = 0; i < 200; ++i) {
        json r = client().wait_response(100000 + i);
        ASSERT_TRUE(r.contains("result")) << i;
    }
    EXPECT_LE(status()["backlogHighWater"].get<int>(), 1024);
}

TEST_F(LspScheduling, StormAcrossDocumentsIsCappedByMaxPending) {
    fake->delay = 50ms;
    start(/*debounce_ms=*/0, /*max_pending=*/8);
    for (int d = 0; d < 40; ++d) open("file:///d" + std::to_string(d) + ".py", "x = \n");
    std::vector<json> ids;
    for (int d = 0; d < 40; ++d) {
        ids.push_back(
            client().send_request("textDocument/inlineCompletion",
                                  inline_params("file:///d" + std::to_string(d) + ".py", 0, 4)));
    }
    json s = status();
    EXPECT_LE(s["pendingCompletionsHighWater"].get<int>(), 8);
    // Everything is answered exactly once; the evicted ones at once with no items.
    int with_items = 0;
    for (const auto& id : ids) {
        json r = client().wait_response(id);
        ASSERT_TRUE(r.contains("result")) << r;
        with_items += r["result"]["items"].empty() ? 0 : 1;
        EXPECT_EQ(client().responses_for(id), 1u);
    }
    // 8 waiting + the running one; a few more if the model finished some while the
    // requests were still arriving.
    EXPECT_GE(with_items, 8);
    EXPECT_LE(with_items, 16);
}

TEST_F(LspScheduling, LongPrefillReportsProgressAndShutdownCancelsWork) {
    fake->delay = 100ms;
    fake->progress_steps = 4;
    start(0, 64,
          json{{"window", {{"workDoneProgress", true}}},
               {"textDocument", {{"inlineCompletion", json::object()}}}});
    open("file:///a.py", std::string(400, 'x') + "\n");
    client().notifications();  // forget the model load's progress
    json r =
        client().request("textDocument/inlineCompletion", inline_params("file:///a.py", 0, 400));
    ASSERT_TRUE(r.contains("result"));
    bool saw_report = false;
    bool saw_end = false;
    for (const auto& m : client().notifications()) {
        if (m.value("method", "") != "$/progress") continue;
        std::string kind = m["params"]["value"]["kind"];
        saw_report = saw_report || kind == "report";
        saw_end = saw_end || kind == "end";
    }
    EXPECT_TRUE(saw_report);
    EXPECT_TRUE(saw_end);

    // shutdown answers queued work and stops the running call.
    fake->progress_steps = 0;
    fake->delay = 5s;
    json running = client().send_request("textDocument/inlineCompletion",
                                         inline_params("file:///a.py", 0, 400));
    ASSERT_TRUE(wait_running());
    json down = client().request("shutdown", nullptr);
    EXPECT_TRUE(down.contains("result"));
    EXPECT_EQ(client().wait_response(running)["error"]["code"], -32800);
    client().notify("exit", nullptr);
    EXPECT_EQ(server->wait_exit(), 0);
}

TEST_F(LspScheduling, ExitWhileTheModelRunsDoesNotHang) {
    fake->delay = 10s;
    start();
    open("file:///a.py", "x\n");
    client().send_request("textDocument/inlineCompletion", inline_params("file:///a.py", 0, 1));
    ASSERT_TRUE(wait_running());
    auto t0 = std::chrono::steady_clock::now();
    client().notify("exit", nullptr);
    EXPECT_EQ(server->wait_exit(5s), 1);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
}

TEST(LspLatencyReplay, TypesTheLinesBackAndMeasuresEveryRequest) {
    EXPECT_EQ(percentile({}, 50), 0);
    EXPECT_EQ(percentile({5, 1, 3, 2, 4}, 50), 3);
    EXPECT_EQ(percentile({5, 1, 3, 2, 4}, 95), 5);
    EXPECT_EQ(percentile({5, 1, 3, 2, 4}, 0), 1);

    auto fake = std::make_shared<FakeCompleterState>();
    fake->completion = "x";
    ReplayOptions o;
    o.text = "a\nb\nint f() {\n    return 1;\n}\nc\n";
    o.start_fraction = 0.4;
    o.lines = 2;
    o.settings.debounce_ms = 0;
    auto r = replay_typing_session(o, InProcessServer::fake_factory(fake));
    ASSERT_TRUE(r.ok()) << r.error().message;
    // Lines 2-3 ("int f() {\n    return 1;\n") are typed back: 24 keystrokes.
    EXPECT_EQ(r->requests, 24);
    EXPECT_EQ(r->with_items, 24);
    EXPECT_EQ(r->latencies_ms.size(), 24u);
    EXPECT_LE(r->p50_ms, r->p95_ms);
    EXPECT_LE(r->p95_ms, r->max_ms);
    EXPECT_EQ(fake->complete_calls.load(), 24);
    // The last request saw the whole typed text before the cursor.
    EXPECT_EQ(fake->last_completion().prefix, "a\nb\nint f() {\n    return 1;\n");
    EXPECT_EQ(fake->last_completion().suffix, "\n}\nc\n");

    // An editor that closes brackets: the closer is inserted with the opener and typed
    // over later, so the requests in between have text after the cursor.
    o.text = "a\nb\nx = f(g[1])\nc\nd\n";
    o.lines = 1;
    o.autoclose = true;
    o.slow_ms = 0;  // every answer counts as slow
    r = replay_typing_session(o, InProcessServer::fake_factory(fake));
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->requests, 12);  // "x = f(g[1])\n"
    // Inside "f(" up to the last ")".
    const std::vector<bool> mid = {false, false, false, false, false, true,
                                   true,  true,  true,  true,  false, false};
    EXPECT_EQ(r->mid_line, mid);
    EXPECT_EQ(r->slow, 12);
    EXPECT_EQ(r->completions, 12);
    EXPECT_EQ(r->stop_reasons["eos"], 12);
    // The line ends as the file has it: every closer was typed over, none doubled.
    EXPECT_EQ(fake->last_completion().prefix, "a\nb\nx = f(g[1])\n");
    EXPECT_EQ(fake->last_completion().suffix, "\nc\nd\n");

    auto failing = replay_typing_session(
        o,
        [](const Settings&,
           const ProgressFn&) -> hearth::Expected<std::unique_ptr<hearth::Completer>> {
            return hearth::make_error("no such model");
        });
    ASSERT_FALSE(failing.ok());
    EXPECT_NE(failing.error().message.find("no such model"), std::string::npos);
}
