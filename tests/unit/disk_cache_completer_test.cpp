// The engine-backed Completer with the on-disk prefix KV cache, on the bundled demo model
// (CPU backend, whose rows are exact: a restored prefix must give the same completion as
// a cold prefill, token for token).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "demo_model.h"
#include "engine.h"
#include "engine_completer.h"
#include "kv_store.h"
#include "session.h"

namespace hearth {
namespace {

namespace fs = std::filesystem;

using test::demo_model;
const auto data = test::data_path;

class DiskCacheCompleter : public ::testing::Test {
  protected:
    void SetUp() override {
        std::string tmpl = (fs::temp_directory_path() / "hearth-dc-XXXXXX").string();
        ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
        root_ = tmpl;
        workspace_ = root_ / "ws";
        fs::create_directories(workspace_);
    }
    void TearDown() override { fs::remove_all(root_); }

    std::unique_ptr<EngineCompleter> make(const LoadedModel& model = demo_model(),
                                          int32_t chunk_tokens = 64) {
        EngineCompleterOptions o;
        o.backend.kind = BackendKind::Cpu;
        o.n_ctx = 1024;
        o.disk_cache = true;
        o.cache.root = root_ / "cache";
        o.cache.workspace = workspace_;
        o.cache.chunk_tokens = chunk_tokens;
        auto c = EngineCompleter::create(model, o);
        EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message);
        return c.ok() ? std::move(*c) : nullptr;
    }

    // A request whose repository context is several hundred tokens of Python.
    static CompletionRequest request() {
        CompletionRequest r;
        r.path = "app/main.py";
        r.repo_name = "ws";
        r.max_tokens = 12;
        for (int i = 0; i < 4; ++i) {
            std::string text;
            for (int f = 0; f < 5; ++f) {
                text += "def helper_" + std::to_string(i) + "_" + std::to_string(f) +
                        "(values, scale=" + std::to_string(f + 1) +
                        "):\n"
                        "    total = 0\n    for v in values:\n        total += v * scale\n"
                        "    return total\n\n";
            }
            r.context.push_back({"app/util_" + std::to_string(i) + ".py", text});
        }
        r.prefix =
            "import os\nimport sys\n\n\ndef load(path):\n    with open(path) as f:\n"
            "        return f.read()\n\n\ndef main():\n    args = sys.argv[1:]\n"
            "    for name in args:\n        data = load(name)\n        print(len(data))\n"
            "\n\ndef fibonacci(n):\n    ";
        r.suffix = "\n\nif __name__ == \"__main__\":\n    main()\n";
        return r;
    }

    static size_t chunk_files(const fs::path& dir) {
        size_t n = 0;
        for (const auto& e : fs::directory_iterator(dir)) {
            if (e.path().extension() == ".hkv" && !e.path().filename().string().starts_with(".tmp"))
                ++n;
        }
        return n;
    }

    fs::path root_, workspace_;
};

TEST_F(DiskCacheCompleter, RestartRestoresThePromptUpToTheCursorAndAnswersTheSame) {
    const CompletionRequest req = request();
    std::string cold_text;
    int32_t prompt_tokens = 0;
    fs::path dir;
    {
        auto a = make();
        ASSERT_NE(a, nullptr);
        ASSERT_TRUE(a->cache_summary().enabled) << a->cache_summary().error;
        auto r = a->complete(req);
        ASSERT_TRUE(r.ok()) << r.error().message;
        EXPECT_EQ(r->stats.restored_tokens, 0);
        EXPECT_EQ(r->stats.prefilled_tokens, r->stats.prompt_tokens);
        ASSERT_GT(r->stats.prompt_tokens, 4 * 64);
        cold_text = r->text;
        prompt_tokens = r->stats.prompt_tokens;
        a->flush_cache();
        dir = a->kv_store()->dir();
        EXPECT_GE(chunk_files(dir), 4u);
        EXPECT_GE(a->cache_summary().writes, 4u);
    }  // "restart": a new completer, a new session, the same cache directory

    auto b = make();
    ASSERT_NE(b, nullptr);
    auto r = b->complete(req);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->text, cold_text);
    EXPECT_EQ(r->stats.prompt_tokens, prompt_tokens);
    EXPECT_EQ(r->stats.reused_tokens, 0);
    EXPECT_GT(r->stats.restored_tokens, prompt_tokens - 64 - 40);  // all but the tail
    EXPECT_EQ(r->stats.restored_tokens % 64, 0);
    EXPECT_EQ(r->stats.restored_tokens + r->stats.prefilled_tokens, prompt_tokens);
    EXPECT_GT(b->cache_summary().hits, 0u);
}

// Small chunks: a restore takes several batches of 16 chunks, the next read from disk
// while the current one is uploaded.
TEST_F(DiskCacheCompleter, ARestoreInSeveralBatchesEqualsAColdPrefill) {
    const CompletionRequest req = request();
    std::string cold_text;
    {
        auto a = make(demo_model(), 8);
        auto r = a->complete(req);
        ASSERT_TRUE(r.ok()) << r.error().message;
        ASSERT_GT(r->stats.prompt_tokens, 3 * 16 * 8);
        cold_text = r->text;
        a->flush_cache();
    }
    auto b = make(demo_model(), 8);
    auto r = b->complete(req);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_GT(r->stats.restored_tokens, 3 * 16 * 8);
    EXPECT_EQ(r->stats.restored_tokens % 8, 0);
    EXPECT_EQ(r->stats.restored_tokens + r->stats.prefilled_tokens, r->stats.prompt_tokens);
    EXPECT_EQ(r->text, cold_text);
}

TEST_F(DiskCacheCompleter, AnEditInTheMiddleOfTheFileKeepsEverythingBeforeIt) {
    CompletionRequest req = request();
    auto a = make();
    ASSERT_NE(a, nullptr);
    auto first = a->complete(req);
    ASSERT_TRUE(first.ok()) << first.error().message;

    // An edit in the middle of the current file: in memory, everything before it is kept.
    CompletionRequest edited = req;
    const size_t mid = edited.prefix.find("def main");
    ASSERT_NE(mid, std::string::npos);
    edited.prefix.insert(mid, "# a comment\n");
    auto second = a->complete(edited);
    ASSERT_TRUE(second.ok()) << second.error().message;
    EXPECT_EQ(second->stats.restored_tokens, 0);
    EXPECT_GT(second->stats.reused_tokens, first->stats.prompt_tokens / 2);
    EXPECT_LT(second->stats.prefilled_tokens, first->stats.prompt_tokens / 4);
    a->flush_cache();

    // After a restart the edited prompt's chunks are on disk too; the answer matches a
    // cold completer's.
    auto b = make();
    auto restored = b->complete(edited);
    ASSERT_TRUE(restored.ok());
    EXPECT_GT(restored->stats.restored_tokens, second->stats.prompt_tokens - 64 - 40);
    EXPECT_EQ(restored->text, second->text);
}

TEST_F(DiskCacheCompleter, ABadChunkIsAMissAndTheAnswerIsUnchanged) {
    const CompletionRequest req = request();
    std::string cold_text;
    fs::path dir;
    {
        auto a = make();
        auto r = a->complete(req);
        ASSERT_TRUE(r.ok());
        cold_text = r->text;
        a->flush_cache();
        dir = a->kv_store()->dir();
    }
    // Damage every chunk file's last byte (the KV payload): each one fails its checksum.
    size_t damaged = 0;
    for (const auto& e : fs::directory_iterator(dir)) {
        if (e.path().extension() != ".hkv") continue;
        std::fstream f(e.path(), std::ios::in | std::ios::out | std::ios::binary);
        f.seekg(-1, std::ios::end);
        char c = 0;
        f.get(c);
        f.seekp(-1, std::ios::end);
        f.put(static_cast<char>(c ^ 0x5a));
        ++damaged;
    }
    ASSERT_GT(damaged, 0u);
    auto b = make();
    auto r = b->complete(req);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->stats.restored_tokens, 0);
    EXPECT_EQ(r->stats.prefilled_tokens, r->stats.prompt_tokens);
    EXPECT_EQ(r->text, cold_text);
    // The bad files were removed (and the good ones written again after this answer).
    b->flush_cache();
    auto c = make();
    auto again = c->complete(req);
    ASSERT_TRUE(again.ok());
    EXPECT_GT(again->stats.restored_tokens, 0);
    EXPECT_EQ(again->text, cold_text);
}

TEST_F(DiskCacheCompleter, AnotherModelNeverUsesTheCache) {
    const CompletionRequest req = request();
    {
        auto a = make();
        ASSERT_TRUE(a->complete(req).ok());
        a->flush_cache();
    }
    auto other = load_model(data("qwen2-test-q8_0.gguf"));
    ASSERT_TRUE(other.ok()) << other.error().message;
    auto b = make(*other);
    ASSERT_NE(b, nullptr);
    auto r = b->complete(req);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->stats.restored_tokens, 0);
}

TEST_F(DiskCacheCompleter, AFileThatMustNotBeStoredCheckpointsOnlyTheContext) {
    CompletionRequest req = request();
    req.cache_prompt = false;
    auto a = make();
    auto r = a->complete(req);
    ASSERT_TRUE(r.ok());
    a->flush_cache();
    // Every stored chunk ends inside the repository context: a restart restores at most
    // the context, never the current file's text.
    auto b = make();
    CompletionRequest same = req;
    auto again = b->complete(same);
    ASSERT_TRUE(again.ok());
    EXPECT_GT(again->stats.restored_tokens, 0);
    CompletionRequest no_context = req;
    no_context.context.clear();
    auto c = make();
    auto bare = c->complete(no_context);
    ASSERT_TRUE(bare.ok());
    EXPECT_LT(again->stats.restored_tokens, r->stats.prompt_tokens - bare->stats.prompt_tokens + 8);
}

TEST_F(DiskCacheCompleter, EachWorkspaceFolderHasItsOwnCache) {
    const fs::path second = root_ / "second";
    fs::create_directories(second);
    CompletionRequest req = request();
    req.workspace = second.string();
    fs::path default_dir, second_dir;
    {
        auto a = make();
        ASSERT_TRUE(a->complete(req).ok());
        a->flush_cache();
        default_dir = a->kv_store()->dir();
        EXPECT_EQ(chunk_files(default_dir), 0u);
        EXPECT_NE(a->cache_summary().dir, default_dir.string());
        second_dir = a->cache_summary().dir;
        EXPECT_GT(chunk_files(second_dir), 0u);
    }
    // The same prompt in the default workspace finds nothing; in the second one, its rows.
    auto b = make();
    CompletionRequest in_default = request();
    auto r = b->complete(in_default);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->stats.restored_tokens, 0);
    auto c = make();
    auto again = c->complete(req);
    ASSERT_TRUE(again.ok());
    EXPECT_GT(again->stats.restored_tokens, 0);
}

TEST_F(DiskCacheCompleter, ClearCacheForgetsMemoryAndDisk) {
    const CompletionRequest req = request();
    auto a = make();
    ASSERT_TRUE(a->complete(req).ok());
    a->flush_cache();
    ASSERT_GT(chunk_files(a->kv_store()->dir()), 0u);
    ASSERT_TRUE(a->clear_cache().ok());
    EXPECT_EQ(chunk_files(a->kv_store()->dir()), 0u);
    auto r = a->complete(req);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->stats.reused_tokens, 0);
    EXPECT_EQ(r->stats.restored_tokens, 0);
}

TEST_F(DiskCacheCompleter, AnUnusableCacheDirectoryLeavesCompletionsWorking) {
    // The cache root is a regular file: the store cannot open; completions still work.
    fs::create_directories(root_);
    std::ofstream(root_ / "cache") << "not a directory";
    auto a = make();
    ASSERT_NE(a, nullptr);
    EXPECT_FALSE(a->cache_summary().enabled);
    EXPECT_FALSE(a->cache_summary().error.empty());
    auto r = a->complete(request());
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_FALSE(r->text.empty());
}

}  // namespace
}  // namespace hearth
