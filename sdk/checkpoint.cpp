#include "sdk/checkpoint.h"

#include <algorithm>
#include <set>

#include <nlohmann/json.hpp>

#include "sdk/file_io.h"
#include "sdk/log.h"

namespace volt {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr const char* kSingle = "model.safetensors";
constexpr const char* kIndex = "model.safetensors.index.json";

// A shard name from the index must be a plain file name inside the model directory (no "../", no absolute paths).
bool is_plain_file_name(const std::string& s) {
    if (s.empty() || s == "." || s == "..") return false;
    return s.find('/') == std::string::npos && s.find('\\') == std::string::npos;
}

}  // namespace

Expected<std::vector<std::pair<std::string, std::string>>> parse_safetensors_index(std::string_view text,
                                                                                   const std::string& label) {
    json j;
    try {
        j = json::parse(text.begin(), text.end());
    } catch (const json::exception& e) {
        return data_loss(label, ": not valid JSON (", e.what(), ")");
    }
    if (!j.is_object()) return data_loss(label, ": not a JSON object");
    auto wm = j.find("weight_map");
    if (wm == j.end() || !wm->is_object()) return data_loss(label, ": missing object field 'weight_map'");
    if (wm->empty()) return data_loss(label, ": 'weight_map' lists no tensors");
    std::vector<std::pair<std::string, std::string>> out;
    for (auto it = wm->begin(); it != wm->end(); ++it) {
        if (!it.value().is_string())
            return data_loss(label, ": weight_map entry for '", it.key(), "' is not a file name string");
        std::string shard = it.value().get<std::string>();
        if (!is_plain_file_name(shard))
            return data_loss(label, ": weight_map entry for '", it.key(), "' names '", shard,
                             "', which is not a file in the model directory");
        out.emplace_back(it.key(), std::move(shard));
    }
    return out;
}

bool Checkpoint::exists_in(const fs::path& dir) { return fs::exists(dir / kIndex) || fs::exists(dir / kSingle); }

Expected<Checkpoint> Checkpoint::open(const fs::path& dir) {
    Checkpoint ck;
    const fs::path index_path = dir / kIndex;
    if (!fs::exists(index_path)) {
        const fs::path single = dir / kSingle;
        if (!fs::exists(single))
            return not_found(dir.string(), ": no ", kSingle, " or ", kIndex, " (not a model directory?)");
        VOLT_ASSIGN_OR_RETURN(SafetensorsFile f, SafetensorsFile::open(single));
        ck.files_.push_back(std::move(f));
        ck.description_ = single.string();
        for (const auto& e : ck.files_[0].tensors()) ck.entries_.emplace(e.name, Entry{&ck.files_[0], &e});
        return ck;
    }

    ck.description_ = index_path.string();
    const std::string label = index_path.string();
    VOLT_ASSIGN_OR_RETURN(std::string text, read_file(index_path));
    VOLT_ASSIGN_OR_RETURN(auto weight_map, parse_safetensors_index(text, label));

    // Shards in first-mention order; `files_` is reserved up front so Entry pointers stay valid.
    std::vector<std::string> shard_names;
    std::unordered_map<std::string, size_t> shard_of;
    for (const auto& [tensor, shard] : weight_map)
        if (shard_of.emplace(shard, shard_names.size()).second) shard_names.push_back(shard);
    ck.files_.reserve(shard_names.size());
    for (const std::string& s : shard_names) {
        const fs::path p = dir / s;
        if (!fs::exists(p)) return not_found(label, ": shard '", s, "' named in weight_map does not exist in ", dir.string());
        auto f = SafetensorsFile::open(p);
        if (!f) return f.status();
        ck.files_.push_back(std::move(f).value());
    }
    for (const auto& [tensor, shard] : weight_map) {
        const SafetensorsFile& f = ck.files_[shard_of.at(shard)];
        const SafetensorsEntry* e = f.find(tensor);
        if (!e) return data_loss(label, ": tensor '", tensor, "' is listed in shard '", shard,
                                 "' but that shard does not contain it");
        ck.entries_.emplace(tensor, Entry{&f, e});
    }
    // Tensors a shard holds but the index does not list are not loaded (the index is authoritative, as in
    // transformers); say so, since it usually means a stale index.
    size_t unlisted = 0;
    for (const auto& f : ck.files_)
        for (const auto& e : f.tensors())
            if (!ck.entries_.count(e.name)) ++unlisted;
    if (unlisted)
        VOLT_LOG(kWarn, kLoad, label, ": ", unlisted, " tensor(s) in the shards are not listed in weight_map and are ignored");
    return ck;
}

const Checkpoint::Entry* Checkpoint::find(const std::string& name) const {
    auto it = entries_.find(name);
    return it == entries_.end() ? nullptr : &it->second;
}

Expected<Tensor> Checkpoint::view(const std::string& name) const {
    const Entry* e = find(name);
    if (!e) return not_found(description_, ": no tensor '", name, "'");
    return e->file->view(*e->info);
}

std::vector<std::string> Checkpoint::names() const {
    std::vector<std::string> out;
    out.reserve(entries_.size());
    for (const auto& [k, v] : entries_) out.push_back(k);
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace volt
