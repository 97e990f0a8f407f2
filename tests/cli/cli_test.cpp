// Runs the `hearth` binary: every subcommand's output format and its error behaviour
// (one line on stderr, exit code 1 or 2, never a signal).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <algorithm>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

namespace {

using nlohmann::json;

struct CmdResult {
    int exit_code = -1;
    bool signaled = false;
    std::string out, err;
};

std::string data(const std::string& name) { return std::string(HEARTH_TEST_DATA) + "/" + name; }

std::string tmp_path(const std::string& name) {
    return ::testing::TempDir() + "hearth_cli_" + std::to_string(getpid()) + "_" + name;
}

// Runs `hearth ARGS` through the shell with optional stdin text.
CmdResult hearth(const std::string& args, const std::string& input = "") {
    const std::string in = tmp_path("stdin"), out = tmp_path("stdout"), err = tmp_path("stderr");
    std::ofstream(in, std::ios::binary) << input;
    const std::string cmd = std::string("'") + HEARTH_BIN + "' " + args + " <'" + in + "' >'" +
                            out + "' 2>'" + err + "'";
    const int status = std::system(cmd.c_str());
    CmdResult r;
    r.signaled = WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) > 128);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    auto slurp = [](const std::string& p) {
        std::ifstream f(p, std::ios::binary);
        return std::string(std::istreambuf_iterator<char>(f), {});
    };
    r.out = slurp(out);
    r.err = slurp(err);
    return r;
}

TEST(Cli, InfoJsonDescribesTheModel) {
    CmdResult r = hearth("info " + data("qwen2-test-q8_0.gguf") + " --json");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    json j = json::parse(r.out);
    EXPECT_EQ(j["version"], 3);
    EXPECT_EQ(j["metadata"]["general.architecture"], "qwen2");
    EXPECT_EQ(j["model"]["n_layer"], 2);
    EXPECT_EQ(j["model"]["n_vocab"], 2048);
    EXPECT_GT(j["model"]["kv_bytes_per_token_f16"].get<int64_t>(), 0);
    bool found = false;
    for (const json& t : j["tensors"]) {
        if (t["name"] == "blk.0.attn_q.weight") {
            found = true;
            EXPECT_EQ(t["type"], "q8_0");
            EXPECT_EQ(t["shape"], json::array({512, 512}));
        }
    }
    EXPECT_TRUE(found);
}

TEST(Cli, InfoTextForAVocabOnlyFile) {
    CmdResult r = hearth("info " + data("qwen-vocab.gguf"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("tokenizer.ggml.tokens"), std::string::npos);
    EXPECT_NE(r.out.find("not runnable"), std::string::npos);
}

TEST(Cli, TokenizeMatchesTheGoldenIds) {
    std::ifstream f(data("tokenizer-golden.json"));
    json golden = json::parse(f);
    int checked = 0;
    for (const json& c : golden["qwen-vocab"]) {
        const std::string text = c["text"];
        if (text.empty() || checked >= 6) continue;
        CmdResult plain = hearth("tokenize --model " + data("qwen-vocab.gguf") + " --plain --json", text);
        ASSERT_EQ(plain.exit_code, 0) << plain.err;
        EXPECT_EQ(json::parse(plain.out)["ids"], c["ids_plain"]) << text;
        CmdResult special = hearth("tokenize --model " + data("qwen-vocab.gguf") + " --json", text);
        EXPECT_EQ(json::parse(special.out)["ids"], c["ids_special"]) << text;
        ++checked;
    }
    EXPECT_EQ(checked, 6);
}

TEST(Cli, TokenizeDetokenizeRoundTrip) {
    const std::string text = "def f(x):\n    return x * 2  # \xc3\xa9\xe4\xb8\xad\n";
    CmdResult t = hearth("tokenize --model " + data("hearth-demo-py-q8_0.gguf") + " --plain", text);
    ASSERT_EQ(t.exit_code, 0) << t.err;
    CmdResult d = hearth("detokenize --model " + data("hearth-demo-py-q8_0.gguf"), t.out);
    ASSERT_EQ(d.exit_code, 0) << d.err;
    EXPECT_EQ(d.out, text);
}

TEST(Cli, LogitsMatchTheReference) {
    std::ifstream f(data("qwen2-test-q8_0.ref.json"));
    json ref = json::parse(f);
    const json* c = nullptr;
    for (const json& k : ref["cases"]) {
        if (k["name"] == "short") c = &k;
    }
    ASSERT_NE(c, nullptr);
    std::string ids;
    for (const json& id : (*c)["tokens"]) ids += (ids.empty() ? "" : ",") + std::to_string(id.get<int>());
    CmdResult r = hearth("logits --model " + data("qwen2-test-q8_0.gguf") + " --tokens " + ids +
                   " --backend cpu --top 5");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    json j = json::parse(r.out);
    ASSERT_EQ(j["positions"].size(), (*c)["tokens"].size());
    for (size_t p = 0; p < j["positions"].size(); ++p) {
        const json& mine = j["positions"][p];
        const json& theirs = (*c)["top20"][p];
        ASSERT_EQ(mine.size(), 5u);
        // The reference's most likely token is ours too, with the same log-probability.
        const double margin = theirs[0][1].get<double>() - theirs[1][1].get<double>();
        if (margin >= 0.05) {
            EXPECT_EQ(mine[0][0], theirs[0][0]) << "position " << p;
        }
        EXPECT_NEAR(mine[0][1].get<double>(), theirs[0][1].get<double>(), 0.02) << "position " << p;
    }
}

TEST(Cli, CompleteWritesPythonWithTheDemoModel) {
    const std::string pre = tmp_path("prefix.py"), suf = tmp_path("suffix.py");
    std::ofstream(pre) << "def add(a, b):\n    return";
    std::ofstream(suf) << "";
    CmdResult r = hearth("complete --model " + data("hearth-demo-py-q8_0.gguf") + " --prefix-file " +
                   pre + " --suffix-file " + suf + " -n 8 --backend cpu");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.rfind(" a + b", 0), 0u) << r.out;
}

TEST(Cli, CompleteFillsInTheMiddle) {
    const std::string pre = tmp_path("prefix2.py"), suf = tmp_path("suffix2.py");
    std::ofstream(pre) << "class Stack:\n    def __init__(self):\n        self.items = []\n\n"
                          "    def push(self, item):\n        ";
    std::ofstream(suf) << "\n\n    def pop(self):\n        return self.items.pop()\n";
    CmdResult r = hearth("complete --model " + data("hearth-demo-py-q8_0.gguf") + " --prefix-file " +
                   pre + " --suffix-file " + suf + " -n 16 --lines 1 --backend cpu --stats");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    // The demo model's fill-in-the-middle is weak (tests/data/README.md), so this checks
    // the mechanics: a non-empty single line and the prompt statistics.
    EXPECT_GT(r.out.size(), 1u);
    EXPECT_EQ(r.out.find('\n'), r.out.size() - 1) << "one line expected: " << r.out;
    EXPECT_NE(r.err.find("prompt tokens"), std::string::npos);
}

TEST(Cli, SynthWritesALoadableModel) {
    const std::string out = tmp_path("tiny.gguf");
    for (const char* type : {"f16", "q8_0", "q4_k_m"}) {
        CmdResult s = hearth(std::string("gguf-synth --shape tiny --type ") + type + " --vocab " +
                       data("qwen2-test-q8_0.gguf") + " -o " + out + " -q");
        ASSERT_EQ(s.exit_code, 0) << s.err;
        CmdResult i = hearth("info " + out + " --json");
        ASSERT_EQ(i.exit_code, 0) << i.err;
        json j = json::parse(i.out);
        EXPECT_EQ(j["model"]["n_embd"], 256) << type;
        std::map<std::string, int> types;
        for (const json& t : j["tensors"]) types[t["type"]]++;
        if (std::string(type) == "q4_k_m") {
            EXPECT_GT(types["q4_K"], 0);
            EXPECT_GT(types["q6_K"], 0);  // output (tied embedding), attn_v/ffn_down of some layers
        } else {
            EXPECT_GT(types[type == std::string("f16") ? "f16" : "q8_0"], 0);
        }
        CmdResult l = hearth("logits --model " + out + " --tokens 1,2,3 --top 3 --backend cpu");
        ASSERT_EQ(l.exit_code, 0) << l.err;
        EXPECT_EQ(json::parse(l.out)["positions"].size(), 3u);
    }
    // Same seed, same bytes.
    const std::string again = tmp_path("tiny2.gguf");
    ASSERT_EQ(hearth("gguf-synth --shape tiny --type q8_0 --vocab " + data("qwen2-test-q8_0.gguf") +
                     " -o " + again + " -q").exit_code, 0);
    ASSERT_EQ(hearth("gguf-synth --shape tiny --type q8_0 --vocab " + data("qwen2-test-q8_0.gguf") +
                     " -o " + out + " -q").exit_code, 0);
    std::ifstream a(again, std::ios::binary), b(out, std::ios::binary);
    EXPECT_TRUE(std::equal(std::istreambuf_iterator<char>(a), {}, std::istreambuf_iterator<char>(b)));
}

TEST(Cli, BenchPrintsCsv) {
    CmdResult r = hearth("bench --model " + data("qwen2-test-q8_0.gguf") +
                   " --backend cpu --frontiers 64,128 --decode 4 --reps 1 --no-summary");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("frontier,new_tokens,prefill_ms"), std::string::npos);
    EXPECT_NE(r.out.find("\n64,64,"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("\n128,64,"), std::string::npos) << r.out;
}

TEST(Cli, ErrorsAreOneLineAndNonZero) {
    const std::string garbage = tmp_path("garbage.gguf");
    std::ofstream(garbage) << "GGUF\x03\0\0\0 this is not a model";
    const std::string cases[] = {
        "info /nonexistent/model.gguf",
        "info " + garbage,
        "logits --model " + data("qwen2-test-q8_0.gguf") + " --tokens 1,99999",
        "logits --model " + data("qwen2-test-q8_0.gguf") + " --tokens 1,x",
        "logits --model " + data("qwen-vocab.gguf") + " --tokens 1",
        "complete --model " + data("qwen2-test-q8_0.gguf") + " --prefix-file /nonexistent",
        "complete --model " + data("qwen2-test-q8_0.gguf") + " --prefix x --backend metal",
        "gguf-synth --shape nope --type q8_0 --vocab " + data("qwen-vocab.gguf") + " -o " + garbage,
    };
    for (const std::string& args : cases) {
        CmdResult r = hearth(args);
        EXPECT_FALSE(r.signaled) << args;
        EXPECT_EQ(r.exit_code, 1) << args << "\n" << r.err;
        EXPECT_EQ(r.err.rfind("hearth: ", 0), 0u) << args << "\n" << r.err;
        EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << args << "\n" << r.err;
    }
    CmdResult usage = hearth("logits");
    EXPECT_NE(usage.exit_code, 0);
    EXPECT_FALSE(usage.signaled);
}

// hearth opens the Vulkan loader at run time; HEARTH_VULKAN_LOADER pointing at nothing
// stands for a machine without one. There auto runs on the CPU, and asking for Vulkan is
// a one-line error that names the loader.
TEST(Cli, WithoutAVulkanLoaderAutoUsesTheCpuAndVulkanIsAnError) {
    const std::string loader = "/nonexistent/libvulkan.so.1";
    ASSERT_EQ(setenv("HEARTH_VULKAN_LOADER", loader.c_str(), 1), 0);
    struct Restore {
        ~Restore() { unsetenv("HEARTH_VULKAN_LOADER"); }
    } restore;

    const std::string pre = tmp_path("prefix3.py"), suf = tmp_path("suffix3.py");
    std::ofstream(pre) << "def add(a, b):\n    return";
    std::ofstream(suf) << "";
    CmdResult c =
        hearth("complete --model " + data("hearth-demo-py-q8_0.gguf") + " --prefix-file " + pre +
               " --suffix-file " + suf + " -n 8 --backend auto --stats");
    ASSERT_EQ(c.exit_code, 0) << c.err;
    EXPECT_EQ(c.out.rfind(" a + b", 0), 0u) << c.out;
    EXPECT_EQ(c.err.rfind("hearth: cpu on ", 0), 0u) << c.err;

    // The fallback says why (bench prints the note).
    CmdResult b = hearth("bench --model " + data("qwen2-test-q8_0.gguf") +
                         " --backend auto --frontiers 64 --decode 1 --reps 1 --no-summary");
    ASSERT_EQ(b.exit_code, 0) << b.err;
    EXPECT_NE(b.err.find("Vulkan unavailable (vulkan: Vulkan loader " + loader), std::string::npos)
        << b.err;

    const std::string vulkan_cases[] = {
        "logits --model " + data("qwen2-test-q8_0.gguf") + " --tokens 1,2,3 --backend vulkan",
        "complete --model " + data("hearth-demo-py-q8_0.gguf") + " --prefix x --backend vulkan",
    };
    for (const std::string& args : vulkan_cases) {
        CmdResult v = hearth(args);
        EXPECT_FALSE(v.signaled) << args;
        EXPECT_EQ(v.exit_code, 1) << args << "\n" << v.err;
        EXPECT_EQ(v.err.rfind("hearth: vulkan: Vulkan loader " + loader + " not found: ", 0), 0u)
            << args << "\n" << v.err;
        EXPECT_EQ(std::count(v.err.begin(), v.err.end(), '\n'), 1) << args << "\n" << v.err;
    }
}

}  // namespace

// The disk KV cache across a restart, through the real binary over stdio: `hearth
// bench-workspace` runs `hearth lsp` as a child three times (cold, warm after an edit,
// restarted on the same cache directory) and reports each first completion's tokens.
TEST(Cli, RestartReusesTheDiskCacheThroughTheRealServer) {
    const std::string ws = tmp_path("workspace");
    const std::string cache = tmp_path("cache");
    std::system(("rm -rf '" + ws + "' '" + cache + "' && mkdir -p '" + ws + "/pkg'").c_str());
    for (int i = 0; i < 6; ++i) {
        std::ofstream f(ws + "/pkg/mod" + std::to_string(i) + ".py");
        for (int k = 0; k < 6; ++k) {
            f << "def f" << i << "_" << k << "(xs, n=" << k << "):\n"
              << "    out = []\n    for x in xs:\n        out.append(x + n)\n    return out\n\n\n";
        }
    }
    {
        std::ofstream f(ws + "/pkg/main.py");
        f << "from pkg.mod0 import f0_1\n\n\ndef main():\n    values = [1, 2, 3]\n"
          << "    print(f0_1(values))\n\n\ndef fibonacci(n):\n";
    }
    std::ofstream(ws + "/.env") << "TOKEN=never-in-a-prompt\n";
    CmdResult r = hearth("bench-workspace --model " + data("hearth-demo-py-q8_0.gguf") +
                         " --backend cpu --ctx 1024 --workspace '" + ws +
                         "' --file pkg/main.py --end --json --cache-dir '" + cache + "'");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    json cases = json::parse(r.out);
    ASSERT_EQ(cases.size(), 3u) << r.out;
    const json &cold = cases[0], &warm = cases[1], &restart = cases[2];
    EXPECT_EQ(cold["case"], "cold");
    EXPECT_GT(cold["context_tokens"].get<int>(), 256) << "the workspace files are in the prompt";
    EXPECT_EQ(cold["prefilled_tokens"], cold["prompt_tokens"]);
    EXPECT_EQ(cold["restored_tokens"], 0);
    // Warm: an edit in the middle of the file keeps everything before it in memory.
    EXPECT_GT(warm["reused_tokens"].get<int>(), cold["context_tokens"].get<int>());
    EXPECT_LT(warm["prefilled_tokens"].get<int>(), cold["prompt_tokens"].get<int>() / 4);
    // Restart (the file as the edit left it): a new process restores the context and the
    // file up to the cursor from disk and prefills only the tail.
    EXPECT_EQ(restart["prompt_tokens"], warm["prompt_tokens"]);
    EXPECT_EQ(restart["reused_tokens"], 0);
    EXPECT_GE(restart["restored_tokens"].get<int>(), cold["context_tokens"].get<int>() - 256);
    EXPECT_EQ(restart["restored_tokens"].get<int>() + restart["prefilled_tokens"].get<int>(),
              restart["prompt_tokens"].get<int>());
    EXPECT_LT(restart["prefilled_tokens"].get<int>(), 256);
    EXPECT_GT(restart["cache"]["hits"].get<int>(), 0);
    EXPECT_TRUE(restart["cache"]["enabled"].get<bool>());

    // The cache directory holds only private files, and none contains the secret.
    CmdResult ls = hearth("cache ls --json --cache-dir '" + cache + "'");
    ASSERT_EQ(ls.exit_code, 0) << ls.err;
    json listed = json::parse(ls.out);
    ASSERT_EQ(listed.size(), 1u) << ls.out;
    EXPECT_GT(listed[0]["entries"].get<int>(), 0);
    EXPECT_GT(listed[0]["bytes"].get<int64_t>(), 0);
    EXPECT_EQ(std::system(("! grep -rq never-in-a-prompt '" + cache + "'").c_str()), 0);
    EXPECT_EQ(std::system(("test -z \"$(find '" + cache + "' -perm /077)\"").c_str()), 0)
        << "cache files and folders are private";

    // `hearth cache clear` for this workspace empties it.
    CmdResult clear = hearth("cache clear --json --workspace '" + ws + "' --cache-dir '" + cache + "'");
    ASSERT_EQ(clear.exit_code, 0) << clear.err;
    EXPECT_EQ(json::parse(clear.out)["entries"], listed[0]["entries"]) << clear.out;
    CmdResult stats = hearth("cache stats --json --cache-dir '" + cache + "'");
    ASSERT_EQ(stats.exit_code, 0) << stats.err;
    EXPECT_EQ(json::parse(stats.out)["entries"], 0) << stats.out;
    std::system(("rm -rf '" + ws + "' '" + cache + "'").c_str());
}
