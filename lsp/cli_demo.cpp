// hearth demo: the real language server driven through a short edit session, printed
// the way an editor would show it. The server runs in-process on an in-memory
// transport (the same Server class `hearth lsp` runs on stdio); the demo plays the
// editor: initialize, open a file, ask for inline completions while "typing", a classic
// completion, then a code action, and shut down.
#include <unistd.h>

#include <cstdio>
#include <sstream>
#include <string>
#include <thread>

#include "cli.h"
#include "memory_transport.h"
#include "protocol.h"
#include "server.h"

namespace hearth::cli {
namespace {

using lsp::json;

struct Style {
    bool tty = false;
    std::string ghost(const std::string& s) const { return tty ? "\x1b[2;3m" + s + "\x1b[0m" : "\u00ab" + s + "\u00bb"; }
    std::string bold(const std::string& s) const { return tty ? "\x1b[1m" + s + "\x1b[0m" : s; }
    std::string dim(const std::string& s) const { return tty ? "\x1b[2m" + s + "\x1b[0m" : s; }
};

struct Doc {
    std::string uri = "file:///demo/stack.py";
    std::string text;
    int version = 1;
};

// Line/character (utf-8 code units: the demo negotiates utf-8) of the end of `text`.
json end_position(const std::string& text) {
    int line = 0;
    size_t last_nl = std::string::npos;
    for (size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '\n') {
            ++line;
            last_nl = i;
        }
    }
    const size_t col = last_nl == std::string::npos ? text.size() : text.size() - last_nl - 1;
    return json{{"line", line}, {"character", col}};
}

// Prints the document around the cursor with the ghost text inserted at `cursor`.
void show(const Style& st, const std::string& before, const std::string& ghost,
          const std::string& after) {
    std::string shown = before + st.ghost(ghost) + after;
    std::istringstream in(shown);
    std::string line;
    while (std::getline(in, line)) std::printf("    %s %s\n", st.dim("\u2502").c_str(), line.c_str());
}

void show_status(const Style& st, lsp::MemoryClient& client) {
    json s;
    do {  // model_loaded / model_error events come first; show the request's own
        s = client.wait_for("hearth/status");
    } while (!s.is_null() && s["params"].value("event", std::string()) != "completion" &&
             s["params"].value("event", std::string()) != "rewrite");
    if (s.is_null()) return;
    const json& p = s["params"];
    std::printf("    %s\n",
                st.dim("hearth/status: " + p.value("backend", std::string()) + ", " +
                       std::to_string(p.value("prompt_tokens", 0)) + " prompt tokens (" +
                       std::to_string(p.value("reused_tokens", 0)) + " reused, " +
                       std::to_string(p.value("prefilled_tokens", 0)) + " prefilled), " +
                       std::to_string(p.value("generated_tokens", 0)) + " generated, " +
                       std::to_string(static_cast<int>(p.value("ms_total", 0.0))) + " ms")
                    .c_str());
}

// Reads a reply's result as a protocol struct; false when it is missing or malformed.
template <class T>
bool read_result(const json& reply, T& out) {
    lsp::JsonReader r("result");
    const auto it = reply.find("result");
    return it != reply.end() && read(*it, out, r);
}

void change_full(lsp::MemoryClient& client, Doc& doc) {
    client.notify("textDocument/didChange",
                  {{"textDocument", {{"uri", doc.uri}, {"version", ++doc.version}}},
                   {"contentChanges", json::array({{{"text", doc.text}}})}});
}

int run_demo(const std::string& model, const std::string& backend) {
    Style st;
    st.tty = isatty(STDOUT_FILENO) != 0;
    lsp::MemoryTransport transport;
    lsp::LspServerOptions opts;
    opts.version = HEARTH_VERSION;
    opts.settings.model_path = model;
    opts.settings.backend = backend;
    opts.settings.context_size = 1024;
    opts.settings.debounce_ms = 0;
    // The demo leaves no files behind: no disk KV cache (`hearth bench-workspace` shows
    // that one at work).
    opts.settings.cache_max_mb = 0;
    lsp::Server server(transport, opts, engine_completer_factory());
    int server_exit = -1;
    std::thread loop([&] { server_exit = server.run(); });

    lsp::MemoryClient client(transport, std::chrono::seconds(120));
    std::printf("%s\n", st.bold("hearth demo: the language server driven like an editor drives it").c_str());
    std::printf("  model %s\n\n", model.c_str());

    json caps = {
        {"general", {{"positionEncodings", {"utf-8", "utf-16"}}}},
        {"window", {{"workDoneProgress", false}}},
        {"textDocument",
         {{"inlineCompletion", json::object()},
          {"completion", {{"completionItem", {{"snippetSupport", false}}}}},
          {"codeAction",
           {{"dataSupport", true},
            {"resolveSupport", {{"properties", {"edit"}}}},
            {"codeActionLiteralSupport",
             {{"codeActionKind", {{"valueSet", {"", "quickfix", "refactor", "refactor.rewrite"}}}}}}}}}}};
    json init = client.initialize(caps, {{"maxLines", 4}});
    if (!init.contains("result")) {
        std::printf("initialize failed: %s\n", init.dump().c_str());
        client.notify("exit", json::object());
        loop.join();
        return 1;
    }
    const json& info = init["result"]["serverInfo"];
    std::printf("%s %s, position encoding %s\n\n", st.bold("1. initialize:").c_str(),
                (info.value("name", std::string()) + " " + info.value("version", std::string())).c_str(),
                init["result"]["capabilities"].value("positionEncoding", std::string("utf-16")).c_str());

    Doc doc;
    doc.text =
        "class Stack:\n"
        "    def __init__(self):\n"
        "        self.items = []\n"
        "\n"
        "    def push(self, item):\n"
        "        ";
    client.notify("textDocument/didOpen", {{"textDocument",
                                            {{"uri", doc.uri},
                                             {"languageId", "python"},
                                             {"version", doc.version},
                                             {"text", doc.text}}}});
    auto ask_inline = [&](const char* title) {
        json reply = client.request(
            "textDocument/inlineCompletion",
            {{"textDocument", {{"uri", doc.uri}}},
             {"position", end_position(doc.text)},
             {"context", {{"triggerKind", 1}}}});
        lsp::InlineCompletionList list;
        const std::string text =
            read_result(reply, list) && !list.items.empty() ? list.items[0].insert_text : "";
        std::printf("%s\n", st.bold(title).c_str());
        show(st, doc.text, text, "");
        show_status(st, client);
        std::printf("\n");
        return text;
    };

    std::string accepted =
        ask_inline("2. open stack.py, cursor inside push(): inline completion (ghost text)");

    // The user accepts the suggestion and starts the next method.
    doc.text += accepted + "\n\n    def pop(self):\n        ";
    change_full(client, doc);
    accepted = ask_inline("3. accept it, type `def pop(self):` - the unchanged prefix is reused");

    doc.text += accepted + "\n\n\ndef read_file(path):\n    with open(path";
    change_full(client, doc);
    {
        json reply = client.request("textDocument/completion",
                                    {{"textDocument", {{"uri", doc.uri}}},
                                     {"position", end_position(doc.text)},
                                     {"context", {{"triggerKind", 1}}}});
        std::printf("%s\n", st.bold("4. textDocument/completion (for clients without inline completion)").c_str());
        lsp::CompletionList list;
        std::string text;
        std::string before = doc.text;
        if (read_result(reply, list) && !list.items.empty()) {
            // The edit replaces the word before the cursor (same line, utf-8 columns).
            const lsp::CompletionItem& it = list.items[0];
            text = it.new_text;
            const size_t line_start = doc.text.find_last_of('\n') + 1;
            before = doc.text.substr(0, line_start + it.range.start.character);
            std::printf("    item label: %s\n", it.label.c_str());
        }
        show(st, before, text, "");
        show_status(st, client);
        std::printf("\n");
        doc.text = before + text + "\n";
        change_full(client, doc);
    }

    {
        // Select the body of push() and ask for code actions.
        json range = {{"start", {{"line", 4}, {"character", 0}}}, {"end", {{"line", 6}, {"character", 0}}}};
        json reply = client.request("textDocument/codeAction",
                                    {{"textDocument", {{"uri", doc.uri}}},
                                     {"range", range},
                                     {"context", {{"diagnostics", json::array()}}}});
        std::printf("%s\n", st.bold("5. select push() - textDocument/codeAction lists (cheaply, no model call):").c_str());
        json chosen;
        for (const json& a : reply.value("result", json::array())) {
            std::printf("    - %s\n", a.value("title", std::string()).c_str());
            if (chosen.is_null() && a.value("title", std::string()).find("ocument") != std::string::npos) chosen = a;
        }
        if (!chosen.is_null()) {
            json resolved = client.request("codeAction/resolve", chosen);
            std::printf("%s\n", st.bold("6. codeAction/resolve \"" + chosen.value("title", std::string()) +
                                        "\" computes the edit:").c_str());
            const json& changes = resolved["result"]["edit"]["changes"];
            if (changes.is_object()) {
                for (auto& [uri, edits] : changes.items()) {
                    for (const json& e : edits) {
                        std::printf("    replace lines %d-%d of %s with:\n",
                                    e["range"]["start"].value("line", 0) + 1,
                                    e["range"]["end"].value("line", 0), uri.c_str());
                        show(st, "", e.value("newText", std::string()), "");
                    }
                }
            } else {
                std::printf("    %s\n", resolved.dump().c_str());
            }
            show_status(st, client);
            std::printf("\n");
        }
    }

    client.request("shutdown", nullptr);
    client.notify("exit", json::object());
    loop.join();
    std::printf("%s server exited with code %d\n", st.bold("7. shutdown, exit:").c_str(), server_exit);
    return server_exit;
}

}  // namespace

void register_demo(CLI::App& app, Outcome& out) {
    auto model = std::make_shared<std::string>();
    auto backend = std::make_shared<std::string>("auto");
    auto* cmd = app.add_subcommand("demo", "Drive the language server through a sample edit session");
    cmd->add_option("-m,--model", *model, "GGUF model (the bundled demo model works well)")->required();
    cmd->add_option("--backend", *backend, "auto, cpu or vulkan")->capture_default_str();
    cmd->callback([&out, model, backend] { out.exit_code = run_demo(*model, *backend); });
}

}  // namespace hearth::cli
