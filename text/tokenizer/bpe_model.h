// The BPE model of tokenizer.json (`model.type == "BPE"`): vocabulary, ranked merges (as "a b" strings or ["a","b"]
// pairs), ignore_merges, byte_fallback, unk_token/fuse_unk, continuing_subword_prefix, end_of_word_suffix.
//
// Each piece is split into characters and merged lowest rank first with a binary heap over a linked list of symbols
// (O(n log n) per piece, HF's algorithm, so ties resolve identically). Results are cached per piece: natural text
// repeats a small set of words, and a cache hit is one hash lookup.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "sdk/status.h"

namespace volt::text {

// Hash/equality that let unordered_map<std::string, V> be searched with a string_view without allocating.
struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using TokenIdMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

class BpeModel {
public:
    // `where` names the JSON object in errors ("tokenizer.json: model").
    static Expected<std::unique_ptr<BpeModel>> from_json(const nlohmann::json& model, const std::string& where);
    ~BpeModel();

    // Appends the ids of one pre-tokenized piece. Thread-safe.
    void tokenize(std::string_view piece, std::vector<int32_t>& ids) const;

    std::optional<int32_t> token_to_id(std::string_view token) const;
    const std::string* id_to_token(int32_t id) const;  // nullptr for ids without a vocabulary entry
    int32_t id_limit() const { return static_cast<int32_t>(id_to_token_.size()); }  // one past the largest id

private:
    struct MergeTable;
    BpeModel();
    void merge_word(std::string_view piece, std::vector<int32_t>& ids) const;

    TokenIdMap vocab_;
    std::vector<std::string> id_to_token_;
    std::vector<bool> has_token_;
    std::unique_ptr<MergeTable> merges_;
    std::optional<int32_t> unk_id_;
    bool fuse_unk_ = false;
    bool byte_fallback_ = false;
    bool ignore_merges_ = false;
    std::string continuing_subword_prefix_;
    std::string end_of_word_suffix_;
    std::vector<int32_t> byte_fallback_ids_;  // id of "<0xXX>" per byte, or -1

    // Word cache: piece -> [offset, length) in cache_ids_. Bounded; once full, new words are not cached (as in HF).
    struct CacheEntry {
        uint32_t offset, length;
    };
    mutable std::mutex cache_mutex_;
    mutable std::unordered_map<std::string, CacheEntry, StringHash, std::equal_to<>> cache_;
    mutable std::vector<int32_t> cache_ids_;
};

}  // namespace volt::text
