// The server's workspace side through the in-memory transport: the index of the workspace
// folder, the repository context handed to the Completer, watched-file and save updates,
// secrets kept out, hearth.clearCache and the deferred (background) engine work.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <thread>

#include "in_process_server.h"

using namespace hearth;
using namespace hearth::lsp;
using namespace std::chrono_literals;

namespace {

namespace fs = std::filesystem;

void write(const fs::path& p, const std::string& text) {
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << text;
}

std::vector<std::string> context_paths(const CompletionRequest& r) {
    std::vector<std::string> out;
    for (const auto& f : r.context) out.push_back(f.path);
    return out;
}

bool has(const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
}

class LspWorkspace : public ::testing::Test {
  protected:
    void SetUp() override {
        std::string tmpl = (fs::temp_directory_path() / "hearth-ws-XXXXXX").string();
        ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
        root_ = fs::canonical(tmpl);
        write(root_ / "pkg/util.py", "def scale(values, k):\n    return [v * k for v in values]\n");
        write(root_ / "pkg/main.py", "from pkg.util import scale\n\n\ndef run():\n    ");
        write(root_ / ".env", "API_TOKEN=very-secret\n");
        write(root_ / "keys/id_rsa", "-----BEGIN OPENSSH PRIVATE KEY-----\n");
        write(root_ / ".gitignore", "generated_*.py\n");
        write(root_ / "generated_table.py", "TABLE = [1, 2, 3]\n");
        write(root_ / "node_modules/lib/index.js", "module.exports = 1;\n");
    }
    void TearDown() override {
        server_.reset();
        fs::remove_all(root_);
    }

    std::string uri(const std::string& rel) const { return "file://" + (root_ / rel).string(); }

    // Starts the server on the workspace and waits for the model and the index.
    void start() {
        LspServerOptions o;
        o.settings.debounce_ms = 0;
        server_ = std::make_unique<InProcessServer>(o, InProcessServer::fake_factory(fake_));
        json caps = {{"textDocument", {{"inlineCompletion", json::object()}}},
                     {"workspace", {{"didChangeWatchedFiles", {{"dynamicRegistration", true}}}}}};
        json r = client().request(
            "initialize", {{"capabilities", caps}, {"rootUri", "file://" + root_.string()}});
        ASSERT_TRUE(r.contains("result")) << r;
        client().on_server_request("client/registerCapability", [this](const json& params) {
            registrations_ = params;
            return json(nullptr);
        });
        client().notify("initialized", json::object());
        bool loaded = false, indexed = false;
        while (!loaded || !indexed) {
            json s = client().wait_for("hearth/status");
            ASSERT_FALSE(s.is_null()) << "no status";
            const std::string event = s["params"].value("event", "");
            loaded = loaded || event == "model_loaded";
            indexed = indexed || event == "workspace_indexed";
        }
    }
    MemoryClient& client() { return server_->client(); }

    void open(const std::string& rel, const std::string& text, const std::string& lang = "python") {
        client().notify(
            "textDocument/didOpen",
            {{"textDocument",
              {{"uri", uri(rel)}, {"languageId", lang}, {"version", 1}, {"text", text}}}});
    }
    json complete_at(const std::string& rel, int line, int character) {
        return client().request("textDocument/inlineCompletion",
                                {{"textDocument", {{"uri", uri(rel)}}},
                                 {"position", {{"line", line}, {"character", character}}},
                                 {"context", {{"triggerKind", 1}}}});
    }

    fs::path root_;
    std::shared_ptr<FakeCompleterState> fake_ = std::make_shared<FakeCompleterState>();
    std::unique_ptr<InProcessServer> server_;
    json registrations_;
};

TEST_F(LspWorkspace, TheContextHoldsRelatedFilesAndNeverSecretsOrIgnoredOnes) {
    start();
    const std::string main_text = "from pkg.util import scale\n\n\ndef run():\n    ";
    open("pkg/main.py", main_text);
    json r = complete_at("pkg/main.py", 4, 4);
    ASSERT_TRUE(r.contains("result")) << r;
    const CompletionRequest req = fake_->last_completion();
    EXPECT_EQ(req.path, "pkg/main.py");
    EXPECT_EQ(req.repo_name, root_.filename().string());
    EXPECT_TRUE(req.cache_prompt);
    const auto paths = context_paths(req);
    EXPECT_TRUE(has(paths, "pkg/util.py")) << ::testing::PrintToString(paths);
    EXPECT_FALSE(has(paths, "pkg/main.py"));  // the current file is the FIM part, not context
    for (const auto& f : req.context) {
        EXPECT_EQ(f.text.find("very-secret"), std::string::npos) << f.path;
        EXPECT_EQ(f.text.find("PRIVATE KEY"), std::string::npos) << f.path;
        EXPECT_NE(f.path, "generated_table.py");
        EXPECT_EQ(f.path.find("node_modules"), std::string::npos);
    }
    json status = client().request("workspace/executeCommand", {{"command", "hearth.status"}});
    EXPECT_EQ(status["result"]["workspace"]["root"], root_.string());
    EXPECT_EQ(status["result"]["workspace"]["indexedFiles"], 3);  // util, main, .gitignore
    // The watcher for the workspace was registered.
    ASSERT_TRUE(registrations_.is_object()) << "no registerCapability";
    bool watched = false;
    for (const auto& reg : registrations_["registrations"]) {
        watched = watched || reg["method"] == "workspace/didChangeWatchedFiles";
    }
    EXPECT_TRUE(watched) << registrations_;
}

TEST_F(LspWorkspace, WatchedFileChangesAndSavesUpdateTheContext) {
    start();
    open("pkg/main.py", "import helpers\n\n\ndef run():\n    ");
    ASSERT_TRUE(complete_at("pkg/main.py", 4, 4).contains("result"));
    EXPECT_FALSE(has(context_paths(fake_->last_completion()), "pkg/helpers.py"));

    // A new file appears on disk and the client says so.
    write(root_ / "pkg/helpers.py", "def helper():\n    return 42\n");
    client().notify("workspace/didChangeWatchedFiles",
                    {{"changes", json::array({{{"uri", uri("pkg/helpers.py")}, {"type", 1}}})}});
    ASSERT_TRUE(complete_at("pkg/main.py", 4, 4).contains("result"));
    EXPECT_TRUE(has(context_paths(fake_->last_completion()), "pkg/helpers.py"));

    // It changes; a save of it refreshes the index too.
    write(root_ / "pkg/helpers.py", "def helper():\n    return 43\n");
    client().notify("textDocument/didSave", {{"textDocument", {{"uri", uri("pkg/helpers.py")}}}});
    ASSERT_TRUE(complete_at("pkg/main.py", 4, 4).contains("result"));
    bool found = false;
    for (const auto& f : fake_->last_completion().context) {
        if (f.path == "pkg/helpers.py") found = f.text.find("return 43") != std::string::npos;
    }
    EXPECT_TRUE(found);

    // The .gitignore changes to ignore it: it leaves the context.
    write(root_ / ".gitignore", "generated_*.py\npkg/helpers.py\n");
    client().notify("workspace/didChangeWatchedFiles",
                    {{"changes", json::array({{{"uri", uri(".gitignore")}, {"type", 2}}})}});
    ASSERT_TRUE(complete_at("pkg/main.py", 4, 4).contains("result"));
    EXPECT_FALSE(has(context_paths(fake_->last_completion()), "pkg/helpers.py"));

    // Deleted files leave it too.
    fs::remove(root_ / "pkg/util.py");
    client().notify("workspace/didChangeWatchedFiles",
                    {{"changes", json::array({{{"uri", uri("pkg/util.py")}, {"type", 3}}})}});
    ASSERT_TRUE(complete_at("pkg/main.py", 4, 4).contains("result"));
    EXPECT_FALSE(has(context_paths(fake_->last_completion()), "pkg/util.py"));
}

TEST_F(LspWorkspace, UnsavedEditsOfOpenDocumentsAreUsedAndSecretFilesAreNotCached) {
    start();
    open("pkg/util.py", "def scale(values, k):\n    return [v * k for v in values]\n");
    client().notify(
        "textDocument/didChange",
        {{"textDocument", {{"uri", uri("pkg/util.py")}, {"version", 2}}},
         {"contentChanges", json::array({{{"range",
                                           {{"start", {{"line", 2}, {"character", 0}}},
                                            {"end", {{"line", 2}, {"character", 0}}}}},
                                          {"text", "def unsaved_edit():\n    pass\n"}}})}});
    open("pkg/main.py", "from pkg.util import scale\n\n\ndef run():\n    ");
    ASSERT_TRUE(complete_at("pkg/main.py", 4, 4).contains("result"));
    bool edited = false;
    for (const auto& f : fake_->last_completion().context) {
        edited = edited || f.text.find("unsaved_edit") != std::string::npos;
    }
    EXPECT_TRUE(edited) << "the editor's text of an open document wins over the disk";

    // Completing inside a secret file works, but its text is never checkpointed to disk,
    // and it never shows up in other files' context.
    open(".env", "API_TOKEN=very-secret\nOTHER=", "dotenv");
    ASSERT_TRUE(complete_at(".env", 1, 6).contains("result"));
    EXPECT_FALSE(fake_->last_completion().cache_prompt);
    ASSERT_TRUE(complete_at("pkg/main.py", 4, 4).contains("result"));
    for (const auto& f : fake_->last_completion().context) {
        EXPECT_EQ(f.text.find("very-secret"), std::string::npos) << f.path;
    }
}

TEST_F(LspWorkspace, SecretPatternsFromTheSettingsKeepFilesOut) {
    start();
    open("pkg/main.py", "from pkg.util import scale\n\n\ndef run():\n    ");
    ASSERT_TRUE(complete_at("pkg/main.py", 4, 4).contains("result"));
    EXPECT_TRUE(has(context_paths(fake_->last_completion()), "pkg/util.py"));
    client().notify("workspace/didChangeConfiguration",
                    {{"settings", {{"hearth", {{"contextSecrets", json::array({"util.py"})}}}}}});
    // The workspace is indexed again with the new rule.
    json s;
    do {
        s = client().wait_for("hearth/status");
    } while (!s.is_null() && s["params"].value("event", "") != "workspace_indexed");
    ASSERT_FALSE(s.is_null());
    ASSERT_TRUE(complete_at("pkg/main.py", 4, 4).contains("result"));
    EXPECT_FALSE(has(context_paths(fake_->last_completion()), "pkg/util.py"));
}

TEST_F(LspWorkspace, ClearCacheAndBackgroundWorkRunOnTheWorker) {
    fake_->background_steps = 3;
    start();
    open("pkg/main.py", "from pkg.util import scale\n\n\ndef run():\n    ");
    ASSERT_TRUE(complete_at("pkg/main.py", 4, 4).contains("result"));
    // After the answer, the deferred work runs step by step until it says it is done.
    for (int i = 0; i < 200 && fake_->background_calls.load() < 4; ++i)
        std::this_thread::sleep_for(10ms);
    EXPECT_EQ(fake_->background_calls.load(), 4);
    EXPECT_EQ(fake_->max_running.load(), 1);  // never beside a model call

    json r = client().request("workspace/executeCommand", {{"command", "hearth.clearCache"}});
    ASSERT_TRUE(r.contains("result")) << r;
    EXPECT_EQ(r["result"]["cleared"], true);
    EXPECT_EQ(fake_->clear_cache_calls.load(), 1);
}

TEST_F(LspWorkspace, EachFolderOfAMultiRootWorkspaceGivesItsOwnContext) {
    const fs::path other = root_ / "other-root";
    write(other / "lib/shapes.py", "def area(w, h):\n    return w * h\n");
    write(other / "app.py", "from lib.shapes import area\n\nprint(");
    LspServerOptions o;
    o.settings.debounce_ms = 0;
    server_ = std::make_unique<InProcessServer>(o, InProcessServer::fake_factory(fake_));
    json r = client().request(
        "initialize", {{"capabilities", {{"textDocument", {{"inlineCompletion", json::object()}}}}},
                       {"workspaceFolders",
                        json::array({{{"uri", "file://" + root_.string()}, {"name", "a"}},
                                     {{"uri", "file://" + other.string()}, {"name", "b"}}})}});
    ASSERT_TRUE(r.contains("result")) << r;
    EXPECT_EQ(r["result"]["capabilities"]["workspace"]["workspaceFolders"]["changeNotifications"],
              true);
    client().notify("initialized", json::object());
    int indexed = 0;
    bool loaded = false;
    while (!loaded || indexed < 2) {
        json st = client().wait_for("hearth/status");
        ASSERT_FALSE(st.is_null());
        const std::string event = st["params"].value("event", "");
        loaded = loaded || event == "model_loaded";
        if (event == "workspace_indexed") ++indexed;
    }
    // A file of the nested folder belongs to it (the deepest folder wins).
    open("other-root/app.py", "from lib.shapes import area\n\nprint(");
    ASSERT_TRUE(complete_at("other-root/app.py", 2, 6).contains("result"));
    CompletionRequest req = fake_->last_completion();
    EXPECT_EQ(req.path, "app.py");
    EXPECT_EQ(req.repo_name, "other-root");
    EXPECT_EQ(req.workspace, other.string());
    EXPECT_EQ(context_paths(req), std::vector<std::string>{"lib/shapes.py"});

    open("pkg/main.py", "from pkg.util import scale\n\n\ndef run():\n    ");
    ASSERT_TRUE(complete_at("pkg/main.py", 4, 4).contains("result"));
    req = fake_->last_completion();
    EXPECT_EQ(req.workspace, root_.string());
    EXPECT_TRUE(has(context_paths(req), "pkg/util.py"));

    // The folder is removed: its files fall back to the outer folder.
    client().notify(
        "workspace/didChangeWorkspaceFolders",
        {{"event",
          {{"added", json::array()},
           {"removed", json::array({{{"uri", "file://" + other.string()}, {"name", "b"}}})}}}});
    json st;
    do {
        st = client().wait_for("hearth/status");
    } while (!st.is_null() && st["params"].value("event", "") != "workspace_indexed");
    ASSERT_TRUE(complete_at("other-root/app.py", 2, 6).contains("result"));
    req = fake_->last_completion();
    EXPECT_EQ(req.workspace, root_.string());
    EXPECT_EQ(req.path, "other-root/app.py");
    json status = client().request("workspace/executeCommand", {{"command", "hearth.status"}});
    EXPECT_EQ(status["result"]["workspace"]["folders"].size(), 1u) << status;
}

TEST_F(LspWorkspace, NoWorkspaceFolderMeansNoContext) {
    LspServerOptions o;
    o.settings.debounce_ms = 0;
    server_ = std::make_unique<InProcessServer>(o, InProcessServer::fake_factory(fake_));
    client().initialize(json{{"textDocument", {{"inlineCompletion", json::object()}}}});
    ASSERT_FALSE(client().wait_for("hearth/status").is_null());
    client().notify("textDocument/didOpen", {{"textDocument",
                                              {{"uri", "file:///elsewhere/x.py"},
                                               {"languageId", "python"},
                                               {"version", 1},
                                               {"text", "def f():\n    "}}}});
    json r = client().request("textDocument/inlineCompletion",
                              {{"textDocument", {{"uri", "file:///elsewhere/x.py"}}},
                               {"position", {{"line", 1}, {"character", 4}}},
                               {"context", {{"triggerKind", 1}}}});
    ASSERT_TRUE(r.contains("result")) << r;
    EXPECT_TRUE(fake_->last_completion().context.empty());
    EXPECT_FALSE(fake_->last_completion().cache_prompt);
}

}  // namespace
