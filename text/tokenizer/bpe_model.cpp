#include "text/tokenizer/bpe_model.h"

#include <algorithm>
#include <cstdio>

#include "text/tokenizer/utf8.h"

namespace volt::text {

namespace {
constexpr size_t kCacheMaxWords = 1 << 18;
constexpr size_t kCacheMaxPieceBytes = 256;  // longer pieces are rare and would crowd the cache
constexpr int64_t kMaxIdGap = 1 << 24;
}  // namespace

// Open-addressing hash table from a symbol pair (left id, right id) to (rank, merged id). Pairs are looked up for
// every adjacent symbol pair of every uncached piece; a flat table keeps that to one or two cache lines.
struct BpeModel::MergeTable {
    struct Slot {
        uint64_t key = kEmpty;
        int32_t rank = 0;
        int32_t merged = 0;
    };
    static constexpr uint64_t kEmpty = ~uint64_t(0);
    std::vector<Slot> slots;
    uint64_t mask = 0;

    static uint64_t key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }
    static uint64_t mix(uint64_t k) {
        k ^= k >> 33;
        k *= 0xff51afd7ed558ccdULL;
        k ^= k >> 33;
        return k;
    }
    void reserve(size_t n) {
        size_t cap = 16;
        while (cap < n * 2) cap <<= 1;
        slots.assign(cap, Slot{});
        mask = cap - 1;
    }
    // Keeps the first (lowest-rank) entry for a duplicated pair, as HF does.
    void insert(int32_t a, int32_t b, int32_t rank, int32_t merged) {
        uint64_t k = key(a, b);
        for (uint64_t i = mix(k) & mask;; i = (i + 1) & mask) {
            if (slots[i].key == k) return;
            if (slots[i].key == kEmpty) {
                slots[i] = {k, rank, merged};
                return;
            }
        }
    }
    const Slot* find(int32_t a, int32_t b) const {
        uint64_t k = key(a, b);
        for (uint64_t i = mix(k) & mask;; i = (i + 1) & mask) {
            if (slots[i].key == k) return &slots[i];
            if (slots[i].key == kEmpty) return nullptr;
        }
    }
};

BpeModel::BpeModel() : merges_(std::make_unique<MergeTable>()) {}
BpeModel::~BpeModel() = default;

namespace {

Expected<std::optional<std::string>> optional_string(const nlohmann::json& j, const char* key, const std::string& where) {
    if (!j.contains(key) || j.at(key).is_null()) return std::optional<std::string>();
    if (!j.at(key).is_string()) return invalid_argument(where, ".", key, ": expected a string or null");
    return std::optional<std::string>(j.at(key).get<std::string>());
}

Expected<bool> bool_field(const nlohmann::json& j, const char* key, bool fallback, const std::string& where) {
    if (!j.contains(key) || j.at(key).is_null()) return fallback;
    if (!j.at(key).is_boolean()) return invalid_argument(where, ".", key, ": expected true or false");
    return j.at(key).get<bool>();
}

}  // namespace

Expected<std::unique_ptr<BpeModel>> BpeModel::from_json(const nlohmann::json& j, const std::string& where) {
    std::unique_ptr<BpeModel> m(new BpeModel());
    if (!j.contains("vocab") || !j.at("vocab").is_object())
        return invalid_argument(where, ".vocab: missing or not an object of token -> id");
    if (!j.contains("merges") || !j.at("merges").is_array())
        return invalid_argument(where, ".merges: missing or not an array (expected \"a b\" strings or [\"a\", \"b\"] pairs)");

    const auto& vocab = j.at("vocab");
    m->vocab_.reserve(vocab.size());
    int64_t max_id = -1;
    for (auto it = vocab.begin(); it != vocab.end(); ++it) {
        if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 || it.value().get<int64_t>() > INT32_MAX)
            return invalid_argument(where, ".vocab[\"", it.key(), "\"]: expected a non-negative integer id");
        if (!utf8_is_valid(it.key())) return invalid_argument(where, ".vocab: a token is not valid UTF-8 (id ", it.value(), ")");
        int32_t id = static_cast<int32_t>(it.value().get<int64_t>());
        m->vocab_.emplace(it.key(), id);
        max_id = std::max<int64_t>(max_id, id);
    }
    // Ids index dense tables; a vocabulary may leave gaps (padding rows), but not billions of them.
    if (max_id >= int64_t(vocab.size()) + kMaxIdGap)
        return invalid_argument(where, ".vocab: largest id ", max_id, " is far beyond the ", vocab.size(),
                                " entries (ids must be dense enough to index a table)");
    m->id_to_token_.resize(size_t(max_id + 1));
    m->has_token_.assign(size_t(max_id + 1), false);
    for (const auto& [tok, id] : m->vocab_) {
        m->id_to_token_[size_t(id)] = tok;
        m->has_token_[size_t(id)] = true;
    }

    VOLT_ASSIGN_OR_RETURN(auto unk, optional_string(j, "unk_token", where));
    VOLT_ASSIGN_OR_RETURN(auto prefix, optional_string(j, "continuing_subword_prefix", where));
    VOLT_ASSIGN_OR_RETURN(auto suffix, optional_string(j, "end_of_word_suffix", where));
    VOLT_ASSIGN_OR_RETURN(m->fuse_unk_, bool_field(j, "fuse_unk", false, where));
    VOLT_ASSIGN_OR_RETURN(m->byte_fallback_, bool_field(j, "byte_fallback", false, where));
    VOLT_ASSIGN_OR_RETURN(m->ignore_merges_, bool_field(j, "ignore_merges", false, where));
    if (j.contains("dropout") && !j.at("dropout").is_null() && j.at("dropout").is_number() &&
        j.at("dropout").get<double>() != 0.0)
        return invalid_argument(where, ".dropout: BPE dropout is a training-time option; inference needs null or 0");
    if (unk) {
        auto it = m->vocab_.find(*unk);
        if (it == m->vocab_.end())
            return invalid_argument(where, ".unk_token: \"", *unk, "\" is not in the vocabulary");
        m->unk_id_ = it->second;
    }
    if (prefix) m->continuing_subword_prefix_ = *prefix;
    if (suffix) m->end_of_word_suffix_ = *suffix;
    m->byte_fallback_ids_.assign(256, -1);
    for (int b = 0; b < 256; ++b) {
        char name[8];
        std::snprintf(name, sizeof name, "<0x%02X>", b);
        auto it = m->vocab_.find(std::string_view(name));
        if (it != m->vocab_.end()) m->byte_fallback_ids_[size_t(b)] = it->second;
    }

    const auto& merges = j.at("merges");
    m->merges_->reserve(merges.size());
    const size_t prefix_len = m->continuing_subword_prefix_.size();
    int32_t rank = 0;
    for (const auto& item : merges) {
        std::string a, b;
        if (item.is_string()) {
            // "a b": the separator is the first space (tokens never contain a space in this form).
            const std::string& s = item.get_ref<const std::string&>();
            size_t sp = s.find(' ');
            if (sp == std::string::npos || sp == 0 || sp + 1 >= s.size())
                return invalid_argument(where, ".merges[", rank, "]: expected \"left right\", got \"", s, "\"");
            a = s.substr(0, sp);
            b = s.substr(sp + 1);
        } else if (item.is_array() && item.size() == 2 && item[0].is_string() && item[1].is_string()) {
            a = item[0].get<std::string>();
            b = item[1].get<std::string>();
        } else {
            return invalid_argument(where, ".merges[", rank, "]: expected a \"left right\" string or a [left, right] pair");
        }
        auto ia = m->vocab_.find(a), ib = m->vocab_.find(b);
        if (ia == m->vocab_.end() || ib == m->vocab_.end())
            return invalid_argument(where, ".merges[", rank, "]: token \"", ia == m->vocab_.end() ? a : b,
                                    "\" is not in the vocabulary");
        // HF forms the merged token as left + right minus the continuing-subword prefix of `right`.
        if (b.size() < prefix_len)
            return invalid_argument(where, ".merges[", rank, "]: \"", b, "\" is shorter than continuing_subword_prefix");
        std::string merged = a + b.substr(prefix_len);
        auto im = m->vocab_.find(merged);
        if (im == m->vocab_.end())
            return invalid_argument(where, ".merges[", rank, "]: merged token \"", merged, "\" is not in the vocabulary");
        m->merges_->insert(ia->second, ib->second, rank, im->second);
        ++rank;
    }
    return m;
}

std::optional<int32_t> BpeModel::token_to_id(std::string_view token) const {
    auto it = vocab_.find(token);
    if (it == vocab_.end()) return std::nullopt;
    return it->second;
}

const std::string* BpeModel::id_to_token(int32_t id) const {
    if (id < 0 || size_t(id) >= id_to_token_.size() || !has_token_[size_t(id)]) return nullptr;
    return &id_to_token_[size_t(id)];
}

void BpeModel::tokenize(std::string_view piece, std::vector<int32_t>& ids) const {
    if (piece.empty()) return;
    if (ignore_merges_) {
        auto it = vocab_.find(piece);
        if (it != vocab_.end()) {
            ids.push_back(it->second);
            return;
        }
    }
    const bool cacheable = piece.size() <= kCacheMaxPieceBytes;
    if (cacheable) {
        std::lock_guard<std::mutex> lock(cache_mutex_);
        auto it = cache_.find(piece);
        if (it != cache_.end()) {
            ids.insert(ids.end(), cache_ids_.begin() + it->second.offset,
                       cache_ids_.begin() + it->second.offset + it->second.length);
            return;
        }
    }
    size_t first = ids.size();
    merge_word(piece, ids);
    if (cacheable) {
        std::lock_guard<std::mutex> lock(cache_mutex_);
        if (cache_.size() < kCacheMaxWords && !cache_.count(piece)) {
            CacheEntry e{uint32_t(cache_ids_.size()), uint32_t(ids.size() - first)};
            cache_ids_.insert(cache_ids_.end(), ids.begin() + long(first), ids.end());
            cache_.emplace(std::string(piece), e);
        }
    }
}

void BpeModel::merge_word(std::string_view w, std::vector<int32_t>& ids) const {
    struct Symbol {
        int32_t id;
        int32_t prev, next;
        bool removed;
    };
    std::vector<Symbol> symbols;
    symbols.reserve(w.size());
    auto add = [&](int32_t id) {
        int32_t n = int32_t(symbols.size());
        symbols.push_back({id, n - 1, n + 1, false});
    };

    // 1. One symbol per character (HF merge_word): prefix/suffix decoration, byte fallback, unknown handling.
    int32_t pending_unk = -1;  // an unknown character (run) not yet added
    std::string decorated;
    size_t pos = 0;
    while (pos < w.size()) {
        size_t start = pos;
        utf8_next(w, pos);
        std::string_view ch = w.substr(start, pos - start);
        std::string_view key = ch;
        bool decorate = (start > 0 && !continuing_subword_prefix_.empty()) || (pos == w.size() && !end_of_word_suffix_.empty());
        if (decorate) {
            decorated.clear();
            if (start > 0) decorated += continuing_subword_prefix_;
            decorated += ch;
            if (pos == w.size()) decorated += end_of_word_suffix_;
            key = decorated;
        }
        auto it = vocab_.find(key);
        if (it != vocab_.end()) {
            if (pending_unk >= 0) {
                add(pending_unk);
                pending_unk = -1;
            }
            add(it->second);
            continue;
        }
        if (byte_fallback_) {
            bool all = true;
            for (char c : key) all = all && byte_fallback_ids_[static_cast<unsigned char>(c)] >= 0;
            if (all) {
                // HF emits the byte tokens without flushing a pending unknown first; kept for identical ids.
                for (char c : key) add(byte_fallback_ids_[static_cast<unsigned char>(c)]);
                continue;
            }
        }
        if (unk_id_) {
            if (pending_unk >= 0 && !fuse_unk_) add(pending_unk);
            pending_unk = *unk_id_;
        }
    }
    if (pending_unk >= 0) add(pending_unk);
    if (symbols.empty()) return;
    symbols.back().next = -1;

    // 2. Merge the lowest-ranked adjacent pair until none is left; ties go to the leftmost pair.
    struct Candidate {
        int32_t rank, pos, merged;
        bool operator<(const Candidate& o) const {  // the heap below is a max-heap: invert
            return rank != o.rank ? rank > o.rank : pos > o.pos;
        }
    };
    // A max-heap by operator< (what std::priority_queue does), on a vector reserved up front; spelled out because
    // priority_queue's container constructor trips a gcc 13 false positive (-Waggressive-loop-optimizations).
    std::vector<Candidate> queue;
    queue.reserve(symbols.size() * 2);
    const auto push = [&queue](Candidate c) {
        queue.push_back(c);
        std::push_heap(queue.begin(), queue.end());
    };
    for (int32_t i = 0; i + 1 < int32_t(symbols.size()); ++i)
        if (const auto* m = merges_->find(symbols[size_t(i)].id, symbols[size_t(i) + 1].id))
            push({m->rank, i, m->merged});
    while (!queue.empty()) {
        std::pop_heap(queue.begin(), queue.end());
        const Candidate top = queue.back();
        queue.pop_back();
        Symbol& left = symbols[size_t(top.pos)];
        if (left.removed || left.next < 0) continue;
        Symbol& right = symbols[size_t(left.next)];
        // Stale entry: one side has merged since this candidate was queued.
        const auto* m = merges_->find(left.id, right.id);
        if (!m || m->merged != top.merged) continue;
        left.id = top.merged;
        right.removed = true;
        left.next = right.next;
        if (left.next >= 0) symbols[size_t(left.next)].prev = top.pos;
        if (left.prev >= 0)
            if (const auto* pm = merges_->find(symbols[size_t(left.prev)].id, left.id))
                push({pm->rank, left.prev, pm->merged});
        if (left.next >= 0)
            if (const auto* nm = merges_->find(left.id, symbols[size_t(left.next)].id))
                push({nm->rank, top.pos, nm->merged});
    }
    for (const auto& s : symbols)
        if (!s.removed) ids.push_back(s.id);
}

}  // namespace volt::text
