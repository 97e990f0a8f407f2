// The on-disk prefix KV store: round trips, prefix semantics, every kind of damaged file
// (always a miss, and removed), crashes and full disks during writes, two processes on one
// workspace, eviction, the writer thread.
#include "kv_store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace hearth {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int32_t kC = 16;  // chunk tokens in most tests

class TempDir {
  public:
    TempDir() {
        const char* base = std::getenv("TMPDIR");
        std::string templ = std::string(base && *base ? base : "/tmp") + "/hearth-kv-XXXXXX";
        char* made = ::mkdtemp(templ.data());
        EXPECT_NE(made, nullptr);
        path_ = templ;
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    const fs::path& path() const { return path_; }

  private:
    fs::path path_;
};

std::vector<int32_t> make_tokens(size_t n, uint32_t seed) {
    std::vector<int32_t> out(n);
    uint32_t x = seed * 2654435761u + 1;
    for (auto& t : out) {
        x = x * 1664525u + 1013904223u;
        t = static_cast<int32_t>((x >> 8) % 50000);
    }
    return out;
}

// The rows of chunk [pos, pos + chunk): random bytes determined by (seed, pos).
KVSnapshot make_rows(const KVModelKey& m, int32_t pos, int32_t chunk, uint64_t seed) {
    KVSnapshot s;
    s.pos = pos;
    s.n_tokens = chunk;
    s.n_layer = m.n_layer;
    s.row_elems = m.row_elems;
    s.dtype = m.dtype;
    s.data.resize(s.expected_bytes());
    std::mt19937_64 rng(seed * 1000003u + static_cast<uint64_t>(pos));
    for (size_t i = 0; i < s.data.size(); i += 8) {
        const uint64_t v = rng();
        std::memcpy(s.data.data() + i, &v, std::min<size_t>(8, s.data.size() - i));
    }
    return s;
}

// The snapshot of chunks [a, b) assembled from per-chunk rows in the KVSnapshot layout.
std::vector<uint8_t> assemble(const std::vector<KVSnapshot>& chunks, size_t a, size_t b) {
    std::vector<uint8_t> out;
    if (a >= b) return out;
    const KVSnapshot& f = chunks[a];
    const size_t part =
        static_cast<size_t>(f.n_tokens) * static_cast<size_t>(f.row_elems) * f.bytes_per_elem();
    for (size_t p = 0; p < 2 * static_cast<size_t>(f.n_layer); ++p) {
        for (size_t i = a; i < b; ++i) {
            const uint8_t* src = chunks[i].data.data() + p * part;
            out.insert(out.end(), src, src + part);
        }
    }
    return out;
}

KVModelKey model_a(KVDType dt = KVDType::F32) {
    return {0x1234567890abcdefull, dt, 2, 8};
}

uint64_t file_bytes(const KVModelKey& m, int32_t chunk, int64_t end) {
    const uint64_t elem = m.dtype == KVDType::F16 ? 2 : 4;
    return kKVHeaderBytes + 4 * static_cast<uint64_t>(end) +
           static_cast<uint64_t>(m.n_layer) * 2 * chunk * static_cast<uint64_t>(m.row_elems) * elem;
}

std::vector<std::string> dir_names(const fs::path& dir, std::string_view suffix) {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
        const std::string n = e.path().filename().string();
        if (n.ends_with(suffix)) out.push_back(n);
    }
    return out;
}

size_t count_entries(const fs::path& dir) {
    size_t n = 0;
    for (const std::string& name : dir_names(dir, ".hkv")) n += name[0] != '.';
    return n;
}
size_t count_temps(const fs::path& dir) {
    size_t n = 0;
    for (const std::string& name : dir_names(dir, "")) n += name.starts_with(".tmp-");
    return n;
}

std::vector<uint8_t> read_bytes(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}
void write_bytes(const fs::path& p, const std::vector<uint8_t>& b) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

class KVStoreTest : public ::testing::Test {
  protected:
    KVStoreOptions options() const {
        KVStoreOptions o;
        o.root = tmp_.path() / "cache";
        o.workspace = tmp_.path() / "project";
        o.chunk_tokens = kC;
        return o;
    }
    std::unique_ptr<KVStore> open(const KVStoreOptions& o) {
        auto s = KVStore::open(o);
        EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
        return s.ok() ? std::move(*s) : nullptr;
    }
    std::unique_ptr<KVStore> open() { return open(options()); }

    // Stores chunks [0, n) of `tokens` with rows from `seed`; returns the rows.
    static std::vector<KVSnapshot> put_chain(KVStore& s, const KVModelKey& m,
                                             const std::vector<int32_t>& tokens, size_t n,
                                             uint64_t seed, int32_t chunk = kC) {
        std::vector<KVSnapshot> rows;
        for (size_t i = 0; i < n; ++i) {
            const int32_t end = static_cast<int32_t>(i + 1) * chunk;
            rows.push_back(make_rows(m, end - chunk, chunk, seed));
            Status st = s.put(m, std::span(tokens).first(static_cast<size_t>(end)), rows.back());
            EXPECT_TRUE(st.ok()) << (st.ok() ? "" : st.error().message);
        }
        return rows;
    }

    fs::path chunk_path(const KVStore& s, const KVModelKey& m, const std::vector<int32_t>& tokens,
                        int32_t end) const {
        return s.dir() /
               kv_chunk_file_name(m, kC, std::span(tokens).first(static_cast<size_t>(end)));
    }

    TempDir tmp_;
};

// ---------------------------------------------------------------------------------------

TEST_F(KVStoreTest, RoundTripF32AndF16SeveralChunksAndOffsets) {
    auto s = open();
    ASSERT_TRUE(s);
    for (KVDType dt : {KVDType::F32, KVDType::F16}) {
        const KVModelKey m = model_a(dt);
        const auto tokens = make_tokens(4 * kC + 5, 7);
        const auto rows = put_chain(*s, m, tokens, 4, 11);
        EXPECT_EQ(s->stored_prefix(m, tokens), 4 * kC);

        for (auto [a, b] : {std::pair{0, 4}, {0, 1}, {2, 4}, {1, 3}, {3, 4}}) {
            auto snap = s->read(m, tokens, a * kC, b * kC);
            ASSERT_TRUE(snap.ok()) << snap.error().message;
            EXPECT_EQ(snap->pos, a * kC);
            EXPECT_EQ(snap->n_tokens, (b - a) * kC);
            EXPECT_EQ(snap->n_layer, m.n_layer);
            EXPECT_EQ(snap->row_elems, m.row_elems);
            EXPECT_EQ(snap->dtype, dt);
            EXPECT_EQ(snap->data.size(), snap->expected_bytes());
            EXPECT_TRUE(snap->data ==
                        assemble(rows, static_cast<size_t>(a), static_cast<size_t>(b)))
                << "chunks [" << a << ", " << b << ")";
        }
        auto empty = s->read(m, tokens, kC, kC);
        ASSERT_TRUE(empty.ok());
        EXPECT_EQ(empty->n_tokens, 0);
    }
    const KVStoreStats st = s->stats();
    EXPECT_EQ(st.entries, 8u);
    EXPECT_EQ(st.writes, 8u);
    EXPECT_EQ(st.hits, 2u * (4 + 1 + 2 + 2 + 1));
    EXPECT_EQ(st.misses, 0u);
    EXPECT_EQ(st.bad_files, 0u);
    EXPECT_EQ(count_temps(s->dir()), 0u);
}

TEST_F(KVStoreTest, PutIsIdempotentAndContainsChecksTheChunk) {
    auto s = open();
    ASSERT_TRUE(s);
    const KVModelKey m = model_a();
    const auto tokens = make_tokens(2 * kC, 1);
    put_chain(*s, m, tokens, 2, 3);
    const auto before = fs::last_write_time(chunk_path(*s, m, tokens, kC));
    put_chain(*s, m, tokens, 2, 3);
    EXPECT_EQ(s->stats().writes, 2u);
    EXPECT_EQ(fs::last_write_time(chunk_path(*s, m, tokens, kC)), before);
    EXPECT_TRUE(s->contains(m, std::span(tokens).first(kC)));
    EXPECT_TRUE(s->contains(m, tokens));
    EXPECT_FALSE(s->contains(m, std::span(tokens).first(kC - 1)));
    EXPECT_FALSE(s->contains(m, {}));
    EXPECT_FALSE(s->contains(model_a(KVDType::F16), tokens));
}

TEST_F(KVStoreTest, StoredPrefixSemantics) {
    auto s = open();
    ASSERT_TRUE(s);
    const KVModelKey m = model_a();
    const auto tokens = make_tokens(5 * kC + 3, 2);
    const auto rows = put_chain(*s, m, tokens, 5, 4);
    EXPECT_EQ(s->stored_prefix(m, tokens), 5 * kC);
    // Never more than the prompt; a partial last chunk does not count.
    EXPECT_EQ(s->stored_prefix(m, std::span(tokens).first(3 * kC + 7)), 3 * kC);
    EXPECT_EQ(s->stored_prefix(m, std::span(tokens).first(kC - 1)), 0);
    EXPECT_EQ(s->stored_prefix(m, {}), 0);

    // Appending text keeps every chunk.
    auto longer = tokens;
    longer.insert(longer.end(), 40, 99);
    EXPECT_EQ(s->stored_prefix(m, longer), 5 * kC);

    // An edit in the middle keeps only the chunks before it.
    auto edited = tokens;
    edited[2 * kC + 3] += 1;
    EXPECT_EQ(s->stored_prefix(m, edited), 2 * kC);
    edited = tokens;
    edited[0] += 1;
    EXPECT_EQ(s->stored_prefix(m, edited), 0);
    EXPECT_EQ(s->stored_prefix(m, make_tokens(5 * kC, 3)), 0);

    // Other model keys see nothing.
    for (KVModelKey other : {KVModelKey{m.fingerprint + 1, m.dtype, m.n_layer, m.row_elems},
                             KVModelKey{m.fingerprint, KVDType::F16, m.n_layer, m.row_elems},
                             KVModelKey{m.fingerprint, m.dtype, m.n_layer + 1, m.row_elems},
                             KVModelKey{m.fingerprint, m.dtype, m.n_layer, m.row_elems * 2}}) {
        EXPECT_EQ(s->stored_prefix(other, tokens), 0);
        auto snap = s->read(other, tokens, 0, 5 * kC);
        ASSERT_TRUE(snap.ok());
        EXPECT_EQ(snap->n_tokens, 0);
    }
    // Other chunk sizes see nothing either.
    KVStoreOptions o = options();
    o.chunk_tokens = kC * 2;
    auto s2 = open(o);
    ASSERT_TRUE(s2);
    EXPECT_EQ(s2->stored_prefix(m, tokens), 0);

    // A gap: chunk 2 removed. The prefix stops before it, reads stop there, later chunks
    // are still readable on their own.
    fs::remove(chunk_path(*s, m, tokens, 3 * kC));
    EXPECT_EQ(s->stored_prefix(m, tokens), 2 * kC);
    const uint64_t misses = s->stats().misses;
    auto snap = s->read(m, tokens, 0, 5 * kC);
    ASSERT_TRUE(snap.ok());
    EXPECT_EQ(snap->n_tokens, 2 * kC);
    EXPECT_TRUE(snap->data == assemble(rows, 0, 2));
    EXPECT_EQ(s->stats().misses, misses + 1);
    EXPECT_EQ(s->stats().bad_files, 0u);
    snap = s->read(m, tokens, 3 * kC, 5 * kC);
    ASSERT_TRUE(snap.ok());
    EXPECT_EQ(snap->n_tokens, 2 * kC);
    EXPECT_TRUE(snap->data == assemble(rows, 3, 5));
}

TEST_F(KVStoreTest, BadArgumentsAreErrors) {
    auto s = open();
    ASSERT_TRUE(s);
    const KVModelKey m = model_a();
    const auto tokens = make_tokens(2 * kC, 1);
    EXPECT_FALSE(s->read(m, tokens, 1, kC).ok());
    EXPECT_FALSE(s->read(m, tokens, 0, 3 * kC).ok());
    EXPECT_FALSE(s->read(m, tokens, kC, 0).ok());
    EXPECT_FALSE(s->read(KVModelKey{1, KVDType::F32, 0, 8}, tokens, 0, kC).ok());
    KVSnapshot rows = make_rows(m, 0, kC, 1);
    EXPECT_FALSE(s->put(m, std::span(tokens).first(kC + 1), rows).ok());
    EXPECT_FALSE(s->put(m, tokens, rows).ok());  // rows of [0, C) for the chunk [C, 2C)
    rows.data.pop_back();
    EXPECT_FALSE(s->put(m, std::span(tokens).first(kC), rows).ok());
    EXPECT_FALSE(
        s->put(model_a(KVDType::F16), std::span(tokens).first(kC), make_rows(m, 0, kC, 1)).ok());
    EXPECT_EQ(s->stats().write_failures, 4u);
    EXPECT_EQ(count_entries(s->dir()), 0u);
    EXPECT_FALSE(KVStore::open([&] {
                     KVStoreOptions o = options();
                     o.chunk_tokens = 0;
                     return o;
                 }())
                     .ok());
}

// ---------------------------------------------------------------------------------------
// Damaged files: every one is a miss, and removed.

class KVStoreFaultTest : public KVStoreTest {
  protected:
    void SetUp() override {
        store_ = open();
        ASSERT_TRUE(store_);
        tokens_ = make_tokens(3 * kC, 5);
        rows_ = put_chain(*store_, m_, tokens_, 3, 6);
        path_ = chunk_path(*store_, m_, tokens_, 3 * kC);
        good_ = read_bytes(path_);
        ASSERT_EQ(good_.size(), file_bytes(m_, kC, 3 * kC));
    }

    // The damaged last chunk must be a miss (the first two still read) and be removed.
    void expect_miss_and_removed(const std::string& what, const std::vector<int32_t>* ask = nullptr,
                                 const fs::path* bad_path = nullptr) {
        const auto& tokens = ask ? *ask : tokens_;
        const fs::path& p = bad_path ? *bad_path : path_;
        const uint64_t bad_before = store_->stats().bad_files;
        auto snap = store_->read(m_, tokens, 2 * kC, 3 * kC);
        ASSERT_TRUE(snap.ok()) << what;
        EXPECT_EQ(snap->n_tokens, 0) << what;
        EXPECT_TRUE(snap->data.empty()) << what;
        EXPECT_FALSE(fs::exists(fs::symlink_status(p))) << what << ": bad file not removed";
        EXPECT_EQ(store_->stats().bad_files, bad_before + 1) << what;
        EXPECT_EQ(store_->stored_prefix(m_, tokens_), 2 * kC) << what;
        auto first = store_->read(m_, tokens_, 0, 3 * kC);
        ASSERT_TRUE(first.ok());
        EXPECT_EQ(first->n_tokens, 2 * kC) << what;
        EXPECT_TRUE(first->data == assemble(rows_, 0, 2)) << what;
    }
    void restore() {
        write_bytes(path_, good_);
        ASSERT_EQ(store_->stored_prefix(m_, tokens_), 3 * kC);
    }

    const KVModelKey m_ = model_a();
    std::unique_ptr<KVStore> store_;
    std::vector<int32_t> tokens_;
    std::vector<KVSnapshot> rows_;
    fs::path path_;
    std::vector<uint8_t> good_;
};

TEST_F(KVStoreFaultTest, TruncatedAtManyOffsets) {
    const size_t tok_end = kKVHeaderBytes + 4 * 3 * kC;
    for (size_t len : {size_t{0}, size_t{1}, size_t{7}, size_t{8}, size_t{40}, size_t{76},
                       kKVHeaderBytes - 1, kKVHeaderBytes, kKVHeaderBytes + 1, tok_end - 1, tok_end,
                       tok_end + 1, good_.size() / 2, good_.size() - 1}) {
        restore();
        ::truncate(path_.c_str(), static_cast<off_t>(len));
        expect_miss_and_removed("truncated to " + std::to_string(len));
    }
    // Longer than it says is as bad.
    restore();
    auto longer = good_;
    longer.push_back(0);
    write_bytes(path_, longer);
    expect_miss_and_removed("one byte too long");
}

TEST_F(KVStoreFaultTest, OneFlippedByteAnywhere) {
    const size_t tok_end = kKVHeaderBytes + 4 * 3 * kC;
    std::vector<size_t> offsets = {0,  7,  8,  12, 16, 23, 24, 28, 32,
                                   36, 40, 44, 48, 52, 60, 68, 76, 83};
    for (size_t off : {kKVHeaderBytes, kKVHeaderBytes + 5, tok_end - 1, tok_end, tok_end + 1,
                       (tok_end + good_.size()) / 2, good_.size() - 1}) {
        offsets.push_back(off);
    }
    for (size_t off : offsets) {
        restore();
        auto bad = good_;
        bad[off] ^= 0x20;
        write_bytes(path_, bad);
        expect_miss_and_removed("byte " + std::to_string(off) + " flipped");
    }
}

TEST_F(KVStoreFaultTest, ForeignVersionAndMagic) {
    auto h = decode_kv_header(std::span(good_).first(kKVHeaderBytes));
    ASSERT_TRUE(h.ok()) << h.error().message;
    // A well-formed header of another version (its checksum right).
    KVFileHeader v2 = *h;
    v2.version = 2;
    auto bad = good_;
    auto hb = encode_kv_header(v2);
    std::copy(hb.begin(), hb.end(), bad.begin());
    write_bytes(path_, bad);
    expect_miss_and_removed("version 2");

    // Another magic, checksum recomputed.
    restore();
    bad = good_;
    std::memcpy(bad.data(), "HEARTHKW", 8);
    const uint64_t sum = XXH3_64bits(bad.data(), 76);
    std::memcpy(bad.data() + 76, &sum, 8);
    write_bytes(path_, bad);
    expect_miss_and_removed("foreign magic");

    // Another header size, checksum right.
    restore();
    KVFileHeader big = *h;
    big.header_bytes = kKVHeaderBytes + 8;
    bad = good_;
    hb = encode_kv_header(big);
    std::copy(hb.begin(), hb.end(), bad.begin());
    write_bytes(path_, bad);
    expect_miss_and_removed("header size");
}

TEST_F(KVStoreFaultTest, HeaderFieldsThatDisagreeWithTheRequest) {
    auto h = decode_kv_header(std::span(good_).first(kKVHeaderBytes));
    ASSERT_TRUE(h.ok());
    auto with = [&](auto edit, const std::string& what) {
        restore();
        KVFileHeader x = *h;
        edit(x);
        auto bad = good_;
        auto hb = encode_kv_header(x);
        std::copy(hb.begin(), hb.end(), bad.begin());
        write_bytes(path_, bad);
        expect_miss_and_removed(what);
    };
    with([](KVFileHeader& x) { x.fingerprint ^= 1; }, "fingerprint");
    with([](KVFileHeader& x) { x.dtype = 1; }, "dtype");
    with([](KVFileHeader& x) { x.n_layer += 1; }, "n_layer");
    with([](KVFileHeader& x) { x.row_elems -= 1; }, "row_elems");
    with([](KVFileHeader& x) { x.chunk_tokens *= 2; }, "chunk_tokens");
    with([](KVFileHeader& x) { x.pos -= kC; }, "pos");
    with([](KVFileHeader& x) { x.n_tokens -= 1; }, "n_tokens");
    with([](KVFileHeader& x) { x.prefix_tokens += 1; }, "prefix tokens");
    with([](KVFileHeader& x) { x.payload_bytes += 4; }, "payload bytes");
    with([](KVFileHeader& x) { x.payload_checksum ^= 1; }, "payload checksum");
}

// A file of another model copied under this model's name (as a hash collision would put it).
TEST_F(KVStoreFaultTest, OtherModelUnderThisName) {
    for (KVModelKey other :
         {KVModelKey{m_.fingerprint ^ 0xff, m_.dtype, m_.n_layer, m_.row_elems},
          KVModelKey{m_.fingerprint, KVDType::F16, m_.n_layer, m_.row_elems},
          KVModelKey{m_.fingerprint, KVDType::F16, m_.n_layer, m_.row_elems * 2},
          KVModelKey{m_.fingerprint, m_.dtype, m_.n_layer * 2, m_.row_elems / 2}}) {
        const fs::path p = store_->dir() / kv_chunk_file_name(other, kC, tokens_);
        fs::copy_file(path_, p, fs::copy_options::overwrite_existing);
        const uint64_t bad_before = store_->stats().bad_files;
        auto snap = store_->read(other, tokens_, 2 * kC, 3 * kC);
        ASSERT_TRUE(snap.ok());
        EXPECT_EQ(snap->n_tokens, 0);
        EXPECT_FALSE(fs::exists(p));
        EXPECT_EQ(store_->stats().bad_files, bad_before + 1);
        EXPECT_TRUE(fs::exists(path_));
    }
}

// Other tokens whose hash collides: the file is copied under the other prefix's name.
TEST_F(KVStoreFaultTest, TokenIdsThatDiffer) {
    for (size_t at : {size_t{0}, size_t{kC + 1}, size_t{3 * kC - 1}}) {
        auto other = tokens_;
        other[at] += 1;
        const fs::path p = store_->dir() / kv_chunk_file_name(m_, kC, other);
        fs::copy_file(path_, p, fs::copy_options::overwrite_existing);
        const uint64_t bad_before = store_->stats().bad_files;
        auto snap = store_->read(m_, other, 2 * kC, 3 * kC);
        ASSERT_TRUE(snap.ok());
        EXPECT_EQ(snap->n_tokens, 0) << "token " << at;
        EXPECT_FALSE(fs::exists(p)) << "token " << at;
        EXPECT_EQ(store_->stats().bad_files, bad_before + 1);
        EXPECT_TRUE(fs::exists(path_));
    }
}

// A writer that wrote the final name directly and was interrupted.
TEST_F(KVStoreFaultTest, NonAtomicWriterShorterThanItsHeader) {
    std::vector<uint8_t> partial(good_.begin(),
                                 good_.begin() + static_cast<long>(good_.size() - 100));
    write_bytes(path_, partial);
    EXPECT_EQ(store_->stored_prefix(m_, tokens_), 2 * kC);
    expect_miss_and_removed("partial file");
}

TEST_F(KVStoreFaultTest, SymlinkUnderAnEntryName) {
    const fs::path target = tmp_.path() / "elsewhere.hkv";
    fs::rename(path_, target);
    fs::create_symlink(target, path_);
    expect_miss_and_removed("symlink");
    EXPECT_TRUE(fs::exists(target));
}

TEST_F(KVStoreFaultTest, BadFileFoundWhileRebuildingTheIndexIsRemoved) {
    fs::remove(store_->dir() / "index.json");
    auto bad = good_;
    bad[20] ^= 1;  // header checksum fails
    write_bytes(path_, bad);
    // A put reconciles the index with the directory and reads the headers it does not know.
    const auto other = make_tokens(kC, 77);
    put_chain(*store_, m_, other, 1, 1);
    EXPECT_FALSE(fs::exists(path_));
    EXPECT_EQ(store_->stats().bad_files, 1u);
    auto idx = json::parse(read_bytes(store_->dir() / "index.json"));
    EXPECT_EQ(idx["entries"].size(), 3u);
}

// ---------------------------------------------------------------------------------------
// Crashes, full disks, temp files

pid_t dead_pid() {
    pid_t pid = ::fork();
    if (pid == 0) ::_exit(0);
    int status = 0;
    ::waitpid(pid, &status, 0);
    return pid;
}

TEST_F(KVStoreTest, StaleTempFilesRemovedAtOpen) {
    auto s = open();
    ASSERT_TRUE(s);
    const fs::path dir = s->dir();
    s.reset();
    const fs::path dead = dir / (".tmp-" + std::to_string(dead_pid()) + "-0123456789abcdef.hkv");
    const fs::path live = dir / (".tmp-" + std::to_string(::getpid()) + "-00000000000000aa.hkv");
    const fs::path old = dir / (".tmp-" + std::to_string(::getpid()) + "-00000000000000bb.hkv");
    const fs::path json_tmp = dir / (".tmp-" + std::to_string(dead_pid()) + "-1.json");
    for (const fs::path& p : {dead, live, old, json_tmp}) write_bytes(p, {1, 2, 3});
    fs::last_write_time(old, fs::file_time_type::clock::now() - std::chrono::hours(2));
    s = open();
    ASSERT_TRUE(s);
    EXPECT_FALSE(fs::exists(dead));
    EXPECT_FALSE(fs::exists(json_tmp));
    EXPECT_FALSE(fs::exists(old));
    EXPECT_TRUE(fs::exists(live));  // its writer (this process) may still rename it
    // A temp file is never read as an entry.
    EXPECT_EQ(s->stats().entries, 0u);
}

// Rows that are quick to make for large chunks (so a writer spends its time writing): one
// random buffer, stamped with (seed, pos) every 4 KiB so no two chunks are alike.
KVSnapshot stamped_rows(const KVModelKey& m, int32_t pos, int32_t chunk, uint64_t seed) {
    static const KVSnapshot base = make_rows(m, 0, chunk, 12345);
    KVSnapshot s = base;
    s.pos = pos;
    const uint64_t stamp = (seed << 32) ^ static_cast<uint64_t>(pos);
    for (size_t off = 0; off + 8 <= s.data.size(); off += 4096) {
        const uint64_t v = stamp ^ off;
        std::memcpy(s.data.data() + off, &v, 8);
    }
    return s;
}

// A writer killed at arbitrary points: what is under a final name is always complete.
TEST_F(KVStoreTest, KillNineDuringWrites) {
    const KVModelKey big{42, KVDType::F32, 4, 4096};  // 8 MiB per chunk of 64
    constexpr int32_t kBigC = 64;
    constexpr int kChunks = 16;
    KVStoreOptions o = options();
    o.chunk_tokens = kBigC;
    (void)stamped_rows(big, 0, kBigC, 0);  // the base buffer, made before forking
    size_t temps_left = 0;
    const int delays_ms[] = {0, 1, 2, 3, 4, 6, 8, 11, 15, 20, 27, 35, 45, 60};
    for (int round = 0; round < static_cast<int>(std::size(delays_ms)); ++round) {
        pid_t pid = ::fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            auto s = KVStore::open(o);
            if (!s) ::_exit(3);
            for (int chain = 0;; ++chain) {
                const auto tokens =
                    make_tokens(kChunks * kBigC, static_cast<uint32_t>(round * 1000 + chain));
                for (int i = 0; i < kChunks; ++i) {
                    const int32_t end = (i + 1) * kBigC;
                    Status st =
                        (*s)->put(big, std::span(tokens).first(static_cast<size_t>(end)),
                                  stamped_rows(big, end - kBigC, kBigC,
                                               static_cast<uint64_t>(round * 1000 + chain)));
                    if (!st) ::_exit(4);
                }
            }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(delays_ms[round]));
        if (round + 1 == static_cast<int>(std::size(delays_ms))) {
            // However slow the machine, the last writer gets to store something.
            const fs::path dir = kv_workspace_dir(o.root, o.workspace);
            const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
            while (count_entries(dir) == 0 && std::chrono::steady_clock::now() < deadline) {
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
            }
        }
        ::kill(pid, SIGKILL);
        int status = 0;
        ::waitpid(pid, &status, 0);
        ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);
        // Killed mid-write (each next open removes these again).
        temps_left += count_temps(kv_workspace_dir(o.root, o.workspace));
    }

    auto s = open(o);
    ASSERT_TRUE(s);
    EXPECT_EQ(count_temps(s->dir()), 0u);
    size_t found = 0;
    for (int round = 0; round < static_cast<int>(std::size(delays_ms)); ++round) {
        for (int chain = 0;; ++chain) {
            const uint32_t seed = static_cast<uint32_t>(round * 1000 + chain);
            const auto tokens = make_tokens(kChunks * kBigC, seed);
            const int32_t n = s->stored_prefix(big, tokens);
            if (n == 0) break;
            auto snap = s->read(big, tokens, 0, n);
            ASSERT_TRUE(snap.ok());
            ASSERT_EQ(snap->n_tokens, n);
            std::vector<KVSnapshot> rows;
            for (int32_t p = 0; p < n; p += kBigC)
                rows.push_back(stamped_rows(big, p, kBigC, seed));
            EXPECT_TRUE(snap->data == assemble(rows, 0, rows.size())) << "round " << round;
            found += static_cast<size_t>(n / kBigC);
        }
    }
    std::printf("[ kill -9 ] %zu complete chunks, %zu temp files left by killed writers\n", found,
                temps_left);
    EXPECT_GT(found, 0u);
    EXPECT_EQ(found, count_entries(s->dir())) << "a final-named file is not part of any chain";
    EXPECT_EQ(s->stats().bad_files, 0u);
    auto idx = json::parse(read_bytes(s->dir() / "index.json"), nullptr, false);
    EXPECT_FALSE(idx.is_discarded());
}

// RLIMIT_FSIZE makes writes fail with EFBIG exactly like a full disk would with ENOSPC.
TEST_F(KVStoreTest, DiskFullFailsCleanly) {
    const KVModelKey small = model_a();
    const KVModelKey big{7, KVDType::F32, 4, 1024};
    const KVStoreOptions o = options();
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        ::signal(SIGXFSZ, SIG_IGN);
        auto s = KVStore::open(o);
        if (!s) ::_exit(3);
        rlimit lim{64 << 10, 64 << 10};
        if (::setrlimit(RLIMIT_FSIZE, &lim) != 0) ::_exit(4);
        const auto tokens = make_tokens(64, 1);
        Status st = (*s)->put(big, std::span(tokens).first(kC), make_rows(big, 0, kC, 1));
        if (st.ok()) ::_exit(5);
        if (count_entries((*s)->dir()) != 0 || count_temps((*s)->dir()) != 0) ::_exit(6);
        if ((*s)->stats().write_failures != 1) ::_exit(7);
        // The process goes on: small writes still work.
        st = (*s)->put(small, std::span(tokens).first(kC), make_rows(small, 0, kC, 1));
        if (!st.ok()) ::_exit(8);
        if (!(*s)->contains(small, std::span(tokens).first(kC))) ::_exit(9);
        // And an async write that fails is counted, not fatal.
        (*s)->put_async(big, std::vector<int32_t>(tokens.begin(), tokens.begin() + kC),
                        make_rows(big, 0, kC, 2));
        (*s)->flush();
        if ((*s)->stats().write_failures != 2 || count_temps((*s)->dir()) != 0) ::_exit(10);
        ::_exit(0);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFEXITED(status)) << "child killed by signal " << WTERMSIG(status);
    EXPECT_EQ(WEXITSTATUS(status), 0);
}

// ---------------------------------------------------------------------------------------
// Two processes

TEST_F(KVStoreTest, TwoProcessesWritingTheSameAndDifferentChunks) {
    const KVModelKey m = model_a();
    constexpr int kChunks = 12;
    const auto shared = make_tokens(kChunks * kC, 100);
    pid_t pids[2];
    for (int child = 0; child < 2; ++child) {
        pids[child] = ::fork();
        ASSERT_GE(pids[child], 0);
        if (pids[child] == 0) {
            auto s = KVStore::open(options());
            if (!s) ::_exit(3);
            const auto own = make_tokens(kChunks * kC, 200 + static_cast<uint32_t>(child));
            const auto async = make_tokens(kChunks * kC, 300 + static_cast<uint32_t>(child));
            for (int32_t i = 0; i < kChunks; ++i) {
                const int32_t end = (i + 1) * kC;
                if (!(*s)->put(m, std::span(shared).first(end), make_rows(m, end - kC, kC, 100)))
                    ::_exit(4);
                if (!(*s)->put(m, std::span(own).first(end),
                               make_rows(m, end - kC, kC, 200 + static_cast<uint64_t>(child))))
                    ::_exit(5);
                (*s)->put_async(m, std::vector<int32_t>(async.begin(), async.begin() + end),
                                make_rows(m, end - kC, kC, 300 + static_cast<uint64_t>(child)));
                auto r = (*s)->read(m, shared, 0, end);
                if (!r || r->n_tokens != end) ::_exit(6);
            }
            (*s)->flush();
            if ((*s)->stats().write_failures != 0 || (*s)->stats().bad_files != 0) ::_exit(7);
            ::_exit(0);
        }
    }
    for (pid_t pid : pids) {
        int status = 0;
        ::waitpid(pid, &status, 0);
        ASSERT_TRUE(WIFEXITED(status));
        EXPECT_EQ(WEXITSTATUS(status), 0);
    }
    auto s = open();
    ASSERT_TRUE(s);
    for (uint32_t seed : {100u, 200u, 201u, 300u, 301u}) {
        const auto tokens = make_tokens(kChunks * kC, seed);
        ASSERT_EQ(s->stored_prefix(m, tokens), kChunks * kC) << seed;
        auto snap = s->read(m, tokens, 0, kChunks * kC);
        ASSERT_TRUE(snap.ok());
        std::vector<KVSnapshot> rows;
        for (int32_t i = 0; i < kChunks; ++i) rows.push_back(make_rows(m, i * kC, kC, seed));
        EXPECT_TRUE(snap->data == assemble(rows, 0, rows.size())) << seed;
    }
    EXPECT_EQ(count_entries(s->dir()), 5u * kChunks);
    EXPECT_EQ(count_temps(s->dir()), 0u);
    EXPECT_EQ(s->stats().bad_files, 0u);
    // Both processes' hits on the shared chain were merged, not overwritten: each read chunk
    // i of it (kChunks - i) times.
    auto idx = json::parse(read_bytes(s->dir() / "index.json"));
    EXPECT_EQ(idx["entries"].size(), 5u * kChunks);
    const std::string first = kv_chunk_file_name(m, kC, std::span(shared).first(kC)).substr(0, 32);
    EXPECT_EQ(idx["entries"][first]["hits"].get<uint64_t>(), 2u * kChunks);
}

TEST_F(KVStoreTest, TwoProcessesUnderATightBudgetStayWithinIt) {
    const KVModelKey m = model_a();
    KVStoreOptions o = options();
    o.workspace_max_bytes = 10 * file_bytes(m, kC, 8 * kC);
    pid_t pids[2];
    for (int child = 0; child < 2; ++child) {
        pids[child] = ::fork();
        ASSERT_GE(pids[child], 0);
        if (pids[child] == 0) {
            auto s = KVStore::open(o);
            if (!s) ::_exit(3);
            for (uint32_t chain = 0; chain < 6; ++chain) {
                const auto tokens =
                    make_tokens(8 * kC, 1000 * static_cast<uint32_t>(child) + chain);
                for (int32_t i = 0; i < 8; ++i) {
                    const int32_t end = (i + 1) * kC;
                    if (!(*s)->put(m, std::span(tokens).first(end),
                                   make_rows(m, end - kC, kC, chain)))
                        ::_exit(4);
                }
            }
            ::_exit(0);
        }
    }
    for (pid_t pid : pids) {
        int status = 0;
        ::waitpid(pid, &status, 0);
        ASSERT_TRUE(WIFEXITED(status));
        EXPECT_EQ(WEXITSTATUS(status), 0);
    }
    auto s = open(o);
    ASSERT_TRUE(s);
    EXPECT_LE(s->stats().bytes, o.workspace_max_bytes);
    EXPECT_GT(s->stats().entries, 0u);
    // Whatever survived reads back right.
    for (uint32_t child = 0; child < 2; ++child) {
        for (uint32_t chain = 0; chain < 6; ++chain) {
            const auto tokens = make_tokens(8 * kC, 1000 * child + chain);
            const int32_t n = s->stored_prefix(m, tokens);
            auto snap = s->read(m, tokens, 0, n);
            ASSERT_TRUE(snap.ok());
            std::vector<KVSnapshot> rows;
            for (int32_t p = 0; p < n; p += kC) rows.push_back(make_rows(m, p, kC, chain));
            EXPECT_TRUE(snap->data == assemble(rows, 0, rows.size()));
        }
    }
    EXPECT_EQ(s->stats().bad_files, 0u);
}

TEST_F(KVStoreTest, HitsOfTwoStoresAreMergedIntoTheIndex) {
    const KVModelKey m = model_a();
    const auto tokens = make_tokens(2 * kC, 9);
    auto a = open();
    auto b = open();
    ASSERT_TRUE(a && b);
    put_chain(*a, m, tokens, 2, 1);
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(a->read(m, tokens, 0, 2 * kC).ok());
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(b->read(m, tokens, kC, 2 * kC).ok());
    a->flush();
    b->flush();
    auto idx = json::parse(read_bytes(a->dir() / "index.json"));
    const auto key = [&](int32_t end) {
        return kv_chunk_file_name(m, kC, std::span(tokens).first(end)).substr(0, 32);
    };
    EXPECT_EQ(idx["entries"][key(kC)]["hits"].get<uint64_t>(), 3u);
    EXPECT_EQ(idx["entries"][key(2 * kC)]["hits"].get<uint64_t>(), 8u);
    auto list = list_kv_workspaces(options().root);
    ASSERT_TRUE(list.ok());
    ASSERT_EQ(list->size(), 1u);
    EXPECT_EQ((*list)[0].hits, 11u);

    // A lost or broken index is rebuilt from the files; hits restart at 0.
    write_bytes(a->dir() / "index.json", {'{', 'x'});
    put_chain(*a, m, make_tokens(kC, 10), 1, 1);
    idx = json::parse(read_bytes(a->dir() / "index.json"));
    EXPECT_EQ(idx["entries"].size(), 3u);
    EXPECT_EQ(idx["entries"][key(2 * kC)]["pos"].get<uint32_t>(), static_cast<uint32_t>(kC));
    EXPECT_EQ(idx["entries"][key(2 * kC)]["prev"].get<std::string>(), key(kC));
}

// ---------------------------------------------------------------------------------------
// Eviction

class KVStoreEvictTest : public KVStoreTest {
  protected:
    // Sets hits and age (days) of an entry in index.json.
    static void set_use(const KVStore& s, const std::string& name, uint64_t hits, double days) {
        const fs::path p = s.dir() / "index.json";
        json idx = json::parse(read_bytes(p));
        const std::string key = name.substr(0, 32);
        ASSERT_TRUE(idx["entries"].contains(key)) << key;
        idx["entries"][key]["hits"] = hits;
        const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
        idx["entries"][key]["last_used"] = now - static_cast<int64_t>(days * 86400);
        const std::string text = idx.dump();
        write_bytes(p, std::vector<uint8_t>(text.begin(), text.end()));
    }
    std::string name(const std::vector<int32_t>& tokens, int32_t end) const {
        return kv_chunk_file_name(m_, kC, std::span(tokens).first(end));
    }
    bool has(const KVStore& s, const std::vector<int32_t>& tokens, int32_t end) const {
        return fs::exists(s.dir() / name(tokens, end));
    }

    const KVModelKey m_ = model_a();
    const std::vector<int32_t> p_ = make_tokens(3 * kC, 1);
    const std::vector<int32_t> q_ = make_tokens(kC, 2);
    const std::vector<int32_t> r_ = make_tokens(kC, 3);
};

TEST_F(KVStoreEvictTest, WorkspaceBudgetRemovesTheLowestValue) {
    KVStoreOptions o = options();
    o.workspace_max_bytes = file_bytes(m_, kC, kC) * 2 + file_bytes(m_, kC, 2 * kC) +
                            file_bytes(m_, kC, 3 * kC);  // p0 p1 p2 q0
    auto s = open(o);
    ASSERT_TRUE(s);
    put_chain(*s, m_, p_, 3, 1);
    put_chain(*s, m_, q_, 1, 2);
    EXPECT_EQ(s->stats().evicted, 0u);
    // Same age: hits decide. Same hits: age decides.
    for (int32_t e : {kC, 2 * kC, 3 * kC}) set_use(*s, name(p_, e), 5, 1.0);
    set_use(*s, name(q_, kC), 0, 1.0);  // value 1 * 0.5 vs p's 6 * 0.5 and r's 1 * 1
    put_chain(*s, m_, r_, 1, 3);
    EXPECT_EQ(s->stats().evicted, 1u);
    EXPECT_FALSE(has(*s, q_, kC));
    EXPECT_TRUE(has(*s, p_, kC) && has(*s, p_, 2 * kC) && has(*s, p_, 3 * kC));
    EXPECT_TRUE(has(*s, r_, kC));

    // Age: an old entry with many hits loses to fresh ones.
    for (int32_t e : {kC, 2 * kC, 3 * kC}) set_use(*s, name(p_, e), 5, 0.0);
    set_use(*s, name(r_, kC), 100, 30.0);  // 101 * 2^-30
    put_chain(*s, m_, q_, 1, 2);
    EXPECT_FALSE(has(*s, r_, kC));
    EXPECT_TRUE(has(*s, q_, kC));
    EXPECT_LE(s->stats().bytes, o.workspace_max_bytes);
    EXPECT_EQ(json::parse(read_bytes(s->dir() / "index.json"))["entries"].size(), 4u);
}

TEST_F(KVStoreEvictTest, UnreachableChunksGoFirst) {
    KVStoreOptions o = options();
    o.workspace_max_bytes = file_bytes(m_, kC, kC) * 2;  // q0 r0
    o.workspace_max_bytes += file_bytes(m_, kC, 2 * kC) + file_bytes(m_, kC, 3 * kC) + 1;
    auto s = open(o);
    ASSERT_TRUE(s);
    put_chain(*s, m_, p_, 3, 1);
    put_chain(*s, m_, q_, 1, 2);
    set_use(*s, name(p_, 2 * kC), 1000, 0.0);
    set_use(*s, name(p_, 3 * kC), 1000, 0.0);
    set_use(*s, name(q_, kC), 0, 10.0);
    // p0 goes: p1 and p2 cannot be reached from position 0 any more.
    fs::remove(s->dir() / name(p_, kC));
    o.workspace_max_bytes = file_bytes(m_, kC, kC) * 2;
    s = open(o);
    ASSERT_TRUE(s);
    put_chain(*s, m_, r_, 1, 3);
    EXPECT_EQ(s->stats().evicted, 2u);
    EXPECT_FALSE(has(*s, p_, 2 * kC));
    EXPECT_FALSE(has(*s, p_, 3 * kC));
    EXPECT_TRUE(has(*s, q_, kC));  // old and never hit, but reachable
    EXPECT_TRUE(has(*s, r_, kC));
}

TEST_F(KVStoreEvictTest, EvictingAChunkMakesItsSuccessorsGoNext) {
    KVStoreOptions o = options();
    o.workspace_max_bytes = file_bytes(m_, kC, kC) + file_bytes(m_, kC, 2 * kC) +
                            file_bytes(m_, kC, 3 * kC) + file_bytes(m_, kC, kC);
    auto s = open(o);
    ASSERT_TRUE(s);
    put_chain(*s, m_, p_, 3, 1);
    put_chain(*s, m_, q_, 1, 2);
    // p0 is the least valuable; once it is gone p1 and p2 are worth nothing.
    set_use(*s, name(p_, kC), 0, 20.0);
    set_use(*s, name(p_, 2 * kC), 50, 0.0);
    set_use(*s, name(p_, 3 * kC), 50, 0.0);
    set_use(*s, name(q_, kC), 0, 1.0);
    // Over by r0 plus one byte: p0 goes first, then its two successors before q0.
    o.workspace_max_bytes -= 1;
    s = open(o);
    ASSERT_TRUE(s);
    put_chain(*s, m_, r_, 1, 3);
    EXPECT_FALSE(has(*s, p_, kC));
    EXPECT_FALSE(has(*s, p_, 3 * kC));  // the later unreachable chunk goes first
    EXPECT_TRUE(has(*s, p_, 2 * kC));   // one more byte was all that was needed
    EXPECT_TRUE(has(*s, q_, kC));
    EXPECT_TRUE(has(*s, r_, kC));
    EXPECT_EQ(s->stats().evicted, 2u);
}

TEST_F(KVStoreEvictTest, TotalBudgetEvictsFromOtherWorkspacesUnlessBusy) {
    KVStoreOptions oa = options();
    KVStoreOptions ob = options();
    ob.workspace = tmp_.path() / "other project";
    const uint64_t budget = file_bytes(m_, kC, kC) * 3 + file_bytes(m_, kC, 2 * kC) - 1;
    oa.total_max_bytes = ob.total_max_bytes = budget;
    auto a = open(oa);
    auto b = open(ob);
    ASSERT_TRUE(a && b);
    ASSERT_NE(a->dir(), b->dir());
    put_chain(*a, m_, p_, 2, 1);  // p0 p1 in A
    set_use(*a, name(p_, kC), 3, 4.0);
    set_use(*a, name(p_, 2 * kC), 3, 4.0);
    put_chain(*b, m_, q_, 1, 2);  // q0 in B
    put_chain(*b, m_, r_, 1, 3);  // r0 in B: one byte over the total
    EXPECT_EQ(b->stats().evicted, 1u);
    EXPECT_FALSE(has(*a, p_, 2 * kC));  // A's later, old chunk
    EXPECT_TRUE(has(*a, p_, kC));
    EXPECT_TRUE(has(*b, q_, kC) && has(*b, r_, kC));
    auto idx = json::parse(read_bytes(a->dir() / "index.json"));
    EXPECT_EQ(idx["entries"].size(), 1u);

    // With A busy, B evicts from itself only.
    const int fd = ::open((a->dir() / "lock").c_str(), O_RDWR | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::flock(fd, LOCK_EX), 0);
    const auto t = make_tokens(kC, 4);
    put_chain(*b, m_, t, 1, 4);
    put_chain(*b, m_, make_tokens(kC, 5), 1, 5);
    EXPECT_TRUE(has(*a, p_, kC));
    EXPECT_EQ(count_entries(a->dir()), 1u);
    EXPECT_EQ(b->stats().evicted, 2u);
    EXPECT_EQ(count_entries(b->dir()), 3u);
    ::close(fd);

    auto list = list_kv_workspaces(oa.root);
    ASSERT_TRUE(list.ok());
    ASSERT_EQ(list->size(), 2u);
    uint64_t total = 0;
    for (const auto& w : *list) total += w.bytes;
    EXPECT_LE(total, budget);
}

TEST_F(KVStoreEvictTest, ZeroBudgetDisablesWritingAndOversizedChunksFail) {
    KVStoreOptions o = options();
    o.workspace_max_bytes = 0;
    auto s = open(o);
    ASSERT_TRUE(s);
    EXPECT_TRUE(s->put(m_, q_, make_rows(m_, 0, kC, 1)).ok());
    s->put_async(m_, q_, make_rows(m_, 0, kC, 1));
    s->flush();
    EXPECT_EQ(count_entries(s->dir()), 0u);
    EXPECT_EQ(s->stats().dropped, 0u);
    o = options();
    o.total_max_bytes = 0;
    s = open(o);
    EXPECT_TRUE(s->put(m_, q_, make_rows(m_, 0, kC, 1)).ok());
    EXPECT_EQ(count_entries(s->dir()), 0u);
    o = options();
    o.workspace_max_bytes = file_bytes(m_, kC, kC) - 1;
    s = open(o);
    EXPECT_FALSE(s->put(m_, q_, make_rows(m_, 0, kC, 1)).ok());
    EXPECT_EQ(count_entries(s->dir()), 0u);
}

// ---------------------------------------------------------------------------------------
// Directories, clear, the writer thread

TEST_F(KVStoreTest, DirectoriesAre0700AndFiles0600) {
    KVStoreOptions o = options();
    fs::create_directories(o.root);
    fs::permissions(o.root, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                fs::perms::others_read | fs::perms::others_exec);
    auto s = open(o);
    ASSERT_TRUE(s);
    put_chain(*s, model_a(), make_tokens(kC, 2), 1, 1);
    auto mode = [](const fs::path& p) {
        struct stat st;
        EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
        return st.st_mode & 07777;
    };
    EXPECT_EQ(mode(o.root), 0700u);
    EXPECT_EQ(mode(o.root / "workspaces"), 0700u);
    EXPECT_EQ(mode(s->dir()), 0700u);
    EXPECT_EQ(s->dir().parent_path(), o.root / "workspaces");
    EXPECT_TRUE(s->dir().filename().string().starts_with("project-"));
    EXPECT_EQ(s->dir().filename().string().size(), std::string("project-").size() + 16);
    EXPECT_EQ(s->dir(), kv_workspace_dir(o.root, o.workspace));
    for (const auto& e : fs::directory_iterator(s->dir()))
        EXPECT_EQ(mode(e.path()), 0600u) << e.path();
    auto ws = json::parse(read_bytes(s->dir() / "workspace.json"));
    EXPECT_EQ(ws["workspace"].get<std::string>(), fs::weakly_canonical(o.workspace).string());

    // Nested missing parents are created private too.
    o.root = tmp_.path() / "a" / "b" / "cache";
    s = open(o);
    ASSERT_TRUE(s);
    EXPECT_EQ(mode(tmp_.path() / "a"), 0700u);
    EXPECT_EQ(mode(o.root), 0700u);

    // The default workspace.
    o.workspace.clear();
    s = open(o);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->dir(), o.root / "workspaces" / "default");
}

TEST_F(KVStoreTest, SymlinkedWorkspaceDirIsRefused) {
    KVStoreOptions o = options();
    const fs::path target = tmp_.path() / "target";
    fs::create_directories(target);
    fs::create_directories(o.root / "workspaces");
    fs::create_directory_symlink(target, kv_workspace_dir(o.root, o.workspace));
    auto s = KVStore::open(o);
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.error().message.find("symlink"), std::string::npos) << s.error().message;
    EXPECT_TRUE(fs::is_empty(target));
}

TEST_F(KVStoreTest, WorkspaceDirOfAnotherUserIsRefused) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to chown";
    KVStoreOptions o = options();
    auto s = open(o);
    ASSERT_TRUE(s);
    s.reset();
    ASSERT_EQ(::chown(kv_workspace_dir(o.root, o.workspace).c_str(), 65534, 65534), 0);
    auto again = KVStore::open(o);
    ASSERT_FALSE(again.ok());
    EXPECT_NE(again.error().message.find("another user"), std::string::npos)
        << again.error().message;
}

TEST_F(KVStoreTest, DefaultCacheRoot) {
    const char* old_xdg = std::getenv("XDG_CACHE_HOME");
    const char* old_home = std::getenv("HOME");
    const std::string saved_xdg = old_xdg ? old_xdg : "";
    const std::string saved_home = old_home ? old_home : "";
    ::setenv("XDG_CACHE_HOME", "/x/cache", 1);
    EXPECT_EQ(default_cache_root(), fs::path("/x/cache/hearth"));
    ::setenv("XDG_CACHE_HOME", "relative", 1);
    ::setenv("HOME", "/home/u", 1);
    EXPECT_EQ(default_cache_root(), fs::path("/home/u/.cache/hearth"));
    ::unsetenv("XDG_CACHE_HOME");
    EXPECT_EQ(default_cache_root(), fs::path("/home/u/.cache/hearth"));
    if (old_xdg) ::setenv("XDG_CACHE_HOME", saved_xdg.c_str(), 1);
    if (old_home) ::setenv("HOME", saved_home.c_str(), 1);
}

TEST_F(KVStoreTest, ClearAndClearWorkspaces) {
    const KVModelKey m = model_a();
    const auto tokens = make_tokens(3 * kC, 1);
    auto s = open();
    ASSERT_TRUE(s);
    put_chain(*s, m, tokens, 3, 1);
    ASSERT_TRUE(s->clear().ok());
    EXPECT_EQ(s->stored_prefix(m, tokens), 0);
    EXPECT_EQ(s->stats().entries, 0u);
    EXPECT_FALSE(fs::exists(s->dir() / "index.json"));
    // The store keeps working after clear.
    put_chain(*s, m, tokens, 3, 1);
    EXPECT_EQ(s->stored_prefix(m, tokens), 3 * kC);

    KVStoreOptions ob = options();
    ob.workspace = tmp_.path() / "b";
    auto b = open(ob);
    ASSERT_TRUE(b);
    put_chain(*b, m, tokens, 1, 1);
    auto list = list_kv_workspaces(ob.root);
    ASSERT_TRUE(list.ok());
    ASSERT_EQ(list->size(), 2u);
    EXPECT_EQ((*list)[0].entries + (*list)[1].entries, 4u);

    std::vector<KVWorkspaceInfo> removed;
    ASSERT_TRUE(clear_kv_workspaces(ob.root, ob.workspace, &removed).ok());
    ASSERT_EQ(removed.size(), 1u);
    EXPECT_EQ(removed[0].entries, 1u);
    EXPECT_EQ(removed[0].bytes, file_bytes(m, kC, kC));
    EXPECT_EQ(removed[0].workspace, fs::weakly_canonical(ob.workspace).string());
    EXPECT_EQ(b->stats().entries, 0u);
    EXPECT_EQ(s->stored_prefix(m, tokens), 3 * kC);

    removed.clear();
    ASSERT_TRUE(clear_kv_workspaces(ob.root, "", &removed).ok());
    EXPECT_EQ(removed.size(), 2u);
    EXPECT_EQ(s->stored_prefix(m, tokens), 0);
    list = list_kv_workspaces(ob.root);
    ASSERT_TRUE(list.ok());
    for (const auto& w : *list) EXPECT_EQ(w.entries, 0u);

    // A root that does not exist lists nothing and clears nothing.
    list = list_kv_workspaces(tmp_.path() / "none");
    ASSERT_TRUE(list.ok());
    EXPECT_TRUE(list->empty());
    EXPECT_TRUE(clear_kv_workspaces(tmp_.path() / "none", "").ok());
}

TEST_F(KVStoreTest, PutAsyncAndFlush) {
    const KVModelKey m = model_a(KVDType::F16);
    const auto tokens = make_tokens(6 * kC, 8);
    auto s = open();
    ASSERT_TRUE(s);
    std::vector<KVSnapshot> rows;
    for (int32_t i = 0; i < 6; ++i) {
        const int32_t end = (i + 1) * kC;
        rows.push_back(make_rows(m, end - kC, kC, 9));
        s->put_async(m, std::vector<int32_t>(tokens.begin(), tokens.begin() + end), rows.back());
    }
    s->flush();
    EXPECT_EQ(s->stored_prefix(m, tokens), 6 * kC);
    auto snap = s->read(m, tokens, 0, 6 * kC);
    ASSERT_TRUE(snap.ok());
    EXPECT_TRUE(snap->data == assemble(rows, 0, 6));
    EXPECT_EQ(s->stats().writes, 6u);
    EXPECT_EQ(s->stats().dropped, 0u);

    // The destructor flushes.
    const auto more = make_tokens(2 * kC, 10);
    s->put_async(m, std::vector<int32_t>(more.begin(), more.begin() + kC), make_rows(m, 0, kC, 1));
    s->put_async(m, more, make_rows(m, kC, kC, 1));
    s.reset();
    s = open();
    EXPECT_EQ(s->stored_prefix(m, more), 2 * kC);
}

TEST_F(KVStoreTest, QueueBoundDropsAndCounts) {
    const KVModelKey m{5, KVDType::F32, 2, 64};  // 16 KiB of rows per chunk
    const size_t rows_bytes = make_rows(m, 0, kC, 0).data.size();
    KVStoreOptions o = options();
    o.max_queued_bytes = 2 * rows_bytes + 100 * kC;  // two chunks fit, three do not
    auto s = open(o);
    ASSERT_TRUE(s);
    // Hold the workspace lock so the writer cannot finish anything meanwhile.
    const int fd = ::open((s->dir() / "lock").c_str(), O_RDWR | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::flock(fd, LOCK_EX), 0);
    const auto tokens = make_tokens(5 * kC, 3);
    for (int32_t i = 0; i < 5; ++i) {
        const int32_t end = (i + 1) * kC;
        s->put_async(m, std::vector<int32_t>(tokens.begin(), tokens.begin() + end),
                     make_rows(m, end - kC, kC, 1));
    }
    EXPECT_EQ(s->stats().dropped, 3u);
    // A producer that can wait is told there is no room yet, then that there is.
    const size_t chunk_bytes = rows_bytes + 3 * kC * sizeof(int32_t);
    EXPECT_FALSE(s->wait_for_room(chunk_bytes, std::chrono::milliseconds(30)));
    ::flock(fd, LOCK_UN);
    EXPECT_TRUE(s->wait_for_room(chunk_bytes, std::chrono::seconds(10)));
    ::close(fd);
    s->flush();
    EXPECT_EQ(s->stats().writes, 2u);
    EXPECT_EQ(s->stats().write_failures, 0u);
    EXPECT_EQ(s->stored_prefix(m, tokens), 2 * kC);

    // A chunk larger than the whole queue is dropped too.
    o.max_queued_bytes = rows_bytes / 2;
    s = open(o);
    s->put_async(m, std::vector<int32_t>(tokens.begin(), tokens.begin() + kC),
                 make_rows(m, 0, kC, 1));
    s->flush();
    EXPECT_EQ(s->stats().dropped, 1u);
}

TEST_F(KVStoreTest, ClearDropsQueuedChunks) {
    const KVModelKey m = model_a();
    auto s = open();
    ASSERT_TRUE(s);
    const int fd = ::open((s->dir() / "lock").c_str(), O_RDWR | O_CLOEXEC);
    ASSERT_EQ(::flock(fd, LOCK_EX), 0);
    const auto tokens = make_tokens(4 * kC, 3);
    for (int32_t i = 0; i < 4; ++i) {
        const int32_t end = (i + 1) * kC;
        s->put_async(m, std::vector<int32_t>(tokens.begin(), tokens.begin() + end),
                     make_rows(m, end - kC, kC, 1));
    }
    std::thread release([fd] {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        ::flock(fd, LOCK_UN);
    });
    ASSERT_TRUE(s->clear().ok());  // waits for the chunk in flight, drops the rest
    release.join();
    ::close(fd);
    EXPECT_EQ(s->stats().entries, 0u);
    EXPECT_GE(s->stats().dropped, 2u);
    s->flush();
    EXPECT_EQ(s->stats().entries, 0u);
}

// A 7 MiB chunk (a 1.5B-class model at 256 tokens): write and read times, for the record.
TEST_F(KVStoreTest, ThroughputOfA7MiBChunk) {
    const KVModelKey m{99, KVDType::F16, 28, 256};  // 28 * 2 * 256 * 256 * 2 = 7 MiB
    KVStoreOptions o = options();
    o.chunk_tokens = 256;
    auto s = open(o);
    ASSERT_TRUE(s);
    const auto tokens = make_tokens(8 * 256, 1);
    std::vector<KVSnapshot> rows;
    for (int32_t i = 0; i < 8; ++i) rows.push_back(make_rows(m, i * 256, 256, 2));
    const auto t0 = std::chrono::steady_clock::now();
    for (int32_t i = 0; i < 8; ++i) {
        ASSERT_TRUE(s->put(m, std::span(tokens).first((i + 1) * 256), rows[i]).ok());
    }
    const auto t1 = std::chrono::steady_clock::now();
    auto snap = s->read(m, tokens, 0, 8 * 256);
    const auto t2 = std::chrono::steady_clock::now();
    ASSERT_TRUE(snap.ok());
    ASSERT_EQ(snap->n_tokens, 8 * 256);
    const double mib = 8.0 * static_cast<double>(rows[0].data.size()) / (1 << 20);
    const double w = std::chrono::duration<double>(t1 - t0).count();
    const double r = std::chrono::duration<double>(t2 - t1).count();
    std::printf(
        "[ timing ] 8 chunks of %.2f MiB: write %.1f ms/chunk (%.0f MiB/s), read %.1f "
        "ms/chunk (%.0f MiB/s)\n",
        static_cast<double>(rows[0].data.size()) / (1 << 20), 1000 * w / 8, mib / w, 1000 * r / 8,
        mib / r);
}

}  // namespace
}  // namespace hearth
