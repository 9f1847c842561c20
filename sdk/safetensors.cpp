#include "sdk/safetensors.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <unordered_set>

#include <nlohmann/json.hpp>

namespace volt {
namespace {

using json = nlohmann::json;

uint64_t read_le64(const std::byte* p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
    return v;
}

// Parses JSON and reports a key that appears twice in the top-level object (nlohmann would keep the last one
// silently, and a loader could then read the wrong bytes).
Expected<json> parse_json_no_duplicate_keys(std::string_view text, const std::string& label, const char* what) {
    std::string duplicate;
    std::vector<std::unordered_set<std::string>> keys_at_depth;
    json::parser_callback_t cb = [&](int depth, json::parse_event_t event, json& parsed) {
        if (event == json::parse_event_t::object_start) {
            if (static_cast<int>(keys_at_depth.size()) <= depth) keys_at_depth.resize(depth + 1);
            keys_at_depth[depth].clear();
        } else if (event == json::parse_event_t::key && depth <= 2) {
            auto& seen = keys_at_depth[depth - 1];
            if (!seen.insert(parsed.get<std::string>()).second && duplicate.empty())
                duplicate = parsed.get<std::string>();
        }
        return true;
    };
    json j;
    try {
        j = json::parse(text.begin(), text.end(), cb);
    } catch (const json::exception& e) {
        return data_loss(label, ": ", what, " is not valid JSON (", e.what(), ")");
    }
    if (!duplicate.empty()) return data_loss(label, ": ", what, " names '", duplicate, "' twice");
    return j;
}

Status bad(const std::string& label, const std::string& tensor, const std::string& problem) {
    return data_loss(label, ": tensor '", tensor, "': ", problem);
}

}  // namespace

Expected<SafetensorsHeader> parse_safetensors_header(std::span<const std::byte> file, const std::string& label) {
    if (file.size() < 8)
        return data_loss(label, ": file is ", file.size(), " bytes, too short for the 8-byte header length");
    uint64_t n = read_le64(file.data());
    if (n > kSafetensorsMaxHeaderBytes)
        return data_loss(label, ": header length ", n, " exceeds the limit of ", kSafetensorsMaxHeaderBytes, " bytes");
    if (n > file.size() - 8)
        return data_loss(label, ": header length ", n, " runs past the end of the file (", file.size(), " bytes)");
    std::string_view text(reinterpret_cast<const char*>(file.data() + 8), n);
    if (text.empty() || text.front() != '{') return data_loss(label, ": header does not start with '{'");

    VOLT_ASSIGN_OR_RETURN(json j, parse_json_no_duplicate_keys(text, label, "header"));
    if (!j.is_object()) return data_loss(label, ": header is not a JSON object");

    SafetensorsHeader h;
    h.data_offset = 8 + n;
    const uint64_t data_size = file.size() - h.data_offset;
    for (auto it = j.begin(); it != j.end(); ++it) {
        const std::string& name = it.key();
        const json& v = it.value();
        if (name == "__metadata__") {
            if (!v.is_object()) return data_loss(label, ": __metadata__ is not an object of strings");
            for (auto m = v.begin(); m != v.end(); ++m) {
                if (!m.value().is_string())
                    return data_loss(label, ": __metadata__ value for '", m.key(), "' is not a string");
                h.metadata[m.key()] = m.value().get<std::string>();
            }
            continue;
        }
        if (!v.is_object()) return bad(label, name, "entry is not an object with dtype, shape and data_offsets");
        SafetensorsEntry e;
        e.name = name;

        auto dt = v.find("dtype");
        if (dt == v.end() || !dt->is_string()) return bad(label, name, "missing string field 'dtype'");
        auto parsed = dtype_from_name(dt->get<std::string>());
        if (!parsed) return bad(label, name, str_cat("unknown dtype '", dt->get<std::string>(), "'"));
        e.dtype = *parsed;

        auto sh = v.find("shape");
        if (sh == v.end() || !sh->is_array()) return bad(label, name, "missing array field 'shape'");
        if (sh->size() > static_cast<size_t>(Shape::kMaxDims))
            return bad(label, name, str_cat("shape has ", sh->size(), " dims; at most ", Shape::kMaxDims, " supported"));
        uint64_t numel = 1;
        for (const json& d : *sh) {
            if (!d.is_number_unsigned()) return bad(label, name, str_cat("shape entry ", d.dump(), " is not a non-negative integer"));
            uint64_t dim = d.get<uint64_t>();
            if (dim > static_cast<uint64_t>(INT64_MAX) || __builtin_mul_overflow(numel, dim, &numel))
                return bad(label, name, "shape is too large (element count overflows)");
            e.shape.push_back(static_cast<int64_t>(dim));
        }
        uint64_t nbytes = 0;
        if (__builtin_mul_overflow(numel, static_cast<uint64_t>(dtype_size(e.dtype)), &nbytes))
            return bad(label, name, "shape is too large (byte count overflows)");

        auto off = v.find("data_offsets");
        if (off == v.end() || !off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() ||
            !(*off)[1].is_number_unsigned())
            return bad(label, name, "'data_offsets' must be [begin, end] with non-negative integers");
        e.begin = (*off)[0].get<uint64_t>();
        e.end = (*off)[1].get<uint64_t>();
        if (e.end < e.begin) return bad(label, name, str_cat("data_offsets [", e.begin, ", ", e.end, "] end before begin"));
        if (e.end - e.begin != nbytes)
            return bad(label, name, str_cat("shape ", e.shape.to_string(), " of ", dtype_name(e.dtype), " needs ", nbytes,
                                            " bytes but data_offsets [", e.begin, ", ", e.end, "] cover ", e.end - e.begin));
        if (e.end > data_size)
            return bad(label, name, str_cat("data_offsets [", e.begin, ", ", e.end, "] run past the data section (",
                                            data_size, " bytes; file truncated?)"));
        h.tensors.push_back(std::move(e));
    }

    // The tensors must tile the data section exactly: no overlaps (two names for the same bytes), no gaps,
    // no trailing bytes — the same rule as the reference implementation.
    std::sort(h.tensors.begin(), h.tensors.end(), [](const SafetensorsEntry& a, const SafetensorsEntry& b) {
        return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
    uint64_t covered = 0;
    const SafetensorsEntry* prev = nullptr;
    for (const auto& e : h.tensors) {
        if (e.begin < covered)
            return data_loss(label, ": tensors '", prev->name, "' and '", e.name, "' overlap in the data section");
        if (e.begin > covered)
            return data_loss(label, ": data bytes [", covered, ", ", e.begin, ") before tensor '", e.name,
                             "' belong to no tensor");
        covered = e.end;
        prev = &e;
    }
    if (covered != data_size)
        return data_loss(label, ": data section has ", data_size, " bytes but the tensors cover ", covered);
    return h;
}

Expected<SafetensorsFile> SafetensorsFile::open(const std::filesystem::path& path) {
    VOLT_ASSIGN_OR_RETURN(auto mapping, MappedFile::open(path));
    return from_mapping(std::move(mapping));
}

Expected<SafetensorsFile> SafetensorsFile::from_mapping(std::shared_ptr<MappedFile> file) {
    SafetensorsFile f;
    VOLT_ASSIGN_OR_RETURN(f.header_, parse_safetensors_header(file->bytes(), file->path()));
    f.file_ = std::move(file);
    for (size_t i = 0; i < f.header_.tensors.size(); ++i) f.index_.emplace(f.header_.tensors[i].name, i);
    return f;
}

const SafetensorsEntry* SafetensorsFile::find(const std::string& name) const {
    auto it = index_.find(name);
    return it == index_.end() ? nullptr : &header_.tensors[it->second];
}

Tensor SafetensorsFile::view(const SafetensorsEntry& e) const {
    void* p = const_cast<std::byte*>(file_->data() + header_.data_offset + e.begin);
    return Tensor::borrow(p, e.shape, e.dtype, Device::cpu(), file_);
}

Status write_safetensors(const std::filesystem::path& path, const std::vector<NamedTensor>& tensors,
                         const std::map<std::string, std::string>& metadata) {
    std::vector<const NamedTensor*> order;
    for (const auto& t : tensors) {
        if (!t.tensor.device().is_cpu()) return invalid_argument("write_safetensors: tensor '", t.name, "' is not on the CPU");
        order.push_back(&t);
    }
    std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->name < b->name; });
    json header = json::object();
    if (!metadata.empty()) header["__metadata__"] = metadata;
    uint64_t offset = 0;
    for (const NamedTensor* t : order) {
        if (header.contains(t->name)) return invalid_argument("write_safetensors: tensor '", t->name, "' given twice");
        json shape = json::array();
        for (int64_t d : t->tensor.shape()) shape.push_back(d);
        uint64_t nbytes = t->tensor.nbytes();
        header[t->name] = {{"dtype", dtype_name(t->tensor.dtype())}, {"shape", shape}, {"data_offsets", {offset, offset + nbytes}}};
        offset += nbytes;
    }
    std::string text = header.dump();
    text.append((8 - text.size() % 8) % 8, ' ');
    std::filesystem::path tmp = path;
    tmp += ".tmp";
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return invalid_argument(path.string(), ": cannot open for writing");
    uint64_t n = text.size();
    char len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<char>((n >> (8 * i)) & 0xff);
    out.write(len, 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const NamedTensor* t : order) {
        VOLT_ASSIGN_OR_RETURN(Tensor c, t->tensor.contiguous());
        out.write(static_cast<const char*>(c.data()), static_cast<std::streamsize>(c.nbytes()));
    }
    out.close();
    if (!out) return resource_exhausted(path.string(), ": write failed (disk full?)");
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);  // atomic replace: a crash never leaves a half-written checkpoint
    if (ec) return invalid_argument(path.string(), ": cannot rename from ", tmp.string(), ": ", ec.message());
    return Status::ok();
}

}  // namespace volt
