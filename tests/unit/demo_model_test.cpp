// Content-level check with the real-weight demo model: greedy continuations of Python
// must be the code the model was trained to write (tests/data/README.md lists them).
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "cpu/cpu_backend.h"
#include "gguf.h"
#include "model.h"
#include "sampler.h"
#include "session.h"
#include "tokenizer.h"

namespace hearth {
namespace {

class DemoModelTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        auto gguf = GGUFFile::open(std::string(HEARTH_TEST_DATA) + "/hearth-demo-py-q8_0.gguf");
        ASSERT_TRUE(gguf.ok()) << gguf.error().message;
        gguf_ = std::shared_ptr<const GGUFFile>(std::move(*gguf));
        auto model = Model::load(gguf_);
        ASSERT_TRUE(model.ok()) << model.error().message;
        model_ = std::shared_ptr<const Model>(std::move(*model));
        auto tok = Tokenizer::from_gguf(*gguf_);
        ASSERT_TRUE(tok.ok()) << tok.error().message;
        tokenizer_ = std::make_unique<Tokenizer>(std::move(*tok));
    }
    static void TearDownTestSuite() {
        tokenizer_.reset();
        model_.reset();
        gguf_.reset();
    }

    // Greedy continuation of `prompt` until it is at least `min_chars` long.
    static std::string continue_greedy(const std::string& prompt, size_t min_chars) {
        auto backend = make_cpu_backend(model_, 0);
        EXPECT_TRUE(backend.ok());
        auto bs = (*backend)->create_session(256);
        EXPECT_TRUE(bs.ok());
        Session session(std::move(*bs));
        const auto ids = tokenizer_->encode(prompt, EncodeMode::Plain);
        EXPECT_TRUE(session.sync(ids).ok());
        Sampler greedy;
        std::vector<int32_t> out;
        std::string text;
        while (text.size() < min_chars && out.size() < 32) {
            const int32_t id = greedy.sample(session.logits());
            out.push_back(id);
            text = tokenizer_->decode(out);
            if (!session.decode(id).ok()) break;
        }
        return text;
    }

    static inline std::shared_ptr<const GGUFFile> gguf_;
    static inline std::shared_ptr<const Model> model_;
    static inline std::unique_ptr<Tokenizer> tokenizer_;
};

TEST_F(DemoModelTest, CompletesAReturnStatement) {
    const std::string text = continue_greedy("def add(a, b):\n    return", 6);
    EXPECT_EQ(text.substr(0, 6), " a + b") << "got: " << text;
}

TEST_F(DemoModelTest, CompletesAFileRead) {
    const std::string expected = ", 'rb') as f:\n            return f.read()";
    const std::string text =
        continue_greedy("    def read(self, path):\n        with open(path", expected.size());
    EXPECT_EQ(text.substr(0, expected.size()), expected) << "got: " << text;
}

TEST_F(DemoModelTest, CompletesAStackPush) {
    const std::string prompt =
        "class Stack:\n    def __init__(self):\n        self.items = []\n\n"
        "    def push(self, item):\n";
    const std::string expected = "        self.items.append(item)\n";
    const std::string text = continue_greedy(prompt, expected.size());
    EXPECT_EQ(text.substr(0, expected.size()), expected) << "got: " << text;
}

}  // namespace
}  // namespace hearth
