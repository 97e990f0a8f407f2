// RepoIndex: the repository scan, its skip rules, symlinks, eligibility, reads and updates.
#include "repo_index.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace hearth {
namespace {

namespace fs = std::filesystem;

class RepoIndexTest : public ::testing::Test {
  protected:
    void SetUp() override {
        std::string tmpl = ::testing::TempDir() + "hearth_repo_XXXXXX";
        ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
        base_ = fs::canonical(tmpl);
        root_ = base_ / "repo";
        fs::create_directories(root_);
    }
    void TearDown() override {
        std::error_code ec;
        fs::permissions(root_ / "locked", fs::perms::owner_all, ec);
        fs::remove_all(base_, ec);
    }
    void write(const std::string& rel, const std::string& text) {
        const fs::path p = root_ / rel;
        fs::create_directories(p.parent_path());
        std::ofstream(p, std::ios::binary) << text;
    }
    void link(const std::string& target, const std::string& rel) {
        fs::create_directories((root_ / rel).parent_path());
        fs::create_symlink(target, root_ / rel);
    }
    RepoIndex scan(const ScanOptions& o = default_scan_options()) {
        auto r = RepoIndex::scan(root_, o);
        EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
        return r.ok() ? std::move(*r) : RepoIndex();
    }
    static std::vector<std::string> paths(const RepoIndex& idx) {
        std::vector<std::string> out;
        for (const auto& f : idx.files()) out.push_back(f.path);
        return out;
    }
    fs::path base_;
    fs::path root_;
};

using Paths = std::vector<std::string>;

TEST_F(RepoIndexTest, IndexesTextFilesSortedWithSizes) {
    write("b.py", "print(1)\n");
    write("a/z.c", "int z;\n");
    write("a.txt", "hello");
    write("a/b/c.h", "#pragma once\n");
    write("empty.md", "");
    RepoIndex idx = scan();
    EXPECT_EQ(paths(idx), (Paths{"a.txt", "a/b/c.h", "a/z.c", "b.py", "empty.md"}));
    EXPECT_EQ(idx.root(), fs::canonical(root_));
    const IndexedFile* f = idx.find("a.txt");
    ASSERT_NE(f, nullptr);
    EXPECT_EQ(f->size, 5u);
    EXPECT_GT(f->mtime_ns, 0);
    EXPECT_EQ(idx.find("nope.txt"), nullptr);
    EXPECT_EQ(idx.find("a"), nullptr);
    auto text = idx.read("a/z.c");
    ASSERT_TRUE(text.ok()) << text.error().message;
    EXPECT_EQ(*text, "int z;\n");
}

TEST(RepoIndexEmpty, AnEmptyIndexReadsNothing) {
    // Without a root, relative paths must not resolve against the working directory.
    RepoIndex idx;
    EXPECT_TRUE(idx.files().empty());
    EXPECT_FALSE(idx.eligible("CMakeLists.txt"));
    EXPECT_FALSE(idx.read("CMakeLists.txt").ok());
    EXPECT_FALSE(idx.update("CMakeLists.txt"));
    EXPECT_EQ(idx.relative("/tmp/x.py"), std::nullopt);
}

TEST_F(RepoIndexTest, RootMustBeADirectory) {
    write("file.txt", "x");
    auto r = RepoIndex::scan(root_ / "file.txt", default_scan_options());
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("not a directory"), std::string::npos);
    EXPECT_FALSE(RepoIndex::scan(root_ / "missing", default_scan_options()).ok());
}

TEST_F(RepoIndexTest, HonoursNestedIgnoreFilesAndNegation) {
    write(".gitignore", "*.log\nout-*/\n/top_only.txt\n");
    write("top_only.txt", "x");
    write("sub/top_only.txt", "x");
    write("app.log", "x");
    write("out-1/a.c", "x");
    write("sub/.gitignore", "!keep.log\nlocal/\n");
    write("sub/keep.log", "x");
    write("sub/drop.log", "x");
    write("sub/local/a.c", "x");
    write("local/a.c", "x");  // sub's rule does not reach the root
    write("sub/deeper/.ignore", "*.c\n");
    write("sub/deeper/x.c", "x");
    write("sub/deeper/x.h", "x");
    write("sub/deeper/keep.log", "x");
    RepoIndex idx = scan();
    EXPECT_EQ(paths(idx),
              (Paths{".gitignore", "local/a.c", "sub/.gitignore", "sub/deeper/.ignore",
                     "sub/deeper/keep.log", "sub/deeper/x.h", "sub/keep.log", "sub/top_only.txt"}));
}

TEST_F(RepoIndexTest, CannotReincludeInsideAnIgnoredDirectory) {
    write(".gitignore", "gen/\n!gen/keep.txt\n");
    write("gen/.gitignore", "!keep.txt\n");
    write("gen/keep.txt", "x");
    write("docs/.gitignore", "/*\n!/public\n/public/*\n!/public/index.md\n");
    write("docs/draft.md", "x");
    write("docs/public/index.md", "x");
    write("docs/public/other.md", "x");
    write("docs/public/sub/x.md", "x");
    RepoIndex idx = scan();
    EXPECT_EQ(paths(idx), (Paths{".gitignore", "docs/public/index.md"}));
    EXPECT_FALSE(idx.eligible("gen/keep.txt"));
    EXPECT_FALSE(idx.read("gen/keep.txt").ok());
    EXPECT_TRUE(idx.eligible("docs/public/index.md"));
    EXPECT_FALSE(idx.eligible("docs/public/sub/x.md"));
}

TEST_F(RepoIndexTest, DotIgnoreWinsOverGitignore) {
    write(".gitignore", "*.txt\n");
    write(".ignore", "!wanted.txt\nsearch-only/\n");
    write("wanted.txt", "x");
    write("other.txt", "x");
    write("search-only/a.c", "x");
    RepoIndex idx = scan();
    EXPECT_EQ(paths(idx), (Paths{".gitignore", ".ignore", "wanted.txt"}));
}

TEST_F(RepoIndexTest, GitInfoExcludeAndOptionPatterns) {
    write(".git/info/exclude", "local.txt\n");
    write("local.txt", "x");
    write("sub/local.txt", "x");
    write("a.tmp", "x");
    write("important.tmp", "x");
    write(".gitignore", "!important.tmp\n");
    write("main.c", "x");
    ScanOptions o = default_scan_options();
    o.exclude = {"*.tmp"};
    RepoIndex idx = scan(o);
    EXPECT_EQ(paths(idx), (Paths{".gitignore", "important.tmp", "main.c"}));
    EXPECT_FALSE(idx.eligible("a.tmp"));
    EXPECT_TRUE(idx.eligible("important.tmp"));
}

TEST_F(RepoIndexTest, SecretsAreNeverIndexedOrRead) {
    const Paths secrets = {".env",
                           ".env.local",
                           "config/.env",
                           "server.pem",
                           "tls/site.key",
                           "store.p12",
                           "id_rsa",
                           "id_rsa.pub",
                           "id_ed25519",
                           ".npmrc",
                           ".pypirc",
                           ".netrc",
                           "app/.git-credentials",
                           "credentials.json",
                           "secrets.yaml",
                           "token.secret",
                           ".aws/config",
                           "home/.ssh/config",
                           ".gnupg/x.txt",
                           "keys.kdbx",
                           "release.jks",
                           "a.keystore",
                           "b.pfx"};
    for (const auto& s : secrets) write(s, "TOKEN=hunter2\n");
    write(".gitignore", "!.env\n!*.pem\n");  // the user cannot re-include a secret
    write("env.py", "x");
    write("key_test.py", "x");
    RepoIndex idx = scan();
    EXPECT_EQ(paths(idx), (Paths{".gitignore", "env.py", "key_test.py"}));
    for (const auto& s : secrets) {
        EXPECT_FALSE(idx.eligible(s)) << s;
        auto r = idx.read(s);
        EXPECT_FALSE(r.ok()) << s;
        EXPECT_FALSE(idx.update(s)) << s;
        EXPECT_EQ(idx.find(s), nullptr) << s;
    }
}

TEST_F(RepoIndexTest, SkipDirsAreNeverEntered) {
    for (const char* d : {".git", "node_modules", "vendor", "third_party", ".venv",
                          "venv", "__pycache__",  "build",  "dist",        "target",
                          "out",  ".cache",       ".idea",  ".vscode",     ".gradle",
                          ".hg",  ".svn",         ".tox",   ".mypy_cache", ".pytest_cache"}) {
        write(std::string(d) + "/a.js", "x");
        write(std::string("pkg/") + d + "/b.js", "x");
    }
    write(".gitignore", "!node_modules/\n!build/\n");
    write("pkg/build.py", "x");  // files named like a skipped directory are fine
    write("lib/vendor", "x");
    RepoIndex idx = scan();
    EXPECT_EQ(paths(idx), (Paths{".gitignore", "lib/vendor", "pkg/build.py"}));
    EXPECT_FALSE(idx.eligible("node_modules/a.js"));
    EXPECT_FALSE(idx.eligible("pkg/build/b.js"));
    EXPECT_TRUE(idx.eligible("lib/vendor"));
}

TEST_F(RepoIndexTest, OptionsReplaceTheDefaultLists) {
    write("build/a.c", "x");
    write(".env", "x");
    write("custom/a.c", "x");
    ScanOptions o;  // no defaults
    o.skip_dirs = {"custom"};
    RepoIndex idx = scan(o);
    EXPECT_EQ(paths(idx), (Paths{".env", "build/a.c"}));
}

TEST(RepoIndexContent, ClassifiesBinaryAndGeneratedText) {
    EXPECT_EQ(classify_content("plain text\n", false), ContentKind::Text);
    EXPECT_EQ(classify_content("", false), ContentKind::Text);
    EXPECT_EQ(classify_content(std::string("a\0b", 3), false), ContentKind::Binary);
    EXPECT_EQ(classify_content("caf\xC3\xA9", false), ContentKind::Text);
    EXPECT_EQ(classify_content("caf\xE9", false), ContentKind::Binary);       // Latin-1
    EXPECT_EQ(classify_content("\xED\xA0\x80", false), ContentKind::Binary);  // surrogate
    // A character cut by the window end is fine only when the file goes on.
    EXPECT_EQ(classify_content("ab\xE2\x82", true), ContentKind::Text);
    EXPECT_EQ(classify_content("ab\xE2\x82", false), ContentKind::Binary);
    EXPECT_EQ(classify_content("ab\xFF", true), ContentKind::Binary);
    EXPECT_EQ(classify_content("// Code generated by protoc. DO NOT EDIT.\n", false),
              ContentKind::Generated);
    EXPECT_EQ(classify_content("1\n2\n3\n4\n# @generated by tool\n6\n", false),
              ContentKind::Generated);
    EXPECT_EQ(classify_content("1\n2\n3\n4\n5\n@generated on line 6\n", false), ContentKind::Text);
    EXPECT_TRUE(generated_file_name("app.min.js"));
    EXPECT_TRUE(generated_file_name("yarn.lock"));
    EXPECT_TRUE(generated_file_name("api_pb2.py"));
    EXPECT_FALSE(generated_file_name("main.js"));
    EXPECT_FALSE(generated_file_name("lock.py"));
}

TEST_F(RepoIndexTest, SkipsBinaryFiles) {
    write("nul.dat", std::string("abc\0def", 7));
    write("latin1.txt", "caf\xE9\n");
    write("utf8.txt", "caf\xC3\xA9 \xF0\x9F\x98\x80\n");
    // A 4-byte character straddling the 8 KiB window: the window ends inside it.
    write("straddle.txt", std::string(8190, 'a') + "\xF0\x9F\x98\x80" + "tail\n");
    // Bytes past the window are not looked at by the scan.
    write("late_nul.txt", std::string(9000, 'a') + std::string("\0", 1));
    write("late_nul_early.txt", std::string(100, 'a') + std::string("\0", 1));
    RepoIndex idx = scan();
    EXPECT_EQ(paths(idx), (Paths{"late_nul.txt", "straddle.txt", "utf8.txt"}));
    EXPECT_FALSE(idx.read("nul.dat").ok());
    EXPECT_FALSE(idx.read("latin1.txt").ok());
    auto s = idx.read("straddle.txt");
    ASSERT_TRUE(s.ok()) << s.error().message;
    EXPECT_EQ(s->size(), 8190u + 4 + 5);
}

TEST_F(RepoIndexTest, SkipsFilesOverTheSizeLimit) {
    write("small.txt", std::string(100, 'x'));
    write("big.txt", std::string(101, 'x'));
    ScanOptions o = default_scan_options();
    o.max_file_bytes = 100;
    RepoIndex idx = scan(o);
    EXPECT_EQ(paths(idx), (Paths{"small.txt"}));
    auto r = idx.read("big.txt");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("larger than 100"), std::string::npos) << r.error().message;
    EXPECT_FALSE(idx.eligible("big.txt"));
    EXPECT_TRUE(idx.read("small.txt").ok());
}

TEST_F(RepoIndexTest, SkipsGeneratedFiles) {
    for (const char* n : {"app.min.js", "site.min.css", "app.js.map", "package-lock.json",
                          "yarn.lock", "pnpm-lock.yaml", "Cargo.lock", "poetry.lock", "go.sum",
                          "composer.lock", "msg_pb2.py", "msg.pb.go", "msg.pb.cc", "msg.pb.h"}) {
        write(std::string("g/") + n, "x\n");
    }
    write("proto.go", "// Code generated by protoc-gen-go. DO NOT EDIT.\npackage x\n");
    write("schema.ts", "/**\n * @generated\n */\nexport {}\n");
    write("late.ts", "1\n2\n3\n4\n5\n// @generated is on line 6\n");
    write("app.js", "console.log(1)\n");
    RepoIndex idx = scan();
    EXPECT_EQ(paths(idx), (Paths{"app.js", "late.ts"}));
    EXPECT_FALSE(idx.eligible("g/yarn.lock"));
    EXPECT_FALSE(idx.read("proto.go").ok());
}

TEST_F(RepoIndexTest, SymlinksInsideAndOutsideTheRoot) {
    write("src/real.py", "x = 1\n");
    write(".env", "SECRET=1\n");
    write("ignored/data.txt", "x");
    write(".gitignore", "ignored/\n");
    std::ofstream(base_ / "outside.txt") << "outside\n";
    fs::create_directories(base_ / "outside_dir");
    std::ofstream(base_ / "outside_dir" / "o.py") << "o\n";

    link("src/real.py", "inside_link.py");                   // file inside: indexed
    link((base_ / "outside.txt").string(), "out_link.txt");  // file outside: skipped
    link(".env", "innocent.txt");                            // to a secret: skipped
    link("ignored/data.txt", "data_link.txt");               // to an ignored file: skipped
    link("src", "src_link");                                 // directory inside: not followed
    link((base_ / "outside_dir").string(), "outside_link");  // directory outside: not followed
    link("loop_b", "loop_a");                                // a loop
    link("loop_a", "loop_b");
    link("self", "self");
    link("missing.py", "dangling.py");
    RepoIndex idx = scan();
    EXPECT_EQ(paths(idx), (Paths{".gitignore", "inside_link.py", "src/real.py"}));
    auto in = idx.read("inside_link.py");
    ASSERT_TRUE(in.ok()) << in.error().message;
    EXPECT_EQ(*in, "x = 1\n");
    auto out = idx.read("out_link.txt");
    ASSERT_FALSE(out.ok());
    EXPECT_NE(out.error().message.find("outside"), std::string::npos) << out.error().message;
    EXPECT_FALSE(idx.read("innocent.txt").ok());
    EXPECT_FALSE(idx.read("data_link.txt").ok());
    EXPECT_FALSE(idx.read("loop_a").ok());
    // Nothing behind a directory symlink is read or eligible, inside the root or not.
    EXPECT_FALSE(idx.read("src_link/real.py").ok());
    EXPECT_FALSE(idx.read("outside_link/o.py").ok());
    EXPECT_FALSE(idx.eligible("src_link/real.py"));
    EXPECT_FALSE(idx.eligible("outside_link/o.py"));
    EXPECT_FALSE(idx.update("outside_link/o.py"));
    EXPECT_FALSE(idx.update("outside_link"));
    EXPECT_TRUE(idx.eligible("inside_link.py"));
    EXPECT_FALSE(idx.eligible("out_link.txt"));
    EXPECT_FALSE(idx.eligible("innocent.txt"));
    EXPECT_FALSE(idx.eligible("loop_a"));
    EXPECT_FALSE(idx.update("out_link.txt"));
    EXPECT_FALSE(idx.update("src_link"));
    EXPECT_EQ(paths(idx), (Paths{".gitignore", "inside_link.py", "src/real.py"}));
}

TEST_F(RepoIndexTest, SymlinkedIgnoreFilesAreNotFollowed) {
    // As git does since 2.32: an in-tree .gitignore that is a symlink is not read.
    write("rules.txt", "*.py\n");
    link("../rules.txt", "sub/.gitignore");
    write("sub/a.py", "x\n");
    RepoIndex idx = scan();
    EXPECT_EQ(paths(idx), (Paths{"rules.txt", "sub/.gitignore", "sub/a.py"}));
    EXPECT_TRUE(idx.eligible("sub/a.py"));
}

TEST_F(RepoIndexTest, RootReachedThroughASymlink) {
    write("a.py", "x\n");
    fs::create_symlink(root_, base_ / "root_link");
    auto r = RepoIndex::scan(base_ / "root_link", default_scan_options());
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->root(), root_);
    EXPECT_EQ(paths(*r), (Paths{"a.py"}));
    EXPECT_EQ(r->relative(base_ / "root_link" / "a.py"), "a.py");
}

TEST_F(RepoIndexTest, UnreadableDirectoriesAreSkipped) {
    write("locked/a.py", "x\n");
    write("open/b.py", "x\n");
    fs::permissions(root_ / "locked", fs::perms::none);
    RepoIndex idx = scan();
    if (geteuid() == 0) {
        // Permissions do not bind root: the scan must still succeed and see both.
        EXPECT_EQ(paths(idx), (Paths{"locked/a.py", "open/b.py"}));
    } else {
        EXPECT_EQ(paths(idx), (Paths{"open/b.py"}));
    }
}

TEST_F(RepoIndexTest, ScanIsDeterministicAndBounded) {
    for (int i = 0; i < 30; ++i) {
        write("d" + std::to_string(i % 4) + "/f" + std::to_string(i) + ".txt", "x");
        write("d" + std::to_string(i % 4) + ".txt", "x");
    }
    write("d1-x/a.txt", "x");  // '-' sorts before '/'
    const RepoIndex a = scan();
    const RepoIndex b = scan();
    EXPECT_EQ(paths(a), paths(b));
    const Paths pa = paths(a);
    EXPECT_TRUE(std::is_sorted(pa.begin(), pa.end()));
    EXPECT_EQ(a.files().size(), 35u);

    ScanOptions o = default_scan_options();
    o.max_files = 3;
    const RepoIndex c = scan(o);
    EXPECT_EQ(paths(c), (Paths{"d0.txt", "d0/f0.txt", "d0/f12.txt"}));
}

TEST_F(RepoIndexTest, CancelAndProgress) {
    for (int i = 0; i < 600; ++i) write("d/f" + std::to_string(i) + ".txt", "x");
    std::vector<size_t> reports;
    auto r = RepoIndex::scan(
        root_, default_scan_options(), [] { return false; },
        [&](size_t n) { reports.push_back(n); });
    ASSERT_TRUE(r.ok());
    ASSERT_GE(reports.size(), 3u);  // every 256 files, then at the end
    EXPECT_EQ(reports.back(), 600u);
    EXPECT_TRUE(std::is_sorted(reports.begin(), reports.end()));

    int polls = 0;
    auto c = RepoIndex::scan(root_, default_scan_options(), [&] { return ++polls > 1; });
    ASSERT_FALSE(c.ok());
    EXPECT_EQ(c.error().message, "cancelled");
}

TEST_F(RepoIndexTest, RelativePathsAndUris) {
    write("a b/c.py", "x\n");
    RepoIndex idx = scan();
    EXPECT_EQ(idx.relative(root_ / "a b" / "c.py"), "a b/c.py");
    EXPECT_EQ(idx.relative("file://" + (root_ / "a%20b" / "c.py").string()), "a b/c.py");
    EXPECT_EQ(idx.relative("file://localhost" + (root_ / "x.py").string()), "x.py");
    EXPECT_EQ(idx.relative(root_ / "sub" / ".." / "x.py"), "x.py");
    EXPECT_EQ(idx.relative(root_), std::nullopt);
    EXPECT_EQ(idx.relative(base_ / "other.py"), std::nullopt);
    EXPECT_EQ(idx.relative(root_ / ".." / "repo2" / "x.py"), std::nullopt);
    EXPECT_EQ(idx.relative("relative/path.py"), std::nullopt);
}

TEST_F(RepoIndexTest, Eligibility) {
    write(".gitignore", "*.log\n");
    write("src/a.py", "x\n");
    RepoIndex idx = scan();
    EXPECT_TRUE(idx.eligible("src/a.py"));
    EXPECT_TRUE(idx.eligible("./src//a.py"));
    EXPECT_TRUE(idx.eligible("src/unsaved_new_file.py"));  // not on disk: judged by name
    EXPECT_FALSE(idx.eligible("debug.log"));
    EXPECT_FALSE(idx.eligible("src/.env"));
    EXPECT_FALSE(idx.eligible("node_modules/x.js"));
    EXPECT_FALSE(idx.eligible("../outside.py"));
    EXPECT_FALSE(idx.eligible("/etc/passwd"));
    EXPECT_FALSE(idx.eligible("src"));  // a directory
    EXPECT_FALSE(idx.read("../repo/src/a.py").ok());
}

TEST_F(RepoIndexTest, UpdateCreateModifyDelete) {
    write("a.py", "a\n");
    RepoIndex idx = scan();
    EXPECT_EQ(paths(idx), (Paths{"a.py"}));

    write("b.py", "b\n");
    EXPECT_TRUE(idx.update("b.py"));
    EXPECT_EQ(paths(idx), (Paths{"a.py", "b.py"}));
    EXPECT_FALSE(idx.update("b.py"));  // nothing changed

    write("b.py", "bbbb\n");
    EXPECT_TRUE(idx.update("b.py"));
    EXPECT_EQ(idx.find("b.py")->size, 5u);

    write("b.py", std::string("\0\0", 2));  // became binary
    EXPECT_TRUE(idx.update("b.py"));
    EXPECT_EQ(paths(idx), (Paths{"a.py"}));

    fs::remove(root_ / "a.py");
    EXPECT_TRUE(idx.update("a.py"));
    EXPECT_TRUE(idx.files().empty());
    EXPECT_FALSE(idx.update("a.py"));

    write(".env", "x");
    EXPECT_FALSE(idx.update(".env"));
    write("node_modules/x.js", "x");
    EXPECT_FALSE(idx.update("node_modules/x.js"));
    EXPECT_TRUE(idx.files().empty());
}

TEST_F(RepoIndexTest, UpdateDirectories) {
    write("keep.py", "x\n");
    RepoIndex idx = scan();
    write("pkg/a.py", "x\n");
    write("pkg/sub/b.py", "x\n");
    write("pkg/.gitignore", "*.tmp\n");
    write("pkg/c.tmp", "x\n");
    EXPECT_TRUE(idx.update("pkg"));
    EXPECT_EQ(paths(idx), (Paths{"keep.py", "pkg/.gitignore", "pkg/a.py", "pkg/sub/b.py"}));
    // A file created later in the new directory obeys its ignore file.
    write("pkg/d.tmp", "x\n");
    EXPECT_FALSE(idx.update("pkg/d.tmp"));
    fs::remove_all(root_ / "pkg");
    EXPECT_TRUE(idx.update("pkg"));
    EXPECT_EQ(paths(idx), (Paths{"keep.py"}));
}

TEST_F(RepoIndexTest, UpdateAfterAnIgnoreFileChanges) {
    write("src/a.py", "x\n");
    write("src/b.py", "x\n");
    write("src/gen/c.py", "x\n");
    write("other/a.py", "x\n");
    RepoIndex idx = scan();
    EXPECT_EQ(paths(idx), (Paths{"other/a.py", "src/a.py", "src/b.py", "src/gen/c.py"}));

    write("src/.gitignore", "a.py\ngen/\n");
    EXPECT_TRUE(idx.update("src/.gitignore"));
    EXPECT_EQ(paths(idx), (Paths{"other/a.py", "src/.gitignore", "src/b.py"}));
    EXPECT_FALSE(idx.eligible("src/gen/c.py"));

    write("src/.ignore", "!a.py\n");
    EXPECT_TRUE(idx.update("src/.ignore"));
    EXPECT_EQ(paths(idx),
              (Paths{"other/a.py", "src/.gitignore", "src/.ignore", "src/a.py", "src/b.py"}));

    fs::remove(root_ / "src" / ".gitignore");
    fs::remove(root_ / "src" / ".ignore");
    EXPECT_TRUE(idx.update("src/.gitignore"));
    EXPECT_EQ(paths(idx), (Paths{"other/a.py", "src/a.py", "src/b.py", "src/gen/c.py"}));

    write(".gitignore", "a.py\n");  // the root file reaches every directory
    EXPECT_TRUE(idx.update(".gitignore"));
    EXPECT_EQ(paths(idx), (Paths{".gitignore", "src/b.py", "src/gen/c.py"}));
    EXPECT_FALSE(idx.update(".gitignore"));

    write(".git/info/exclude", "b.py\n");
    EXPECT_TRUE(idx.update(".git/info/exclude"));
    EXPECT_EQ(paths(idx), (Paths{".gitignore", "src/gen/c.py"}));
}

TEST_F(RepoIndexTest, UpdateRespectsMaxFiles) {
    write("a.txt", "x");
    ScanOptions o = default_scan_options();
    o.max_files = 1;
    RepoIndex idx = scan(o);
    write("b.txt", "x");
    EXPECT_FALSE(idx.update("b.txt"));
    EXPECT_EQ(paths(idx), (Paths{"a.txt"}));
}

TEST(RepoIndexSource, ScansThisRepositoryQuickly) {
    const fs::path source = fs::path(HEARTH_TEST_DATA).parent_path().parent_path();
    const auto t0 = std::chrono::steady_clock::now();
    auto r = RepoIndex::scan(source, default_scan_options());
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    ASSERT_TRUE(r.ok()) << r.error().message;
    std::printf("scanned %zu files of %s in %.1f ms\n", r->files().size(), source.c_str(), ms);
    EXPECT_NE(r->find("workspace/repo_index.h"), nullptr);
    EXPECT_NE(r->find("CMakeLists.txt"), nullptr);
    for (const auto& f : r->files()) {
        EXPECT_FALSE(f.path.starts_with("build/")) << f.path;
        EXPECT_FALSE(f.path.starts_with(".git/")) << f.path;
        EXPECT_FALSE(f.path.ends_with(".gguf")) << f.path;
    }
}

}  // namespace
}  // namespace hearth
