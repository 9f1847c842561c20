// Tokenizer throughput: encodes a corpus (documents separated by U+001E) one document at a time on one thread,
// then one long document of at least --long-tokens tokens in a single call. Prints JSON with times, MB/s, tokens/s
// and an FNV-1a checksum of all ids so bench/tokenizer_bench.py can check them against Hugging Face `tokenizers`.
//
//   volt_bench_tokenizer --tokenizer DIR --corpus corpus.txt [--passes 3] [--long-tokens 4000000]
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "text/tokenizer/tokenizer.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

uint64_t fnv1a(uint64_t h, const std::vector<int32_t>& ids) {
    for (int32_t id : ids) {
        uint32_t v = uint32_t(id);
        for (int k = 0; k < 4; ++k) {
            h ^= (v >> (8 * k)) & 0xFF;
            h *= 0x100000001b3ULL;
        }
    }
    return h;
}

}  // namespace

int main(int argc, char** argv) {
    std::string tokenizer_path, corpus_path;
    int passes = 3;
    long long long_tokens = 4'000'000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--tokenizer")) tokenizer_path = argv[i + 1];
        else if (!std::strcmp(argv[i], "--corpus")) corpus_path = argv[i + 1];
        else if (!std::strcmp(argv[i], "--passes")) passes = std::atoi(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--long-tokens")) long_tokens = std::atoll(argv[i + 1]);
    }
    if (tokenizer_path.empty() || corpus_path.empty()) {
        std::fprintf(stderr, "usage: volt_bench_tokenizer --tokenizer DIR --corpus FILE [--passes N] [--long-tokens N]\n");
        return 2;
    }
    std::ifstream in(corpus_path, std::ios::binary);
    if (!in) {
        std::fprintf(stderr, "volt_bench_tokenizer: cannot open %s\n", corpus_path.c_str());
        return 3;
    }
    std::string corpus((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::vector<std::string> docs;
    for (size_t pos = 0; pos <= corpus.size();) {
        size_t end = corpus.find('\x1e', pos);
        if (end == std::string::npos) end = corpus.size();
        docs.push_back(corpus.substr(pos, end - pos));
        pos = end + 1;
    }

    auto t0 = Clock::now();
    auto tok = volt::text::load_tokenizer(tokenizer_path);
    if (!tok) {
        std::fprintf(stderr, "volt_bench_tokenizer: %s\n", tok.status().message().c_str());
        return 3;
    }
    const double load_s = seconds_since(t0);

    // Pass 1 runs with a cold word cache (as a fresh process would); later passes show the warm steady state.
    std::vector<double> pass_s;
    uint64_t checksum = 0;
    size_t tokens = 0;
    for (int p = 0; p < passes; ++p) {
        uint64_t h = 0xcbf29ce484222325ULL;
        size_t n = 0;
        auto t = Clock::now();
        for (const auto& d : docs) {
            auto ids = (*tok)->encode(d, false);
            if (!ids) {
                std::fprintf(stderr, "volt_bench_tokenizer: %s\n", ids.status().message().c_str());
                return 3;
            }
            n += ids->size();
            h = fnv1a(h, *ids);
        }
        pass_s.push_back(seconds_since(t));
        checksum = h;
        tokens = n;
    }

    // One document of >= long_tokens tokens: the corpus repeated, joined by blank lines.
    std::string long_doc;
    const double bytes_per_token = double(corpus.size()) / double(std::max<size_t>(tokens, 1));
    const size_t want_bytes = size_t(double(long_tokens) * bytes_per_token * 1.02);
    while (long_doc.size() < want_bytes)
        for (const auto& d : docs) {
            long_doc += d;
            long_doc += "\n\n";
            if (long_doc.size() >= want_bytes) break;
        }
    auto tl = Clock::now();
    auto long_ids = (*tok)->encode(long_doc, false);
    const double long_s = seconds_since(tl);
    if (!long_ids) {
        std::fprintf(stderr, "volt_bench_tokenizer: %s\n", long_ids.status().message().c_str());
        return 3;
    }

    double best = pass_s[0];
    for (double s : pass_s) best = std::min(best, s);
    std::printf("{\"tokenizer\": \"%s\", \"corpus_bytes\": %zu, \"documents\": %zu, \"tokens\": %zu, "
                "\"checksum\": \"%016llx\", \"load_s\": %.4f, \"pass_s\": [",
                (*tok)->description().c_str(), corpus.size(), docs.size(), tokens, (unsigned long long)checksum, load_s);
    for (size_t i = 0; i < pass_s.size(); ++i) std::printf("%s%.4f", i ? ", " : "", pass_s[i]);
    std::printf("], \"first_mb_s\": %.3f, \"best_mb_s\": %.3f, \"best_tokens_s\": %.0f, "
                "\"long_doc_bytes\": %zu, \"long_doc_tokens\": %zu, \"long_doc_s\": %.4f}\n",
                corpus.size() / 1e6 / pass_s[0], corpus.size() / 1e6 / best, tokens / best, long_doc.size(),
                long_ids->size(), long_s);
    return 0;
}
