// tokenizer_dump: tokenizes files with hearth's tokenizer and prints the ids, for the
// differential test against an independent implementation (diff.mjs).
//
//   tokenizer_dump <vocab.gguf> <file-list> [plain|template]
//
// <file-list> names one file per line. For each file, one output line:
//   <token count> <id> <id> ...
// Files are read as raw bytes; the mode defaults to plain (file contents).
#include <charconv>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "gguf.h"
#include "tokenizer.h"

namespace {

bool read_file(const std::string& path, std::string& out) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return false;
    std::ostringstream ss;
    ss << in.rdbuf();
    out = ss.str();
    return true;
}

void append_number(std::string& out, int64_t v) {
    char buf[24];
    const auto r = std::to_chars(buf, buf + sizeof(buf), v);
    out.append(buf, r.ptr);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3 || argc > 4) {
        std::cerr << "usage: tokenizer_dump <vocab.gguf> <file-list> [plain|template]\n";
        return 2;
    }
    const std::string mode_name = argc == 4 ? argv[3] : "plain";
    if (mode_name != "plain" && mode_name != "template") {
        std::cerr << "tokenizer_dump: mode must be 'plain' or 'template', not '" << mode_name
                  << "'\n";
        return 2;
    }
    const auto mode = mode_name == "plain" ? hearth::EncodeMode::Plain
                                           : hearth::EncodeMode::Template;
    auto gguf = hearth::GGUFFile::open(argv[1]);
    if (!gguf) {
        std::cerr << "tokenizer_dump: " << gguf.error().message << "\n";
        return 1;
    }
    auto tok = hearth::Tokenizer::from_gguf(**gguf);
    if (!tok) {
        std::cerr << "tokenizer_dump: " << argv[1] << ": " << tok.error().message << "\n";
        return 1;
    }
    std::ifstream list(argv[2]);
    if (!list) {
        std::cerr << "tokenizer_dump: cannot read the file list " << argv[2] << "\n";
        return 1;
    }
    std::string path;
    std::string text;
    std::string line;
    while (std::getline(list, path)) {
        if (path.empty()) continue;
        if (!read_file(path, text)) {
            std::cerr << "tokenizer_dump: cannot read " << path << "\n";
            return 1;
        }
        const auto ids = tok->encode(text, mode);
        line.clear();
        append_number(line, static_cast<int64_t>(ids.size()));
        for (int32_t id : ids) {
            line.push_back(' ');
            append_number(line, id);
        }
        line.push_back('\n');
        std::fwrite(line.data(), 1, line.size(), stdout);
    }
    return std::fflush(stdout) == 0 ? 0 : 1;
}
