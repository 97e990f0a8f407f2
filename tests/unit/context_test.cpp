// Context selection: import resolution, ranking, the byte budget, the KV-stable order,
// open documents and recent-edit chunks.
#include "context.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace hearth {
namespace {

namespace fs = std::filesystem;
using Paths = std::vector<std::string>;

std::string numbered_lines(int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s += "l" + std::to_string(i) + "\n";
    return s;
}

Paths chunk_paths(const RecentEdits& e) {
    Paths out;
    for (const auto& c : e.chunks()) out.push_back(c.path);
    return out;
}

// ---- RecentEdits ---------------------------------------------------------------------

TEST(RecentEdits, KeepsContextLinesAroundTheEdit) {
    RecentEdits e(8, 2);
    const std::string text = numbered_lines(20);
    e.record("a.py", text, 10, 10);
    auto c = e.chunks();
    ASSERT_EQ(c.size(), 1u);
    EXPECT_EQ(c[0].path, "a.py");
    EXPECT_EQ(c[0].text, "l8\nl9\nl10\nl11\nl12\n");
    EXPECT_EQ(e.bytes(), c[0].text.size());
}

TEST(RecentEdits, ClampsToTheText) {
    RecentEdits e(8, 2);
    const std::string text = numbered_lines(5);
    e.record("a.py", text, 0, 0);
    EXPECT_EQ(e.chunks()[0].text, "l0\nl1\nl2\n");
    e.forget("a.py");
    e.record("a.py", text, 40, 30);  // past the end, reversed
    EXPECT_EQ(e.chunks()[0].text, "l4\n");
    e.forget("a.py");
    e.record("b.py", "no newline", 0, 0);
    EXPECT_EQ(e.chunks()[0].text, "no newline");
    e.record("c.py", "", 0, 0);  // nothing to show
    EXPECT_EQ(chunk_paths(e), (Paths{"b.py"}));
}

TEST(RecentEdits, MergesOverlappingAndTouchingEditsOfOneFile) {
    RecentEdits e(8, 2);
    std::string text = numbered_lines(40);
    e.record("a.py", text, 10, 10);  // window 8..12
    e.record("a.py", text, 13, 13);  // 11..15 overlaps
    ASSERT_EQ(e.size(), 1u);
    EXPECT_EQ(e.chunks()[0].text, "l8\nl9\nl10\nl11\nl12\nl13\nl14\nl15\n");
    e.record("a.py", text, 18, 18);  // 16..20 touches 8..15
    ASSERT_EQ(e.size(), 1u);
    EXPECT_TRUE(e.chunks()[0].text.starts_with("l8\n"));
    EXPECT_TRUE(e.chunks()[0].text.ends_with("l20\n"));
    e.record("a.py", text, 30, 30);  // 28..32: apart
    EXPECT_EQ(e.size(), 2u);
    // The same window in another file does not merge.
    e.record("b.py", text, 30, 30);
    EXPECT_EQ(chunk_paths(e), (Paths{"b.py", "a.py", "a.py"}));
    // One edit bridging two chunks of a.py merges all three windows into one chunk, cut
    // from the newest text.
    text.replace(text.find("l22\n"), 4, "EDITED\n");
    e.record("a.py", text, 22, 26);
    EXPECT_EQ(chunk_paths(e), (Paths{"a.py", "b.py"}));
    const std::string merged = e.chunks()[0].text;
    EXPECT_TRUE(merged.starts_with("l8\n"));
    EXPECT_TRUE(merged.ends_with("l32\n"));
    EXPECT_NE(merged.find("EDITED\n"), std::string::npos);
    EXPECT_EQ(merged.find("l22\n"), std::string::npos);
}

TEST(RecentEdits, LinesInsertedAboveAChunkMoveIt) {
    RecentEdits e(8, 2);
    std::string text = numbered_lines(40);
    e.record("a.py", text, 20, 20);  // window 18..22
    // Five lines inserted at line 3: the chunk now sits at 23..27 of the new text.
    std::string five;
    for (int i = 0; i < 5; ++i) five += "new" + std::to_string(i) + "\n";
    text.insert(text.find("l3\n"), five);
    e.shift("a.py", 3, 5);
    e.shift("b.py", 0, 100);  // other files' edits do not move it
    e.record("a.py", text, 3, 7);  // window 1..9: apart from 23..27
    EXPECT_EQ(e.size(), 2u);
    // An edit at new line 29 (old l24) touches the moved window (27 + 2 = 29) and merges.
    e.record("a.py", text, 29, 29);
    ASSERT_EQ(e.size(), 2u);
    const std::string merged = e.chunks()[0].text;
    EXPECT_TRUE(merged.starts_with("l18\n")) << merged;
    EXPECT_TRUE(merged.ends_with("l26\n")) << merged;
    // Lines removed above it move it back up.
    e.shift("a.py", 0, -5);
    e.record("a.py", numbered_lines(40), 27, 27);  // 25..29 touches 18..26
    ASSERT_EQ(e.size(), 2u);
    EXPECT_TRUE(e.chunks()[0].text.starts_with("l18\n"));
    EXPECT_TRUE(e.chunks()[0].text.ends_with("l29\n"));
}

TEST(RecentEdits, NewestFirstAndBoundedInCount) {
    RecentEdits e(3, 1);
    const std::string text = numbered_lines(10);
    for (const char* p : {"a", "b", "c", "d", "e"}) e.record(p, text, 5, 5);
    EXPECT_EQ(chunk_paths(e), (Paths{"e", "d", "c"}));
    // Editing an older chunk again moves it to the front.
    e.record("c", text, 5, 5);
    EXPECT_EQ(chunk_paths(e), (Paths{"c", "e", "d"}));
    e.forget("e");
    EXPECT_EQ(chunk_paths(e), (Paths{"c", "d"}));
    EXPECT_EQ(e.bytes(), e.chunks()[0].text.size() + e.chunks()[1].text.size());
}

TEST(RecentEdits, BoundedInBytes) {
    RecentEdits e(8, 0, 40);  // a chunk keeps at most 10 bytes, all chunks 40
    const std::string text = "0123\n4567\n89ab\ncdef\n";
    e.record("big", text, 0, 3);
    EXPECT_EQ(e.chunks()[0].text, "0123\n4567\n");  // whole lines within 10 bytes
    for (int i = 0; i < 6; ++i) e.record("f" + std::to_string(i), text, 1, 1);  // 5 bytes each
    EXPECT_EQ(e.bytes(), 40u);
    EXPECT_EQ(chunk_paths(e), (Paths{"f5", "f4", "f3", "f2", "f1", "f0", "big"}));
    e.record("f6", text, 1, 1);  // 45 bytes: the oldest goes
    EXPECT_EQ(e.bytes(), 35u);
    EXPECT_EQ(chunk_paths(e), (Paths{"f6", "f5", "f4", "f3", "f2", "f1", "f0"}));
}

TEST(RecentEdits, ZeroChunksKeepsNothing) {
    RecentEdits e(0);
    e.record("a", "x\n", 0, 0);
    EXPECT_EQ(e.size(), 0u);
    EXPECT_TRUE(e.chunks().empty());
}

// ---- Import resolution ----------------------------------------------------------------

Paths sorted(Paths p) {
    std::sort(p.begin(), p.end());
    return p;
}

TEST(ContextImports, Python) {
    const Paths cands =
        sorted({"pkg/__init__.py", "pkg/util.py", "pkg/sub/__init__.py", "pkg/sub/mod.py",
                "app/main.py", "app/local.py", "app/helpers/__init__.py", "src/lib/thing.py",
                "other.py", "app/sibling.py", "unrelated.py"});
    const std::string text =
        "import pkg.util\n"
        "from pkg.sub import mod, missing\n"
        "from . import local\n"
        "from .helpers import x\n"
        "from ..other import y\n"
        "import lib.thing as t\n"
        "import os, sys\n"
        "import sibling  # implicit relative\n"
        "from pkg import (\n"
        "    util,\n"
        ")\n";
    EXPECT_EQ(resolve_imports("app/main.py", text, cands),
              (Paths{"app/helpers/__init__.py", "app/local.py", "app/sibling.py", "other.py",
                     "pkg/__init__.py", "pkg/sub/__init__.py", "pkg/sub/mod.py", "pkg/util.py",
                     "src/lib/thing.py"}));
    // Relative imports cannot climb above the root.
    EXPECT_EQ(resolve_imports("main.py", "from ..x import y\n", sorted({"x.py"})), Paths{});
}

TEST(ContextImports, CFamily) {
    const Paths cands = sorted({"src/engine/model.h", "src/engine/util/math.h",
                                "include/hearth/api.h", "src/other/model.h", "third/x.h",
                                "a/x/util.h", "b/util.h", "src/engine/model.cpp"});
    const std::string text =
        "#include \"model.h\"\n"
        "#include \"util/math.h\"\n"
        "#include <hearth/api.h>\n"
        "#include <vector>\n"
        "#  include \"x.h\"\n"
        "// #include \"b/util.h\" is a comment\n";
    EXPECT_EQ(resolve_imports("src/engine/model.cpp", text, cands),
              (Paths{"include/hearth/api.h", "src/engine/model.h", "src/engine/util/math.h",
                     "third/x.h"}));
    // ".." resolves against the current directory; by suffix, the nearest file wins.
    EXPECT_EQ(resolve_imports("src/other/b.cpp", "#include \"../engine/model.h\"\n", cands),
              (Paths{"src/engine/model.h"}));
    EXPECT_EQ(resolve_imports("a/y/z.cpp", "#include \"util.h\"\n", cands), (Paths{"a/x/util.h"}));
}

TEST(ContextImports, JavaScriptAndTypeScript) {
    const Paths cands =
        sorted({"web/src/util.ts", "web/src/comp/index.tsx", "web/src/lib.js", "web/shared/api.ts",
                "web/src/esm.ts", "web/src/data.json", "web/src/app.ts", "web/src/unused.ts"});
    const std::string text =
        "import { a } from './util';\n"
        "import Comp from \"./comp\";\n"
        "const lib = require('./lib');\n"
        "export * from '../shared/api'\n"
        "import x from './esm.js'\n"
        "import data from './data.json'\n"
        "import React from 'react';\n"
        "const later = await import('./util');\n";
    EXPECT_EQ(resolve_imports("web/src/app.ts", text, cands),
              (Paths{"web/shared/api.ts", "web/src/comp/index.tsx", "web/src/data.json",
                     "web/src/esm.ts", "web/src/lib.js", "web/src/util.ts"}));
}

TEST(ContextImports, GoRustJava) {
    const Paths go = sorted({"internal/store/store.go", "internal/store/store_test.go",
                             "internal/store/cache.go", "pkg/store/other.go", "internal/log/log.go",
                             "cmd/server/main.go"});
    EXPECT_EQ(resolve_imports("cmd/server/main.go",
                              "package main\n\nimport (\n\t\"fmt\"\n"
                              "\t\"example.com/app/internal/store\"\n"
                              "\tlg \"example.com/app/internal/log\"\n)\n",
                              go),
              (Paths{"internal/log/log.go", "internal/store/cache.go", "internal/store/store.go"}));

    const Paths rs = sorted(
        {"src/parser.rs", "src/net/mod.rs", "src/util/strings.rs", "src/lib.rs", "src/other.rs"});
    EXPECT_EQ(resolve_imports("src/lib.rs",
                              "mod parser;\npub mod net;\nuse crate::util::strings::trim;\n", rs),
              (Paths{"src/net/mod.rs", "src/parser.rs", "src/util/strings.rs"}));

    const Paths jv =
        sorted({"src/main/java/com/x/model/User.java", "src/main/java/com/x/util/Strings.java",
                "lib/Other.kt", "src/main/java/com/x/App.java"});
    EXPECT_EQ(resolve_imports("src/main/java/com/x/App.java",
                              "package com.x;\nimport com.x.model.User;\n"
                              "import static com.x.util.Strings.join;\n"
                              "import java.util.List;\nimport com.y.Other;\n",
                              jv),
              (Paths{"lib/Other.kt", "src/main/java/com/x/model/User.java",
                     "src/main/java/com/x/util/Strings.java"}));
}

TEST(ContextImports, UnknownLanguageImportsNothing) {
    EXPECT_EQ(resolve_imports("notes.md", "import a\n#include \"b.h\"\n", sorted({"a.py", "b.h"})),
              Paths{});
}

// ---- build_context ---------------------------------------------------------------------

class ContextTest : public ::testing::Test {
  protected:
    void SetUp() override {
        std::string tmpl = ::testing::TempDir() + "hearth_ctx_XXXXXX";
        ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
        root_ = fs::canonical(tmpl);
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(root_, ec);
    }
    void write(const std::string& rel, const std::string& text) {
        const fs::path p = root_ / rel;
        fs::create_directories(p.parent_path());
        std::ofstream(p, std::ios::binary) << text;
    }
    RepoIndex scan() {
        auto r = RepoIndex::scan(root_, default_scan_options());
        EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
        return r.ok() ? std::move(*r) : RepoIndex();
    }
    static Paths paths(const std::vector<ContextFile>& ctx) {
        Paths out;
        for (const auto& c : ctx) out.push_back(c.path);
        return out;
    }
    static size_t cost(const std::string& path, size_t bytes) { return path.size() + bytes + 8; }
    static size_t total_cost(const std::vector<ContextFile>& ctx) {
        size_t n = 0;
        for (const auto& c : ctx) n += cost(c.path, c.text.size());
        return n;
    }
    fs::path root_;
};

ContextOptions byte_budget(size_t bytes) {
    ContextOptions o;
    o.bytes_per_token = 1.0;
    o.budget_tokens = static_cast<int32_t>(bytes);
    return o;
}

TEST_F(ContextTest, RanksImportsThenSiblingsThenOpenThenDirectoryThenLanguageThenProximity) {
    const std::string body = std::string(99, '#') + "\n";
    // In rank order.
    const Paths ranked = {"lib/dep.py", "a/test_main.py", "z/open.py", "a/notes.txt",
                          "q/other.py", "a/b/near.txt",   "far.txt",   "zz/far2.txt"};
    for (const auto& p : ranked) write(p, body);
    write("a/main.py", "import lib.dep\n");
    const RepoIndex idx = scan();
    const std::vector<OpenDocument> open = {{"z/open.py", body, false, 0}};
    RecentEdits edits;
    size_t budget = 0;
    for (size_t k = 1; k <= ranked.size(); ++k) {
        budget += cost(ranked[k - 1], body.size());
        const auto ctx =
            build_context(idx, "a/main.py", "import lib.dep\n", open, edits, byte_budget(budget));
        Paths want(ranked.begin(), ranked.begin() + static_cast<ptrdiff_t>(k));
        std::sort(want.begin(), want.end());  // all come from disk: sorted by path
        EXPECT_EQ(paths(ctx), want) << "budget for " << k << " files";
        EXPECT_LE(total_cost(ctx), budget);
    }
}

TEST_F(ContextTest, AFileThatDoesNotFitIsSkippedSmallerOnesStillFit) {
    write("main.py", "import big\nimport small\n");
    write("big.py", std::string(1000, 'b'));
    write("small.py", std::string(50, 's'));
    write("zzz.txt", std::string(60, 'z'));
    const RepoIndex idx = scan();
    RecentEdits edits;
    const size_t budget = cost("small.py", 50) + cost("zzz.txt", 60) + 10;
    const auto ctx =
        build_context(idx, "main.py", "import big\nimport small\n", {}, edits, byte_budget(budget));
    EXPECT_EQ(paths(ctx), (Paths{"small.py", "zzz.txt"}));
    EXPECT_LE(total_cost(ctx), budget);
}

TEST_F(ContextTest, BudgetIsRespected) {
    for (int i = 0; i < 40; ++i) {
        write("d" + std::to_string(i % 5) + "/f" + std::to_string(i) + ".c",
              std::string(static_cast<size_t>(37 * i % 500 + 1), 'x'));
    }
    write("d0/main.c", "#include \"f5.c\"\n");
    const RepoIndex idx = scan();
    RecentEdits edits;
    edits.record("d3/f3.c", std::string(80, 'e') + "\n", 0, 0);
    for (int tokens : {0, 10, 100, 500, 1000, 3000}) {
        ContextOptions o;
        o.budget_tokens = tokens;
        const auto ctx = build_context(idx, "d0/main.c", "#include \"f5.c\"\n", {}, edits, o);
        EXPECT_LE(static_cast<double>(total_cost(ctx)), tokens * o.bytes_per_token) << tokens;
        EXPECT_EQ(ctx.empty(), tokens == 0) << tokens;
    }
}

TEST_F(ContextTest, StableOrderDirtyDocumentsAndEditChunks) {
    write("a_dirty.py", "disk a\n");
    write("b_dirty.py", "disk b\n");
    write("c_clean.py", "clean\n");
    write("d.py", "d\n");
    const std::string big = numbered_lines(600);  // too big to go in whole
    write("x.py", big);
    write("y.py", big);
    write("cur.py", "current on disk\n");
    const RepoIndex idx = scan();

    const std::vector<OpenDocument> open = {
        {"b_dirty.py", "editor b\n", true, 5},
        {"a_dirty.py", "editor a\n", true, 3},
        {"c_clean.py", "clean\n", false, 0},
        {"cur.py", "current in editor\n", true, 9},
    };
    RecentEdits edits(8, 1);
    edits.record("x.py", big, 100, 100);  // oldest
    edits.record("y.py", big, 200, 200);
    edits.record("cur.py", "current in editor\n", 0, 0);
    edits.record("a_dirty.py", "editor a\n", 0, 0);  // newest; its file goes in whole

    const auto ctx =
        build_context(idx, "cur.py", "current in editor\n", open, edits, byte_budget(1000));
    ASSERT_EQ(paths(ctx),
              (Paths{"c_clean.py", "d.py", "a_dirty.py", "b_dirty.py", "x.py", "y.py"}));
    EXPECT_EQ(ctx[0].text, "clean\n");
    EXPECT_EQ(ctx[1].text, "d\n");
    EXPECT_EQ(ctx[2].text, "editor a\n");  // the editor's text, not the disk's
    EXPECT_EQ(ctx[3].text, "editor b\n");
    EXPECT_EQ(ctx[4].text, "l99\nl100\nl101\n");
    EXPECT_EQ(ctx[5].text, "l199\nl200\nl201\n");
    EXPECT_LE(total_cost(ctx), 1000u);

    // The same inputs give the same output, whatever the order of the open documents.
    std::vector<OpenDocument> shuffled(open.rbegin(), open.rend());
    const auto again =
        build_context(idx, "cur.py", "current in editor\n", shuffled, edits, byte_budget(1000));
    ASSERT_EQ(again.size(), ctx.size());
    for (size_t i = 0; i < ctx.size(); ++i) {
        EXPECT_EQ(again[i].path, ctx[i].path);
        EXPECT_EQ(again[i].text, ctx[i].text);
    }
}

TEST_F(ContextTest, TheCurrentFileIsNeverIncluded) {
    write("cur.py", "x\n");
    write("other.py", "y\n");
    const RepoIndex idx = scan();
    RecentEdits edits;
    edits.record("cur.py", "x\n", 0, 0);
    const std::vector<OpenDocument> open = {{"cur.py", "x edited\n", true, 1}};
    const auto ctx = build_context(idx, "cur.py", "import cur\n", open, edits, ContextOptions{});
    EXPECT_EQ(paths(ctx), (Paths{"other.py"}));
}

TEST_F(ContextTest, IneligibleDocumentsAreNeverUsed) {
    write(".gitignore", "*.log\n");
    write("debug.log", "log on disk\n");
    write("ok.py", "ok\n");
    write("image.py", "disk text\n");
    const RepoIndex idx = scan();
    RecentEdits edits;
    edits.record(".env", "TOKEN=1\n", 0, 0);
    edits.record("node_modules/m.js", "m\n", 0, 0);
    const std::vector<OpenDocument> open = {
        {".env", "TOKEN=1\n", true, 1},
        {"node_modules/m.js", "m\n", true, 2},
        {"debug.log", "log in editor\n", true, 3},
        {"secrets/server.pem", "KEY\n", true, 4},
        {"image.py", std::string("\0\x01\x02", 3), true, 5},  // binary in the editor
        {"unsaved.py", "new file\n", true, 6},                // not on disk yet
        {"../outside.py", "x\n", true, 7},
    };
    const auto ctx = build_context(idx, "main.py", "", open, edits, ContextOptions{});
    EXPECT_EQ(paths(ctx), (Paths{".gitignore", "ok.py", "unsaved.py"}));
    EXPECT_EQ(ctx[2].text, "new file\n");
}

TEST_F(ContextTest, RecentlyEditedFilesRankAboveTheDirectory) {
    std::string edited;
    for (int i = 0; i < 10; ++i) edited += "eeeeeeeee\n";
    write("src/main.c", "int main;\n");
    write("src/same_dir.c", std::string(98, 's'));  // costs as much as lib/edited.c
    write("lib/edited.c", edited);
    const RepoIndex idx = scan();
    RecentEdits edits(8, 0);
    edits.record("lib/edited.c", edited, 5, 5);
    const size_t chunk = cost("lib/edited.c", 10);
    ASSERT_EQ(cost("src/same_dir.c", 98), cost("lib/edited.c", 100));
    // Room for the chunk and one of the two files: the edited one wins, and its chunk then
    // goes (the whole file holds it); the freed bytes do not fit the other file.
    const auto ctx = build_context(idx, "src/main.c", "int main;\n", {}, edits,
                                   byte_budget(chunk + cost("lib/edited.c", 100)));
    EXPECT_EQ(paths(ctx), (Paths{"lib/edited.c"}));
    EXPECT_EQ(ctx[0].text, edited);
}

}  // namespace
}  // namespace hearth
