// Gitignore-syntax matching for the repository scan.
//
// Context files end up in a prompt, so whatever a user keeps out of version control
// (build output, vendored code, local notes) must stay out of the prompt too. The rules
// follow git's documented behaviour (gitignore(5)) rather than a simplified glob, because
// users write their ignore files against git and expect the same outcome here:
//
//   - blank lines and `#` comments are skipped; `\#` and `\!` escape a leading `#` / `!`;
//     trailing spaces are trimmed unless escaped with a backslash;
//   - `!pattern` re-includes what an earlier (or shallower) rule excluded;
//   - a trailing `/` restricts a pattern to directories;
//   - a slash at the start or in the middle anchors the pattern to the directory of the
//     file that holds it; without one, the pattern matches a name at any depth below it;
//   - `*` and `?` never match `/`; `[...]` classes take `!`/`^` negation, ranges and
//     POSIX classes; `**` spans directories when it stands alone between slashes or at
//     either end (`**/foo`, `foo/**`, `a/**/b`), elsewhere it is a plain `*`.
//
// Precedence is git's: within one rule set the last matching rule decides, and the rule
// set of a deeper directory is consulted before the shallower ones. A path inside an
// excluded directory is excluded whatever later rules say, because git never looks inside
// that directory (IgnoreStack::ignored checks every ancestor for that reason).
//
// Nested sources, lowest precedence first, as the scanner stacks them:
//   extra patterns from the user's settings (root), .git/info/exclude (root),
//   then for every directory from the root down: .gitignore, then .ignore.
// Putting `.ignore` after `.gitignore` of the same directory makes it win there, the way
// ripgrep lets an `.ignore` file override version-control rules for search tools only.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace hearth {

// Git's wildmatch with WM_PATHNAME semantics on the whole of `text`: `*`, `?` and classes
// stop at `/`, `**` between slashes spans directories, backslash escapes the next
// character. Exposed because the scanner reuses it for file-name lists (generated files).
bool glob_match(std::string_view pattern, std::string_view text);

// What the rules say about one path.
enum class IgnoreMatch : uint8_t {
    None,     // no rule matched; shallower rule sets (or the default, "not ignored") decide
    Ignore,   // the last matching rule excludes it
    Include,  // the last matching rule is a negation that re-includes it
};

// The parsed rules of one source, or of several sources of one directory concatenated
// in precedence order.
class IgnoreRules {
  public:
    // Parses gitignore text (a UTF-8 byte-order mark and CRLF line ends are tolerated).
    static IgnoreRules parse(std::string_view text);
    // Parses one pattern per element (user settings hold patterns, not file text).
    static IgnoreRules from_patterns(const std::vector<std::string>& patterns);

    // Adds one gitignore line; lines that hold no pattern are dropped.
    void add_line(std::string_view line);
    // Appends `later`'s rules so that they win over the rules already here.
    void append(const IgnoreRules& later);

    // Verdict for `rel_path`, relative to the directory these rules belong to ('/'
    // separators, no leading slash). Only the path itself is judged, not its ancestors.
    IgnoreMatch match(std::string_view rel_path, bool is_dir) const;

    bool empty() const { return rules_.empty(); }
    size_t size() const { return rules_.size(); }

  private:
    // Most real patterns are a plain name or "*.ext"; those skip wildmatch (every file of
    // a scan meets every rule, so this is where the scan's CPU time goes).
    enum class Kind : uint8_t { Literal, Suffix, Glob };
    struct Rule {
        std::string glob;        // the pattern without `!`, leading `/` or trailing `/`
        Kind kind = Kind::Glob;  // Suffix: `*` followed by literal text
        bool negate = false;     // `!pattern`
        bool dir_only = false;   // `pattern/`
        bool anchored = false;   // matched against the whole relative path, not the name
        bool matches(std::string_view text) const;
    };
    static void classify(Rule& rule);
    std::vector<Rule> rules_;
};

// Reads the rule sources of one directory: `.gitignore`, then `.ignore` (which wins).
// Missing or unreadable files contribute no rules: an ignore file nobody can read cannot
// be what the user meant to apply. Like git, a symlinked ignore file is not followed.
IgnoreRules load_directory_rules(const std::filesystem::path& dir);

// Reads one ignore file (e.g. `.git/info/exclude`); empty rules when it is missing.
IgnoreRules load_ignore_file(const std::filesystem::path& file);

// The rule sets of the directories on one path from the root down. A directory walk pushes
// a directory's rules when it enters it and pops them when it leaves, so the stack always
// holds exactly the rule sets that can apply to the entries being listed.
class IgnoreStack {
  public:
    // `dir` is the root-relative directory the rules belong to ("" for the root); it must
    // be the root or lie below the directory on top of the stack. Pushing an empty rule
    // set is allowed (and cheap) so that push/pop stay paired.
    void push(std::string dir, IgnoreRules rules);
    void pop();
    size_t depth() const { return frames_.size(); }

    // Verdict for the path itself from the rule sets on the stack, deepest first; the
    // caller guarantees that no ancestor of `rel_path` is excluded (a walker that never
    // enters excluded directories does).
    IgnoreMatch match(std::string_view rel_path, bool is_dir) const;

    // Git's full answer for a root-relative path: excluded when the path or any of its
    // ancestor directories is excluded. A negation cannot re-include a path whose
    // directory is excluded. Needs the rule sets of all ancestors to be on the stack.
    bool ignored(std::string_view rel_path, bool is_dir) const;

  private:
    struct Frame {
        std::string dir;  // root-relative, "" for the root
        IgnoreRules rules;
    };
    std::vector<Frame> frames_;
};

}  // namespace hearth
