// libFuzzer target for the language server's input path: framing, message classification,
// typed params, lifecycle, document sync and the scheduling of model work.
//
// The first byte picks how the rest is fed to a real Server (over a MemoryTransport, with
// a FakeCompleter):
//   0: raw bytes, exactly as a client would write them (framing fuzzing);
//   1: one JSON body per line, each framed correctly (message and dispatch fuzzing);
//   2: like 1, after a valid initialize/initialized (reaches the handlers quickly).
// Then a sentinel request is sent and must be answered (no hang) unless the input left a
// body open or sent `exit`; the input is closed and run() must return 0 or 1. Every response id
// must belong to a request of the input, and no id may be answered more often than requests with it
// were sent. Violations trap.
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "fake_completer.h"
#include "framing.h"
#include "in_process_server.h"
#include "json_rpc.h"

namespace {

using namespace hearth::lsp;

void check(bool ok) {
    if (!ok) __builtin_trap();
}

const char* const kInitialize =
    R"({"jsonrpc":"2.0","id":"fuzz-init","method":"initialize","params":{"capabilities":{)"
    R"("general":{"positionEncodings":["utf-16"]},"window":{"workDoneProgress":true},)"
    R"("workspace":{"applyEdit":true},"textDocument":{"inlineCompletion":{},"codeAction":{)"
    R"("dataSupport":true,"resolveSupport":{"properties":["edit"]},"codeActionLiteralSupport":{}}}}}})";
const char* const kInitialized = R"({"jsonrpc":"2.0","method":"initialized","params":{}})";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const bool quiet = [] {
        spdlog::set_level(spdlog::level::off);
        return true;
    }();
    (void)quiet;
    if (size == 0) return 0;
    const int mode = data[0] % 3;
    std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);

    std::string bytes;
    if (mode == 2) bytes += frame_message(kInitialize) + frame_message(kInitialized);
    if (mode == 0) {
        bytes.append(input);
    } else {
        size_t start = 0;
        while (start <= input.size()) {
            size_t nl = input.find('\n', start);
            if (nl == std::string_view::npos) nl = input.size();
            if (nl > start) bytes += frame_message(input.substr(start, nl - start));
            start = nl + 1;
        }
    }

    // What the server must answer: requests per id, as the server itself will see them.
    std::map<std::string, int> requests;
    size_t messages = 0;
    FramingLimits limits;
    limits.max_content_length = 1 << 20;
    // The sentinel is read as a message of its own unless the input left a body open
    // (its Content-Length then swallows the sentinel): only then may it go unanswered.
    bool expect_sentinel = false;
    bool exited = false;
    {
        FrameReader reader(limits);
        auto on_frame = [&](std::string body) {
            ++messages;
            Message m = parse_message(body);
            if (auto* r = std::get_if<Request>(&m)) ++requests[id_key(r->id)];
            if (auto* inv = std::get_if<InvalidMessage>(&m)) ++requests[id_key(inv->id)];
            if (auto* n = std::get_if<Notification>(&m); n && n->method == "exit") exited = true;
        };
        reader.feed(bytes + "\r\n\r\n", on_frame, [](std::string_view) {});
        expect_sentinel = !reader.mid_message() && !exited;
    }

    auto fake = std::make_shared<FakeCompleterState>();
    fake->complete_fn = [](const hearth::CompletionRequest& req) {
        std::string tail =
            req.prefix.substr(req.prefix.size() - std::min<size_t>(req.prefix.size(), 12));
        return tail + "\n  x\n" + req.suffix.substr(0, 16);
    };
    fake->rewrite_fn = [](const hearth::RewriteRequest& req) {
        return "```\n" + req.code + "\n```";
    };
    LspServerOptions options;
    options.framing = limits;
    options.settings.debounce_ms = 0;
    options.settings.log_level = "off";  // the server applies its setting at initialize
    options.max_pending_completions = 4;
    options.max_queued_rewrites = 2;
    options.index_workspace = false;  // an input may name any folder as its workspace
    int exit_code = -1;
    size_t responses_seen = 0;
    {
        InProcessServer server(options, InProcessServer::fake_factory(fake));
        MemoryTransport& t = server.transport();
        t.client_write(bytes);
        // The sentinel ends any half-read message first, so it is a frame of its own.
        t.client_write("\r\n\r\n");
        t.client_send(make_request("fuzz-sentinel", "workspace/executeCommand",
                                   json{{"command", "hearth.status"}}));
        std::map<std::string, int> answered;
        bool sentinel = false;
        auto deadline =
            std::chrono::steady_clock::now() + std::chrono::seconds(expect_sentinel ? 10 : 0);
        while (!sentinel) {
            auto m = t.client_next(std::chrono::milliseconds(expect_sentinel ? 100 : 1));
            if (!m) {
                if (std::chrono::steady_clock::now() >= deadline) break;
                continue;
            }
            check(m->is_object());
            if (!m->contains("id") || m->contains("method")) continue;  // notifications, requests
            ++responses_seen;
            std::string key = id_key((*m)["id"]);
            if (key == id_key("fuzz-sentinel")) {
                sentinel = true;
                continue;
            }
            if ((*m)["id"].is_null()) continue;  // errors for unreadable messages
            check(++answered[key] <= requests[key]);
        }
        check(sentinel || !expect_sentinel);  // otherwise the server hangs
        t.client_close();
        exit_code = server.wait_exit(std::chrono::seconds(10));
    }
    check(exit_code == 0 || exit_code == 1);
    check(responses_seen <= messages + 2);
    return 0;
}
