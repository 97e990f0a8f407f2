// Session semantics on the CPU backend: prefix reuse, chunking, cancellation, context
// bounds, snapshots. The CPU backend is batch- and thread-invariant, so sessions that hold
// the same tokens must have bit-equal logits however they got there.
#include "session.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "cpu/cpu_backend.h"
#include "gguf.h"
#include "model.h"
#include "quant.h"
#include "sampler.h"

namespace hearth {
namespace {

class SessionTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        auto gguf = GGUFFile::open(std::string(HEARTH_TEST_DATA) + "/qwen2-test-q8_0.gguf");
        ASSERT_TRUE(gguf.ok()) << gguf.error().message;
        auto model = Model::load(std::shared_ptr<const GGUFFile>(std::move(*gguf)));
        ASSERT_TRUE(model.ok()) << model.error().message;
        model_ = std::shared_ptr<const Model>(std::move(*model));
        auto backend = make_cpu_backend(model_, 2);
        ASSERT_TRUE(backend.ok()) << backend.error().message;
        backend_ = std::move(*backend).release();
    }
    static void TearDownTestSuite() {
        delete backend_;
        backend_ = nullptr;
        model_.reset();
    }

    static Session new_session(int32_t n_ctx = 256, Backend* backend = nullptr) {
        auto bs = (backend ? backend : backend_)->create_session(n_ctx);
        EXPECT_TRUE(bs.ok()) << bs.error().message;
        return Session(std::move(*bs));
    }

    // Deterministic ordinary (non-special) token ids.
    static std::vector<int32_t> tokens(size_t n, uint32_t seed) {
        std::vector<int32_t> out(n);
        uint32_t x = seed * 2654435761u + 1;
        for (auto& t : out) {
            x = x * 1664525u + 1013904223u;
            t = static_cast<int32_t>((x >> 8) % 2039);
        }
        return out;
    }

    static std::vector<float> fresh_logits(std::span<const int32_t> toks) {
        Session s = new_session();
        auto st = s.sync(toks);
        EXPECT_TRUE(st.ok()) << st.error().message;
        return {s.logits().begin(), s.logits().end()};
    }

    static std::vector<float> copy(std::span<const float> v) { return {v.begin(), v.end()}; }
    static std::vector<int32_t> concat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
        a.insert(a.end(), b.begin(), b.end());
        return a;
    }

    static inline std::shared_ptr<const Model> model_;
    static inline Backend* backend_ = nullptr;
};

TEST_F(SessionTest, SyncExtendingReusesThePrefix) {
    const auto a = tokens(50, 1), b = tokens(30, 2);
    const auto ab = concat(a, b);
    Session s = new_session();
    auto st = s.sync(a);
    ASSERT_TRUE(st.ok());
    EXPECT_EQ(st->reused, 0);
    EXPECT_EQ(st->evaluated, 50);
    st = s.sync(ab);
    ASSERT_TRUE(st.ok());
    EXPECT_EQ(st->reused, 50);
    EXPECT_EQ(st->evaluated, 30);
    EXPECT_EQ(std::vector<int32_t>(s.tokens().begin(), s.tokens().end()), ab);
    EXPECT_EQ(copy(s.logits()), fresh_logits(ab));
}

TEST_F(SessionTest, SyncOfTheSameTokensReevaluatesOnlyTheLast) {
    const auto a = tokens(40, 3);
    Session s = new_session();
    ASSERT_TRUE(s.sync(a).ok());
    const auto before = copy(s.logits());
    auto st = s.sync(a);
    ASSERT_TRUE(st.ok());
    EXPECT_EQ(st->reused, 39);
    EXPECT_EQ(st->evaluated, 1);
    EXPECT_EQ(copy(s.logits()), before);
}

TEST_F(SessionTest, SyncAfterAnEditReevaluatesFromTheEdit) {
    const auto a = tokens(60, 4);
    auto edited = a;
    edited[20] = (edited[20] + 1) % 2039;
    edited.resize(55);
    Session s = new_session();
    ASSERT_TRUE(s.sync(a).ok());
    auto st = s.sync(edited);
    ASSERT_TRUE(st.ok());
    EXPECT_EQ(st->reused, 20);
    EXPECT_EQ(st->evaluated, 35);
    EXPECT_EQ(copy(s.logits()), fresh_logits(edited));

    // A strict prefix of what is held: only its last token is evaluated again.
    const std::vector<int32_t> prefix(edited.begin(), edited.begin() + 10);
    st = s.sync(prefix);
    ASSERT_TRUE(st.ok());
    EXPECT_EQ(st->reused, 9);
    EXPECT_EQ(st->evaluated, 1);
    EXPECT_EQ(s.n_tokens(), 10);
    EXPECT_EQ(copy(s.logits()), fresh_logits(prefix));

    st = s.sync({});
    ASSERT_TRUE(st.ok());
    EXPECT_EQ(s.n_tokens(), 0);
    EXPECT_TRUE(s.logits().empty());
}

TEST_F(SessionTest, ChunkedSyncReportsProgressAndMatchesOneShot) {
    const auto a = tokens(50, 5);
    Session s = new_session();
    std::vector<std::pair<int32_t, int32_t>> calls;
    SyncOptions opts;
    opts.chunk = 16;
    opts.progress = [&](int32_t done, int32_t total) { calls.emplace_back(done, total); };
    ASSERT_TRUE(s.sync(a, opts).ok());
    const std::vector<std::pair<int32_t, int32_t>> expected = {
        {16, 50}, {32, 50}, {48, 50}, {50, 50}};
    EXPECT_EQ(calls, expected);
    EXPECT_EQ(copy(s.logits()), fresh_logits(a));
}

TEST_F(SessionTest, CancelStopsBetweenChunksAndLeavesAConsistentSession) {
    const auto a = tokens(50, 6);
    Session s = new_session();
    int polls = 0;
    SyncOptions opts;
    opts.chunk = 16;
    opts.cancel = [&] { return ++polls > 2; };  // allow two chunks
    auto st = s.sync(a, opts);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().message, "cancelled");
    EXPECT_EQ(s.n_tokens(), 32);
    EXPECT_EQ(copy(s.logits()), fresh_logits(std::span(a).first(32)));

    st = s.sync(a);
    ASSERT_TRUE(st.ok());
    EXPECT_EQ(st->reused, 32);
    EXPECT_EQ(st->evaluated, 18);
    EXPECT_EQ(copy(s.logits()), fresh_logits(a));
}

TEST_F(SessionTest, ContextBoundsAreErrors) {
    Session s = new_session(64);
    EXPECT_EQ(s.n_ctx(), 64);
    auto st = s.sync(tokens(65, 7));
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.error().message.find("context of 64"), std::string::npos) << st.error().message;
    EXPECT_EQ(s.n_tokens(), 0);

    ASSERT_TRUE(s.sync(tokens(64, 7)).ok());
    const Status d = s.decode(5);
    ASSERT_FALSE(d.ok());
    EXPECT_NE(d.error().message.find("context"), std::string::npos);
    EXPECT_EQ(s.n_tokens(), 64);

    // The backend itself refuses positions it cannot hold or has not evaluated.
    std::vector<float> logits;
    const int32_t one[1] = {1};
    EXPECT_FALSE(s.backend().eval(one, 64, false, logits).ok());
    EXPECT_FALSE(s.backend().eval(one, -1, false, logits).ok());
    Session t = new_session(64);
    EXPECT_FALSE(t.backend().eval(one, 3, false, logits).ok());  // rows 0..2 never evaluated

    // Contexts beyond the model's training context are refused.
    EXPECT_FALSE(backend_->create_session(model_->hparams().n_ctx_train + 1).ok());
    EXPECT_FALSE(backend_->create_session(0).ok());
}

TEST_F(SessionTest, BadTokenIdIsAnErrorAndKeepsTheSession) {
    Session s = new_session();
    const auto a = tokens(10, 8);
    ASSERT_TRUE(s.sync(a).ok());
    auto bad = a;
    bad.push_back(model_->hparams().n_vocab);
    auto st = s.sync(bad);
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.error().message.find("outside the vocabulary"), std::string::npos);
    EXPECT_FALSE(s.decode(-1).ok());
    // The session still holds a valid prefix of what it was asked for.
    EXPECT_LE(s.n_tokens(), 10);
    ASSERT_TRUE(s.sync(a).ok());
    EXPECT_EQ(copy(s.logits()), fresh_logits(a));
}

TEST_F(SessionTest, EvalAllLogitsMatchesDecoding) {
    const auto a = tokens(20, 9);
    Session s = new_session();
    SyncOptions opts;
    opts.chunk = 7;
    auto all = s.eval_all_logits(a, opts);
    ASSERT_TRUE(all.ok());
    const size_t nv = static_cast<size_t>(model_->hparams().n_vocab);
    ASSERT_EQ(all->size(), a.size() * nv);
    Session d = new_session();
    for (size_t i = 0; i < a.size(); ++i) {
        ASSERT_TRUE(d.decode(a[i]).ok());
        ASSERT_TRUE(std::equal(d.logits().begin(), d.logits().end(), all->begin() + i * nv))
            << "position " << i;
    }
    EXPECT_EQ(copy(s.logits()), copy(d.logits()));
    EXPECT_EQ(s.n_tokens(), 20);
}

TEST_F(SessionTest, SnapshotRestoreThenDecodeEqualsUninterrupted) {
    const auto a = tokens(40, 10), b = tokens(8, 11);
    Session s = new_session();
    ASSERT_TRUE(s.sync(a).ok());
    auto snap = s.snapshot(40);
    ASSERT_TRUE(snap.ok()) << snap.error().message;
    EXPECT_EQ(snap->dtype, KVDType::F32);
    EXPECT_EQ(snap->data.size(), snap->expected_bytes());
    EXPECT_EQ(snap->data.size(), 40 * model_->kv_bytes_per_token(KVDType::F32));
    std::vector<std::vector<float>> uninterrupted;
    for (int32_t t : b) {
        ASSERT_TRUE(s.decode(t).ok());
        uninterrupted.push_back(copy(s.logits()));
    }

    // Restore into a session of another backend with a different thread count.
    auto other = make_cpu_backend(model_, 1);
    ASSERT_TRUE(other.ok());
    Session r = new_session(128, other->get());
    ASSERT_TRUE(r.restore(*snap, a).ok());
    EXPECT_EQ(r.n_tokens(), 40);
    EXPECT_TRUE(r.logits().empty());
    auto st = r.sync(a);
    ASSERT_TRUE(st.ok());
    EXPECT_EQ(st->reused, 39);
    EXPECT_EQ(st->evaluated, 1);
    for (size_t i = 0; i < b.size(); ++i) {
        ASSERT_TRUE(r.decode(b[i]).ok());
        EXPECT_EQ(copy(r.logits()), uninterrupted[i]) << "token " << i;
    }

    // A partial snapshot restores a prefix.
    auto part = s.snapshot(25);
    ASSERT_TRUE(part.ok());
    Session p = new_session();
    ASSERT_TRUE(p.restore(*part, std::span(a).first(25)).ok());
    ASSERT_TRUE(p.sync(a).ok());
    EXPECT_EQ(copy(p.logits()), fresh_logits(a));
}

// The disk cache stores KV rows in chunks and restores them one after another onto a
// prefix the session already holds: pieces must compose into the uninterrupted timeline.
TEST_F(SessionTest, RangeSnapshotsRestoreInPiecesAfterAHeldPrefix) {
    const auto a = tokens(48, 21);
    Session s = new_session();
    ASSERT_TRUE(s.sync(a).ok());
    auto first = s.snapshot(0, 16), second = s.snapshot(16, 40);
    ASSERT_TRUE(first.ok() && second.ok());
    EXPECT_EQ(second->pos, 16);
    EXPECT_EQ(second->n_tokens, 24);
    EXPECT_EQ(second->data.size(), 24 * model_->kv_bytes_per_token(KVDType::F32));
    EXPECT_FALSE(s.snapshot(30, 20).ok());
    EXPECT_FALSE(s.snapshot(0, 49).ok());

    Session r = new_session();
    // Rows after position 0 need the positions before them.
    EXPECT_FALSE(r.restore(*second, std::span(a).first(40)).ok());
    ASSERT_TRUE(r.restore(*first, std::span(a).first(16)).ok());
    ASSERT_TRUE(r.restore(*second, std::span(a).first(40)).ok());
    EXPECT_EQ(r.n_tokens(), 40);
    auto st = r.sync(a);
    ASSERT_TRUE(st.ok());
    EXPECT_EQ(st->reused, 40);
    EXPECT_EQ(copy(r.logits()), fresh_logits(a));

    // A session holding other tokens before the snapshot's position refuses it.
    Session o = new_session();
    auto other = tokens(16, 22);
    ASSERT_TRUE(o.sync(other).ok());
    EXPECT_FALSE(o.restore(*second, std::span(a).first(40)).ok());
    // A session that held more keeps the agreeing prefix and drops the rest.
    Session m = new_session();
    auto longer = a;
    longer[20] = (longer[20] + 1) % 2039;
    ASSERT_TRUE(m.sync(longer).ok());
    ASSERT_TRUE(m.restore(*second, std::span(a).first(40)).ok());
    ASSERT_TRUE(m.sync(a).ok());
    EXPECT_EQ(copy(m.logits()), fresh_logits(a));
}

TEST_F(SessionTest, F16SnapshotRestoresWithConversion) {
    const auto a = tokens(30, 12);
    Session s = new_session();
    ASSERT_TRUE(s.sync(a).ok());
    auto snap = s.snapshot(30);
    ASSERT_TRUE(snap.ok());
    KVSnapshot half = *snap;
    half.dtype = KVDType::F16;
    half.data.resize(snap->data.size() / 2);
    for (size_t i = 0; i < half.data.size() / 2; ++i) {
        float f;
        std::memcpy(&f, snap->data.data() + 4 * i, 4);
        const uint16_t h = fp32_to_fp16(f);
        std::memcpy(half.data.data() + 2 * i, &h, 2);
    }
    Session r = new_session();
    ASSERT_TRUE(r.restore(half, a).ok());
    // Its own snapshot is F32 again, equal to the original within fp16 rounding.
    auto back = r.snapshot(30);
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(back->dtype, KVDType::F32);
    ASSERT_EQ(back->data.size(), snap->data.size());
    double max_rel = 0;
    for (size_t i = 0; i < snap->data.size() / 4; ++i) {
        float x, y;
        std::memcpy(&x, snap->data.data() + 4 * i, 4);
        std::memcpy(&y, back->data.data() + 4 * i, 4);
        if (std::abs(x) > 1e-3f) max_rel = std::max(max_rel, std::abs(double(y) - x) / std::abs(x));
    }
    EXPECT_LT(max_rel, 1e-3);
    EXPECT_GT(max_rel, 0.0);  // it really went through fp16

    ASSERT_TRUE(r.sync(a).ok());
    const auto expect = copy(s.logits());
    const auto got = copy(r.logits());
    EXPECT_EQ(argmax(got), argmax(expect));
    double num = 0, den = 0;
    for (size_t i = 0; i < got.size(); ++i) {
        num += (double(got[i]) - expect[i]) * (double(got[i]) - expect[i]);
        den += double(expect[i]) * expect[i];
    }
    EXPECT_LT(std::sqrt(num / den), 1e-2);
}

TEST_F(SessionTest, SnapshotAndRestoreErrors) {
    Session s = new_session(64);
    const auto a = tokens(12, 13);
    ASSERT_TRUE(s.sync(a).ok());
    EXPECT_FALSE(s.snapshot(13).ok());
    EXPECT_FALSE(s.snapshot(-1).ok());
    auto snap = s.snapshot(12);
    ASSERT_TRUE(snap.ok());

    Session r = new_session(64);
    EXPECT_FALSE(r.restore(*snap, std::span(a).first(11)).ok());  // token count mismatch
    KVSnapshot bad = *snap;
    bad.data.pop_back();
    EXPECT_FALSE(r.restore(bad, a).ok());
    bad = *snap;
    bad.row_elems += 1;
    EXPECT_FALSE(r.restore(bad, a).ok());
    bad = *snap;
    bad.n_layer = 7;
    EXPECT_FALSE(r.restore(bad, a).ok());
    bad = *snap;
    bad.dtype = static_cast<KVDType>(9);
    EXPECT_FALSE(r.restore(bad, a).ok());
    EXPECT_EQ(r.n_tokens(), 0);

    Session small = new_session(8);
    EXPECT_FALSE(small.restore(*snap, a).ok());  // does not fit the context
}

}  // namespace
}  // namespace hearth
