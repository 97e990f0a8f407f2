// Gitignore-syntax matching: wildmatch, rule parsing, precedence and nested rule sets.
#include "ignore.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace hearth {
namespace {

namespace fs = std::filesystem;

IgnoreMatch m(const char* text, const char* path, bool is_dir = false) {
    return IgnoreRules::parse(text).match(path, is_dir);
}

bool ig(const char* text, const char* path, bool is_dir = false) {
    return m(text, path, is_dir) == IgnoreMatch::Ignore;
}

TEST(IgnoreGlob, StarAndQuestionStopAtSlash) {
    EXPECT_TRUE(glob_match("*.cpp", "a.cpp"));
    EXPECT_TRUE(glob_match("*", ""));
    EXPECT_FALSE(glob_match("*.cpp", "a.cc"));
    EXPECT_FALSE(glob_match("*.cpp", "dir/a.cpp"));
    EXPECT_TRUE(glob_match("a?c", "abc"));
    EXPECT_FALSE(glob_match("a?c", "a/c"));
    EXPECT_FALSE(glob_match("a?c", "ac"));
    EXPECT_TRUE(glob_match("a*/b", "abc/b"));
    EXPECT_FALSE(glob_match("a*/b", "abc/x/b"));
    EXPECT_TRUE(glob_match("*a*b*", "xxaxxbxx"));
    EXPECT_FALSE(glob_match("*a*b*", "xxbxxaxx"));
}

TEST(IgnoreGlob, BracketClasses) {
    EXPECT_TRUE(glob_match("[abc].txt", "b.txt"));
    EXPECT_FALSE(glob_match("[abc].txt", "d.txt"));
    EXPECT_TRUE(glob_match("[!abc].txt", "d.txt"));
    EXPECT_FALSE(glob_match("[!abc].txt", "a.txt"));
    EXPECT_TRUE(glob_match("[^abc].txt", "d.txt"));
    EXPECT_FALSE(glob_match("[^abc].txt", "c.txt"));
    EXPECT_TRUE(glob_match("file[0-9].log", "file7.log"));
    EXPECT_FALSE(glob_match("file[0-9].log", "filex.log"));
    EXPECT_TRUE(glob_match("[a-cx-z]", "y"));
    EXPECT_FALSE(glob_match("[a-cx-z]", "m"));
    EXPECT_TRUE(glob_match("[]]", "]"));  // ']' first is literal
    EXPECT_TRUE(glob_match("[!]]", "a"));
    EXPECT_FALSE(glob_match("[!]]", "]"));
    EXPECT_TRUE(glob_match("[a-]", "-"));  // trailing '-' is literal
    EXPECT_TRUE(glob_match("[[:digit:]]x", "5x"));
    EXPECT_FALSE(glob_match("[[:digit:]]x", "ax"));
    EXPECT_TRUE(glob_match("[[:upper:][:digit:]]", "Q"));
    EXPECT_FALSE(glob_match("[[:bogus:]]", "b"));  // malformed class matches nothing
    EXPECT_FALSE(glob_match("a[/]b", "a/b"));      // a class never matches '/'
    EXPECT_FALSE(glob_match("[abc", "a"));         // unterminated
}

TEST(IgnoreGlob, BackslashEscapes) {
    EXPECT_TRUE(glob_match("\\*.txt", "*.txt"));
    EXPECT_FALSE(glob_match("\\*.txt", "a.txt"));
    EXPECT_TRUE(glob_match("a\\?", "a?"));
    EXPECT_FALSE(glob_match("a\\?", "ab"));
    EXPECT_TRUE(glob_match("[\\]]", "]"));
    EXPECT_FALSE(glob_match("foo\\", "foo"));  // a trailing backslash matches nothing
}

TEST(IgnoreGlob, DoubleStar) {
    EXPECT_TRUE(glob_match("**/foo", "foo"));
    EXPECT_TRUE(glob_match("**/foo", "a/b/foo"));
    EXPECT_FALSE(glob_match("**/foo", "a/foox"));
    EXPECT_TRUE(glob_match("**/foo/bar", "x/foo/bar"));
    EXPECT_TRUE(glob_match("abc/**", "abc/x"));
    EXPECT_TRUE(glob_match("abc/**", "abc/x/y/z"));
    EXPECT_FALSE(glob_match("abc/**", "abc"));
    EXPECT_TRUE(glob_match("a/**/b", "a/b"));
    EXPECT_TRUE(glob_match("a/**/b", "a/x/b"));
    EXPECT_TRUE(glob_match("a/**/b", "a/x/y/b"));
    EXPECT_FALSE(glob_match("a/**/b", "a/x/y/c"));
    EXPECT_FALSE(glob_match("a/**/b", "ab"));
    // Not between slashes: an ordinary star.
    EXPECT_TRUE(glob_match("a**b", "axxb"));
    EXPECT_FALSE(glob_match("a**b", "a/b"));
    EXPECT_FALSE(glob_match("x**/y", "x/z/y"));
    EXPECT_TRUE(glob_match("**", "a/b/c"));
}

TEST(IgnoreRules, CommentsBlanksAndEscapes) {
    const char* text =
        "# a comment\n"
        "\n"
        "   \n"
        "\\#hash\n"
        "\\!bang\n";
    auto rules = IgnoreRules::parse(text);
    EXPECT_EQ(rules.size(), 2u);
    EXPECT_EQ(rules.match("#hash", false), IgnoreMatch::Ignore);
    EXPECT_EQ(rules.match("!bang", false), IgnoreMatch::Ignore);
    EXPECT_EQ(rules.match("# a comment", false), IgnoreMatch::None);
    EXPECT_EQ(rules.match("bang", false), IgnoreMatch::None);
}

TEST(IgnoreRules, TrailingSpacesTrimmedUnlessEscaped) {
    EXPECT_TRUE(ig("foo.txt   \n", "foo.txt"));
    EXPECT_FALSE(ig("foo.txt   \n", "foo.txt   "));
    EXPECT_TRUE(ig("foo\\ \n", "foo "));
    EXPECT_FALSE(ig("foo\\ \n", "foo"));
    EXPECT_TRUE(ig("a\\  \n", "a "));  // the escaped space stays, the plain one goes
}

TEST(IgnoreRules, CrlfAndByteOrderMark) {
    auto rules = IgnoreRules::parse("\xEF\xBB\xBF*.log\r\nbuild/\r\n");
    EXPECT_EQ(rules.size(), 2u);
    EXPECT_EQ(rules.match("x.log", false), IgnoreMatch::Ignore);
    EXPECT_EQ(rules.match("build", true), IgnoreMatch::Ignore);
}

TEST(IgnoreRules, NegationAndLastRuleWins) {
    const char* text = "*.log\n!keep.log\n";
    EXPECT_EQ(m(text, "a.log"), IgnoreMatch::Ignore);
    EXPECT_EQ(m(text, "keep.log"), IgnoreMatch::Include);
    EXPECT_EQ(m(text, "d/keep.log"), IgnoreMatch::Include);
    EXPECT_EQ(m(text, "a.txt"), IgnoreMatch::None);
    // Reversed, the later broad rule wins again.
    EXPECT_EQ(m("!keep.log\n*.log\n", "keep.log"), IgnoreMatch::Ignore);
    // "!" alone holds no pattern.
    EXPECT_EQ(IgnoreRules::parse("!\n").size(), 0u);
}

TEST(IgnoreRules, TrailingSlashMatchesDirectoriesOnly) {
    EXPECT_TRUE(ig("foo/\n", "foo", true));
    EXPECT_FALSE(ig("foo/\n", "foo", false));
    EXPECT_TRUE(ig("foo/\n", "a/b/foo", true));  // no other slash: any depth
    EXPECT_TRUE(ig("frotz/\n", "a/frotz", true));
}

TEST(IgnoreRules, SlashAnchorsToTheIgnoreFileDirectory) {
    EXPECT_TRUE(ig("/foo\n", "foo"));
    EXPECT_FALSE(ig("/foo\n", "a/foo"));
    EXPECT_TRUE(ig("doc/frotz/\n", "doc/frotz", true));
    EXPECT_FALSE(ig("doc/frotz/\n", "a/doc/frotz", true));
    EXPECT_TRUE(ig("a/b\n", "a/b"));
    EXPECT_FALSE(ig("a/b\n", "x/a/b"));
    // No slash: the name at any depth.
    EXPECT_TRUE(ig("foo\n", "foo"));
    EXPECT_TRUE(ig("foo\n", "x/y/foo", true));
    EXPECT_TRUE(ig("*.o\n", "src/deep/x.o"));
    // "foo/*" matches foo's children, not grandchildren (those fall under an excluded dir).
    EXPECT_TRUE(ig("foo/*\n", "foo/test.json"));
    EXPECT_TRUE(ig("foo/*\n", "foo/bar", true));
    EXPECT_FALSE(ig("foo/*\n", "foo/bar/hello.c"));
}

TEST(IgnoreRules, DoubleStarForms) {
    EXPECT_TRUE(ig("**/foo\n", "foo"));
    EXPECT_TRUE(ig("**/foo\n", "x/y/foo", true));
    EXPECT_TRUE(ig("**/foo/bar\n", "x/foo/bar"));
    EXPECT_FALSE(ig("**/foo/bar\n", "x/foo/y/bar"));
    EXPECT_TRUE(ig("abc/**\n", "abc/x/y"));
    EXPECT_FALSE(ig("abc/**\n", "abc", true));
    EXPECT_FALSE(ig("abc/**\n", "x/abc/y"));  // anchored
    EXPECT_TRUE(ig("a/**/b\n", "a/b"));
    EXPECT_TRUE(ig("a/**/b\n", "a/x/y/b"));
    EXPECT_FALSE(ig("a/**/b\n", "z/a/x/b"));
}

TEST(IgnoreStack, ParentDirectoryExclusionCannotBeUndone) {
    IgnoreStack s;
    s.push("", IgnoreRules::parse("build/\n!build/keep.txt\n"));
    EXPECT_TRUE(s.ignored("build", true));
    EXPECT_TRUE(s.ignored("build/keep.txt", false));
    EXPECT_TRUE(s.ignored("build/x/y.txt", false));
    // Even a rule set inside the excluded directory cannot re-include.
    s.push("build", IgnoreRules::parse("!keep.txt\n"));
    EXPECT_EQ(s.match("build/keep.txt", false), IgnoreMatch::Include);
    EXPECT_TRUE(s.ignored("build/keep.txt", false));
    EXPECT_FALSE(s.ignored("src/build.txt", false));
}

TEST(IgnoreStack, ReincludeWhenOnlyTheContentsAreExcluded) {
    // gitignore(5): exclude everything except foo/bar.
    IgnoreStack s;
    s.push("", IgnoreRules::parse("/*\n!/foo\n/foo/*\n!/foo/bar\n"));
    EXPECT_TRUE(s.ignored("top.txt", false));
    EXPECT_FALSE(s.ignored("foo", true));
    EXPECT_TRUE(s.ignored("foo/other.txt", false));
    EXPECT_TRUE(s.ignored("foo/baz", true));
    EXPECT_TRUE(s.ignored("foo/baz/x.c", false));
    EXPECT_FALSE(s.ignored("foo/bar", true));
    EXPECT_FALSE(s.ignored("foo/bar/x.c", false));
}

TEST(IgnoreStack, DeeperRuleSetsWin) {
    IgnoreStack s;
    s.push("", IgnoreRules::parse("*.log\n"));
    s.push("sub", IgnoreRules::parse("!keep.log\n"));
    EXPECT_TRUE(s.ignored("keep.log", false));
    EXPECT_FALSE(s.ignored("sub/keep.log", false));
    EXPECT_TRUE(s.ignored("sub/other.log", false));
    EXPECT_TRUE(s.ignored("subway/keep.log", false));  // "sub" rules do not reach "subway"
    // A nested file's own anchored rules are relative to its directory.
    s.push("sub/inner", IgnoreRules::parse("/only_here.txt\n"));
    EXPECT_TRUE(s.ignored("sub/inner/only_here.txt", false));
    EXPECT_FALSE(s.ignored("sub/inner/x/only_here.txt", false));
    EXPECT_FALSE(s.ignored("sub/only_here.txt", false));
    s.pop();
    EXPECT_FALSE(s.ignored("sub/inner/only_here.txt", false));
    EXPECT_EQ(s.depth(), 2u);
}

TEST(IgnoreStack, DirectoryRulesDoNotApplyToTheDirectoryItself) {
    IgnoreStack s;
    s.push("", IgnoreRules{});
    s.push("a", IgnoreRules::parse("a\n"));
    EXPECT_FALSE(s.ignored("a", true));
    EXPECT_TRUE(s.ignored("a/a", true));
}

TEST(IgnoreStack, LaterSourcesOfOneDirectoryWin) {
    // The scanner pushes user patterns, then .git/info/exclude, then .gitignore, then
    // .ignore; the last pushed is consulted first.
    IgnoreStack s;
    s.push("", IgnoreRules::from_patterns({"*.txt"}));
    s.push("", IgnoreRules::parse("!notes.txt\n"));
    EXPECT_FALSE(s.ignored("notes.txt", false));
    EXPECT_TRUE(s.ignored("other.txt", false));
}

class IgnoreFiles : public ::testing::Test {
  protected:
    void SetUp() override {
        std::string tmpl = ::testing::TempDir() + "hearth_ignore_XXXXXX";
        ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
        dir_ = tmpl;
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    void write(const std::string& name, const std::string& text) {
        std::ofstream(dir_ / name, std::ios::binary) << text;
    }
    fs::path dir_;
};

TEST_F(IgnoreFiles, DotIgnoreWinsOverGitignoreInTheSameDirectory) {
    write(".gitignore", "*.gen\n!special.txt\nnotes/\n");
    write(".ignore", "!*.gen\nspecial.txt\n");
    const IgnoreRules rules = load_directory_rules(dir_);
    EXPECT_EQ(rules.size(), 5u);
    EXPECT_EQ(rules.match("a.gen", false), IgnoreMatch::Include);
    EXPECT_EQ(rules.match("special.txt", false), IgnoreMatch::Ignore);
    EXPECT_EQ(rules.match("notes", true), IgnoreMatch::Ignore);
}

TEST_F(IgnoreFiles, MissingFilesGiveNoRules) {
    EXPECT_TRUE(load_directory_rules(dir_).empty());
    EXPECT_TRUE(load_ignore_file(dir_ / ".git" / "info" / "exclude").empty());
    write(".ignore", "x\n");
    EXPECT_EQ(load_directory_rules(dir_).size(), 1u);
}

}  // namespace
}  // namespace hearth
