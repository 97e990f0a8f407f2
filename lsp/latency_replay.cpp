#include "latency_replay.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "in_process_server.h"

namespace hearth::lsp {

double percentile(std::vector<double> values, double p) {
    if (values.empty()) return 0;
    std::sort(values.begin(), values.end());
    double rank = std::ceil(p / 100.0 * static_cast<double>(values.size()));
    size_t index = rank < 1 ? 0 : static_cast<size_t>(rank) - 1;
    return values[std::min(index, values.size() - 1)];
}

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

json position_json(int64_t line, int64_t character) {
    return json{{"line", line}, {"character", character}};
}

}  // namespace

Expected<ReplayResult> replay_typing_session(const ReplayOptions& options,
                                             CompleterFactory factory) {
    if (options.text.empty()) return make_error("replay: the source text is empty");
    // Split into lines (keeping the breaks) and cut out the lines to type.
    std::vector<std::string> lines;
    for (size_t start = 0; start < options.text.size();) {
        size_t nl = options.text.find('\n', start);
        size_t end = nl == std::string::npos ? options.text.size() : nl + 1;
        lines.push_back(options.text.substr(start, end - start));
        start = end;
    }
    size_t first = static_cast<size_t>(options.start_fraction * static_cast<double>(lines.size()));
    first = std::min(first, lines.size() - 1);
    size_t count = std::min(lines.size() - first, static_cast<size_t>(std::max(1, options.lines)));
    std::string before;
    std::string typed;
    std::string after;
    for (size_t i = 0; i < lines.size(); ++i) {
        (i < first ? before : i < first + count ? typed : after) += lines[i];
    }
    if (typed.size() > static_cast<size_t>(options.max_keystrokes)) {
        typed.resize(static_cast<size_t>(options.max_keystrokes));
    }
    // The typed text goes into an empty line, so the cursor is always at the end of its
    // line (what follows starts on the next line).
    after.insert(after.begin(), '\n');
    // Cursor position in UTF-8 (negotiated below): line and byte column.
    int64_t line = static_cast<int64_t>(first);
    int64_t column = 0;

    LspServerOptions server_options;
    server_options.settings = options.settings;
    InProcessServer server(server_options, std::move(factory));
    MemoryClient& client = server.client();
    json caps = {{"general", {{"positionEncodings", {"utf-8"}}}},
                 {"textDocument", {{"inlineCompletion", json::object()}}}};
    json init = client.initialize(caps);
    if (!init.contains("result"))
        return make_error("replay: initialize failed: " + dump_json(init));
    json status = client.wait_for("hearth/status");
    if (status.is_null()) return make_error("replay: the model did not load in time");
    if (status["params"].value("event", "") == "model_error") {
        return make_error("replay: " +
                          status["params"].value("message", std::string("model error")));
    }
    client.notify("textDocument/didOpen", {{"textDocument",
                                            {{"uri", options.uri},
                                             {"languageId", options.language_id},
                                             {"version", 1},
                                             {"text", before + after}}}});

    ReplayResult result;
    struct Sent {
        Clock::time_point keystroke;
        bool mid_line = false;
    };
    std::map<std::string, Sent> sent;  // by id_key, in flight
    auto on_response = [&](const json& id, const json& response) {
        auto it = sent.find(id_key(id));
        if (it == sent.end()) return;
        double ms = ms_since(it->second.keystroke);
        const bool mid_line = it->second.mid_line;
        sent.erase(it);
        const json& items = response.contains("result")
                                ? response["result"].value("items", json::array())
                                : json::array();
        bool newer_pending = !sent.empty();
        if (items.empty() && newer_pending) {
            ++result.superseded;
            return;
        }
        result.latencies_ms.push_back(ms);
        result.mid_line.push_back(mid_line);
        if (ms > options.slow_ms) ++result.slow;
        if (!items.empty()) ++result.with_items;
    };

    auto collect_answered = [&] {
        std::vector<json> ids;
        for (const auto& [key, t] : sent) {
            json id = json::parse(key);
            if (client.responses_for(id) > 0) ids.push_back(std::move(id));
        }
        for (const auto& id : ids) on_response(id, client.wait_response(id));
    };

    auto t_start = Clock::now();
    int32_t version = 1;
    // With autoclose: the closers the editor inserted after the cursor, still to be typed
    // over (the rest of the cursor's line; a line break typed before them moves them down).
    std::string closers;
    for (char c : typed) {
        ++version;
        std::string insert(1, c);
        int64_t replace_end = column;
        if (options.autoclose) {
            if (!closers.empty() && c == closers.front()) {
                replace_end = column + 1;  // types over the closer
                closers.erase(0, 1);
            } else if (c == '(' || c == '[' || c == '{') {
                const char closer = c == '(' ? ')' : c == '[' ? ']' : '}';
                insert.push_back(closer);
                closers.insert(closers.begin(), closer);
            }
        }
        json change = {{"range",
                        {{"start", position_json(line, column)},
                         {"end", position_json(line, replace_end)}}},
                       {"text", insert}};
        const auto keystroke = Clock::now();
        client.notify("textDocument/didChange",
                      {{"textDocument", {{"uri", options.uri}, {"version", version}}},
                       {"contentChanges", json::array({change})}});
        if (c == '\n') {
            ++line;
            column = 0;
        } else {
            ++column;
        }
        json params = {{"textDocument", {{"uri", options.uri}}},
                       {"position", position_json(line, column)},
                       {"context", {{"triggerKind", 2}}}};
        json id = client.send_request("textDocument/inlineCompletion", params);
        sent[id_key(id)] = Sent{keystroke, !closers.empty()};
        ++result.requests;
        if (options.interval.count() == 0) {
            json response = client.wait_response(id);
            if (response.is_null())
                return make_error("replay: no response to a completion request");
            on_response(id, response);
        } else {
            // Type at a steady pace; responses are picked up (to within a millisecond)
            // while waiting for the next keystroke.
            auto next = Clock::now() + options.interval;
            while (Clock::now() < next) {
                client.drain(std::chrono::milliseconds(1));
                collect_answered();
            }
        }
    }
    // Whatever is still in flight (interval mode).
    auto deadline = Clock::now() + std::chrono::seconds(60);
    while (!sent.empty() && Clock::now() < deadline) {
        client.drain(std::chrono::milliseconds(1));
        collect_answered();
    }
    if (!sent.empty()) return make_error("replay: no response to a completion request");
    result.total_ms = ms_since(t_start);
    result.p50_ms = percentile(result.latencies_ms, 50);
    result.p95_ms = percentile(result.latencies_ms, 95);
    result.max_ms = percentile(result.latencies_ms, 100);
    // The server sends a call's status right after its reply; the reply to shutdown comes
    // after everything sent before it.
    client.request("shutdown", nullptr);
    for (const json& note : client.notifications()) {
        if (note.value("method", "") != "hearth/status") continue;
        const json& p = note.value("params", json::object());
        if (p.value("event", "") != "completion") continue;
        ++result.completions;
        result.mean_prefilled_tokens += p.value("prefilled_tokens", 0.0);
        result.mean_generated_tokens += p.value("generated_tokens", 0.0);
        result.mean_ms_prefill += p.value("ms_prefill", 0.0);
        result.mean_ms_decode += p.value("ms_decode", 0.0);
        ++result.stop_reasons[p.value("stop_reason", std::string())];
    }
    if (result.completions > 0) {
        const double n = result.completions;
        result.mean_prefilled_tokens /= n;
        result.mean_generated_tokens /= n;
        result.mean_ms_prefill /= n;
        result.mean_ms_decode /= n;
    }
    client.notify("exit", nullptr);
    return result;
}

}  // namespace hearth::lsp
