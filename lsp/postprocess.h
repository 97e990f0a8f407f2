// Server-side post-processing of model output: the stop rules users expect from an
// inline completion, applied after the Completer returns (which already honours
// max_tokens / max_lines / single_line), and while it generates: postprocess_would_cut
// tells, from the text so far, that the rules have decided, so that no token is spent on
// text they would cut (on a CPU every token costs milliseconds of the editor's wait).
//
// `prefix` is the document text before the cursor and `suffix` the text after it; only
// the cursor's line and the next lines matter. Indentation width counts a space as 1 and
// a tab as 4. Rules, in order:
//
//  1. Line breaks in the completion are normalised to "\n" (the server converts them to
//     the document's EOL when it replies).
//  2. End of block, by indentation (the same rule for indentation and brace languages):
//     the "cursor line" is the prefix's last line followed by the completion's first line.
//     - Body mode: when the text before the cursor on its line ends with a block opener
//       (':' '{' '(' '['), the block is what is indented deeper than that line. The first
//       later non-blank completion line indented no deeper than it ends the block: a line
//       starting with a closing bracket ('}' ')' ']') at exactly that indentation is kept
//       (it closes the block) and the completion ends after it; any other line is cut.
//     - Otherwise the base is the indentation of the cursor line (of the first non-blank
//       completion line when the cursor line is blank), and the first later non-blank line
//       indented *less* than the base ends the completion (it is cut).
//     e.g. in `    x = f(|)` a completion "a)\n    y = 2\nz = 3" keeps "a)\n    y = 2".
//  3. No repeat of the following text: the first completion line (after the first) that
//     equals, ignoring trailing whitespace, the next non-blank line of the suffix cuts the
//     completion there; the model has started to re-type code that is already there.
//  4. At most `max_lines` lines (0: no cap) and `max_bytes` bytes (0: no cap; cut at a
//     character boundary), a safety net against a Completer that overruns its budget.
//  5. Trailing whitespace is removed from every line, and trailing blank lines dropped.
//  6. No repeat of the rest of the cursor's line: when the completion ends with the
//     beginning of the text after the cursor on its line (typically ")" or "\");"),
//     that tail is removed, since the text after the cursor already supplies it.
// An all-whitespace result is empty, and the server then replies with no items.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace hearth::lsp {

struct PostprocessOptions {
    int32_t max_lines = 0;  // 0: no cap
    size_t max_bytes = 0;   // 0: no cap
};

struct PostprocessResult {
    std::string text;
    // The rule that shortened the completion: "", "block_end", "repeat_next_line",
    // "max_lines", "max_bytes", "suffix_overlap" (the last one applied wins).
    std::string cut_by;
};

PostprocessResult postprocess_completion(std::string_view completion, std::string_view prefix,
                                         std::string_view suffix,
                                         const PostprocessOptions& options);

// Whether the stop rules have already decided: true when, for every text `more` the model
// could still add, postprocess_completion(completion + more) equals
// postprocess_completion(completion), so generating further is wasted time. `rule` is set
// to the rule that decided ("block_end", "repeat_next_line", "max_lines", "max_bytes").
// Called with the text generated so far after each token; the same `prefix`, `suffix` and
// `options` as the final postprocess_completion call, or the early stop could change the
// answer.
//
// A rule fires only once its verdict can no longer change: the line that ends a block
// once it has a non-blank character (its indentation is then fixed); a repeat of the next
// line only on a complete line; the line cap once the cap's last line is complete; the
// byte cap once more than `max_bytes` bytes are certain to be kept. The lines a cut keeps
// must be complete, since the rest of a line could still change them.
bool postprocess_would_cut(std::string_view completion, std::string_view prefix,
                          std::string_view suffix, const PostprocessOptions& options,
                          std::string& rule);

// The completion up to its last line break (that break excluded): its complete lines,
// what an answer cut short keeps. Empty when no line is complete.
std::string_view complete_lines(std::string_view completion);

// Cleans the output of a rewrite: normalises line breaks, removes a Markdown code fence
// around the code, and gives the result the same trailing newline as `original` (so a
// rewrite of whole lines stays whole lines).
std::string clean_rewrite(std::string_view rewritten, std::string_view original);

// `text` cut to at most `max_bytes` at a character boundary, with "…" when cut (for
// titles and labels shown in the editor).
std::string truncate_label(std::string_view text, size_t max_bytes);

// Indentation width of a line (space 1, tab 4) and whether it is blank.
int indent_width(std::string_view line);
bool is_blank(std::string_view line);

}  // namespace hearth::lsp
