#include "sdk/npy.h"

#include "sdk/file_io.h"

#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>

namespace volt {
namespace {

const char* npy_descr(DType t) {
    switch (t) {
        case DType::kF64: return "<f8";
        case DType::kF32: return "<f4";
        case DType::kF16: return "<f2";
        case DType::kI64: return "<i8";
        case DType::kI32: return "<i4";
        case DType::kI16: return "<i2";
        case DType::kI8: return "|i1";
        case DType::kU8: return "|u1";
        case DType::kBool: return "|b1";
        default: return nullptr;  // bf16/fp8 have no numpy dtype
    }
}

}  // namespace

Status write_npy(const std::filesystem::path& path, const Tensor& tensor) {
    if (!tensor.device().is_cpu()) return invalid_argument("write_npy: ", path.string(), ": tensor is not on the CPU");
    Tensor t = tensor;
    if (!npy_descr(t.dtype())) {  // store bf16/fp8 as float32: readers expect a numpy dtype
        VOLT_ASSIGN_OR_RETURN(t, tensor.to(DType::kF32));
    }
    VOLT_ASSIGN_OR_RETURN(t, t.contiguous());
    std::string shape = "(";
    for (int i = 0; i < t.rank(); ++i) shape += std::to_string(t.dim(i)) + (t.rank() == 1 ? "," : i + 1 < t.rank() ? ", " : "");
    shape += ")";
    std::string header = str_cat("{'descr': '", npy_descr(t.dtype()), "', 'fortran_order': False, 'shape': ", shape, ", }");
    size_t total = 10 + header.size() + 1;
    header.append((64 - total % 64) % 64, ' ');  // align the data to 64 bytes, as numpy does
    header.push_back('\n');
    if (header.size() > 65535) return invalid_argument("write_npy: header too long");
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (!out) return invalid_argument(path.string(), ": cannot open for writing");
    const char magic[8] = {'\x93', 'N', 'U', 'M', 'P', 'Y', 1, 0};
    out.write(magic, 8);
    uint16_t len = static_cast<uint16_t>(header.size());
    char lenb[2] = {static_cast<char>(len & 0xff), static_cast<char>(len >> 8)};
    out.write(lenb, 2);
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    out.write(static_cast<const char*>(t.data()), static_cast<std::streamsize>(t.nbytes()));
    out.close();
    if (!out) return resource_exhausted(path.string(), ": write failed (disk full?)");
    return Status::ok();
}

Expected<Tensor> read_npy(const std::filesystem::path& path) {
    const std::string label = path.string();
    VOLT_ASSIGN_OR_RETURN(const std::string data, read_file(path));
    if (data.size() < 10 || std::memcmp(data.data(), "\x93NUMPY", 6) != 0) return data_loss(label, ": not a .npy file");
    const int major = static_cast<uint8_t>(data[6]);
    size_t header_len, offset;
    if (major == 1) {
        header_len = static_cast<uint8_t>(data[8]) | static_cast<uint8_t>(data[9]) << 8;
        offset = 10;
    } else if (major == 2 || major == 3) {
        if (data.size() < 12) return data_loss(label, ": truncated header");
        header_len = 0;
        for (int i = 3; i >= 0; --i) header_len = header_len << 8 | static_cast<uint8_t>(data[8 + i]);
        offset = 12;
    } else {
        return data_loss(label, ": unsupported .npy version ", major);
    }
    if (offset + header_len > data.size()) return data_loss(label, ": header runs past the end of the file");
    const std::string header = data.substr(offset, header_len);
    std::smatch m;
    if (!std::regex_search(header, m, std::regex(R"('descr'\s*:\s*'([<>|=])([a-z])(\d+)')")))
        return data_loss(label, ": header has no 'descr'");
    if (m[1] == ">") return unimplemented(label, ": big-endian arrays are not supported");
    const std::string kind = m[2], bytes = m[3];
    DType dt;
    if (kind == "f" && bytes == "4") dt = DType::kF32;
    else if (kind == "f" && bytes == "8") dt = DType::kF64;
    else if (kind == "f" && bytes == "2") dt = DType::kF16;
    else if (kind == "i" && bytes == "4") dt = DType::kI32;
    else if (kind == "i" && bytes == "8") dt = DType::kI64;
    else if (kind == "i" && bytes == "2") dt = DType::kI16;
    else if (kind == "i" && bytes == "1") dt = DType::kI8;
    else if (kind == "u" && bytes == "1") dt = DType::kU8;
    else if (kind == "b" && bytes == "1") dt = DType::kBool;
    else return unimplemented(label, ": numpy dtype ", kind, bytes, " is not supported");
    if (std::regex_search(header, std::regex(R"('fortran_order'\s*:\s*True)")))
        return unimplemented(label, ": Fortran-order arrays are not supported");
    if (!std::regex_search(header, m, std::regex(R"('shape'\s*:\s*\(([^)]*)\))"))) return data_loss(label, ": header has no 'shape'");
    Shape shape;
    std::stringstream ss(m[1].str());
    std::string item;
    while (std::getline(ss, item, ',')) {
        if (item.find_first_not_of(" ") == std::string::npos) continue;
        try {
            long long d = std::stoll(item);
            if (d < 0) return data_loss(label, ": negative dimension in shape");
            shape.push_back(d);
        } catch (...) {
            return data_loss(label, ": malformed shape '", m[1].str(), "'");
        }
    }
    VOLT_ASSIGN_OR_RETURN(Tensor t, Tensor::empty(shape, dt));
    const size_t start = offset + header_len;
    if (data.size() - start != t.nbytes())
        return data_loss(label, ": data is ", data.size() - start, " bytes but shape ", shape.to_string(), " needs ", t.nbytes());
    std::memcpy(t.data(), data.data() + start, t.nbytes());
    return t;
}

}  // namespace volt
