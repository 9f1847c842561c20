// Weight upload from an mmapped safetensors file to the GPU (issue 12): the old path (per tensor a synchronous
// cudaMemcpy from the pageable mapping, after a host copy when the dtype differs or the tensor is a strided slice) against
// the pinned-staging CudaUploader (sdk/cuda_upload.h), with the copy ceilings of the same run (pinned and pageable
// H2D cudaMemcpy of 1 GiB). The tensor set is a real checkpoint: this program writes a MiniMax-Text-01 of the real
// geometry with --layers layers (1 lightning + 1 softmax for 2) and --experts experts, random bf16 (never zeros), into
// --dir, then times: the whole file with the page cache warm (old path, staged path with several buffer / thread
// settings), the tensor-parallel slices of rank 0 of 2 (strided columns included), an in-memory f32 -> bf16 set, the
// first --cold-gib GiB with the file's pages evicted (fsync + POSIX_FADV_DONTNEED; resident fraction printed), and
// MiniMaxTextModelCuda::load of the directory (what `volt` runs), warm and then cold. Every staged result is compared
// bitwise with the old path's. Prints a table; --json F writes one JSON object per line.
//
//   volt_upload_bench [--dir DIR] [--layers 2] [--experts 2] [--cold-gib 2] [--reps 3] [--json F] [--keep]
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <cuda_runtime.h>
#include <nlohmann/json.hpp>

#include "sdk/checkpoint.h"
#include "sdk/config.h"
#include "sdk/cuda_upload.h"
#include "sdk/thread_pool.h"
#include "text/cuda/minimax_text_model_cuda.h"
#include "text/minimax_text_weights.h"
#include "text/parallel_mapping.h"

namespace volt {
namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "upload_bench: %s\n", what.c_str());
    std::exit(1);
}
void check(const Status& s, const char* what) {
    if (!s.is_ok()) die(str_cat(what, ": ", s.to_string()));
}
#define CK(expr) check((expr), #expr)
#define CK_CUDA(expr)                                                                           \
    do {                                                                                        \
        cudaError_t e_ = (expr);                                                                \
        if (e_ != cudaSuccess) die(str_cat(#expr, ": ", cudaGetErrorString(e_)));               \
    } while (0)
template <typename T>
T ok(Expected<T> e, const char* what) {
    if (!e) die(str_cat(what, ": ", e.status().to_string()));
    return std::move(*e);
}

struct Args {
    std::filesystem::path dir = "/tmp/volt-upload-bench";
    int layers = 2, experts = 2, reps = 3;
    double cold_gib = 2;
    std::string json;
    bool keep = false;
};

double seconds(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }
double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

std::vector<nlohmann::json> results;
void report(const std::string& name, double bytes, double secs, nlohmann::json extra = {}) {
    const double gbs = bytes / secs / 1e9;
    std::printf("%-58s %8.2f GB  %8.3f s  %7.2f GB/s\n", name.c_str(), bytes / 1e9, secs, gbs);
    std::fflush(stdout);
    nlohmann::json j = {{"name", name}, {"bytes", bytes}, {"seconds", secs}, {"gbs", gbs}};
    if (extra.is_object()) j.update(extra);
    results.push_back(j);
}

uint64_t splitmix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}
// Random bf16 of magnitude 2^-7 .. 2^-3, either sign, every mantissa (never zero).
uint16_t random_bf16(uint64_t seed, uint64_t i) {
    const uint64_t r = splitmix(seed * 0x100000001b3ull + i);
    return static_cast<uint16_t>((r & 0x807f) | ((0x78 + ((r >> 7) & 3)) << 7));
}

// ---- the copy ceilings ----------------------------------------------------------------------------------------------
double h2d_gbs(bool pinned, size_t bytes, int reps) {
    void* host = nullptr;
    std::vector<uint16_t> pageable;
    if (pinned) {
        CK_CUDA(cudaHostAlloc(&host, bytes, cudaHostAllocPortable));
    } else {
        pageable.resize(bytes / 2);
        host = pageable.data();
    }
    auto* h = static_cast<uint16_t*>(host);
    ThreadPool::global().parallel_for(int64_t(bytes / 2), [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) h[i] = random_bf16(99, uint64_t(i));
    }, 1 << 20);
    void* dev = nullptr;
    CK_CUDA(cudaMalloc(&dev, bytes));
    CK_CUDA(cudaMemcpy(dev, host, bytes, cudaMemcpyHostToDevice));  // warm-up
    cudaEvent_t a, b;
    CK_CUDA(cudaEventCreate(&a));
    CK_CUDA(cudaEventCreate(&b));
    std::vector<double> t;
    for (int r = 0; r < reps; ++r) {
        CK_CUDA(cudaEventRecord(a));
        CK_CUDA(cudaMemcpy(dev, host, bytes, cudaMemcpyHostToDevice));
        CK_CUDA(cudaEventRecord(b));
        CK_CUDA(cudaEventSynchronize(b));
        float ms = 0;
        CK_CUDA(cudaEventElapsedTime(&ms, a, b));
        t.push_back(ms * 1e-3);
    }
    CK_CUDA(cudaEventDestroy(a));
    CK_CUDA(cudaEventDestroy(b));
    CK_CUDA(cudaFree(dev));
    if (pinned) CK_CUDA(cudaFreeHost(host));
    const double s = median(t);
    report(pinned ? "ceiling: pinned H2D cudaMemcpy 1 GiB" : "ceiling: pageable (anonymous) H2D cudaMemcpy 1 GiB",
           double(bytes), s);
    return double(bytes) / s / 1e9;
}

// ---- the checkpoint -------------------------------------------------------------------------------------------------
// MiniMax-Text-01's config.json values (MiniMaxAI/MiniMax-Text-01) with fewer layers and experts.
std::string config_json(int layers, int experts) {
    nlohmann::json attn = nlohmann::json::array();
    for (int l = 0; l < layers; ++l) attn.push_back(l == layers - 1 || (l + 1) % 8 == 0 ? 1 : 0);
    nlohmann::json j = nlohmann::json::parse(R"({
        "architectures": ["MiniMaxText01ForCausalLM"], "model_type": "minimax_text_01", "vocab_size": 200064,
        "hidden_size": 6144, "num_attention_heads": 64, "num_key_value_heads": 8, "head_dim": 128, "rotary_dim": 64,
        "rope_theta": 10000000, "intermediate_size": 9216, "num_experts_per_tok": 2, "shared_intermediate_size": 0,
        "layernorm_full_attention_alpha": 3.5565588200778455, "layernorm_full_attention_beta": 1.0,
        "layernorm_linear_attention_alpha": 3.5565588200778455, "layernorm_linear_attention_beta": 1.0,
        "layernorm_mlp_alpha": 3.5565588200778455, "layernorm_mlp_beta": 1.0, "postnorm": true, "rms_norm_eps": 1e-05,
        "hidden_act": "silu", "max_position_embeddings": 10240000, "block_size": 256, "tie_word_embeddings": false,
        "torch_dtype": "bfloat16"})");
    if (std::getenv("UPLOAD_BENCH_TINY")) {  // a smoke test of this program on a small geometry
        j["vocab_size"] = 1024, j["hidden_size"] = 256, j["num_attention_heads"] = 4, j["num_key_value_heads"] = 2;
        j["intermediate_size"] = 384;
    }
    j["num_hidden_layers"] = layers;
    j["num_local_experts"] = experts;
    j["attn_type_list"] = attn;
    return j.dump(1);
}

// Writes config.json and model.safetensors (every tensor of the spec, bf16, in spec order); returns the bytes.
uint64_t write_checkpoint(const Args& a, TextConfig& config) {
    std::filesystem::create_directories(a.dir);
    const std::string cj = config_json(a.layers, a.experts);
    std::ofstream(a.dir / "config.json") << cj;
    config = ok(parse_model_config_text(cj, "config.json"), "config").text;
    const auto specs = minimax_text_weight_specs(config);
    nlohmann::ordered_json header;
    uint64_t offset = 0;
    for (const WeightSpec& s : specs) {
        const uint64_t bytes = uint64_t(s.shape.numel()) * 2;
        header[s.name] = {{"dtype", "BF16"}, {"shape", std::vector<int64_t>(s.shape.begin(), s.shape.end())},
                          {"data_offsets", {offset, offset + bytes}}};
        offset += bytes;
    }
    std::string h = header.dump();
    h.resize((h.size() + 7) / 8 * 8, ' ');
    const auto t0 = Clock::now();
    FILE* f = std::fopen((a.dir / "model.safetensors").c_str(), "wb");
    if (!f) die("cannot create " + (a.dir / "model.safetensors").string());
    const uint64_t hn = h.size();
    std::fwrite(&hn, 8, 1, f);
    std::fwrite(h.data(), 1, h.size(), f);
    std::vector<uint16_t> block(size_t{32} << 20);
    uint64_t seed = 0;
    for (const WeightSpec& s : specs) {
        ++seed;
        for (int64_t begin = 0; begin < s.shape.numel(); begin += int64_t(block.size())) {
            const int64_t n = std::min<int64_t>(int64_t(block.size()), s.shape.numel() - begin);
            ThreadPool::global().parallel_for(n, [&](int64_t b, int64_t e) {
                for (int64_t i = b; i < e; ++i) block[size_t(i)] = random_bf16(seed, uint64_t(begin + i));
            }, 1 << 18);
            if (std::fwrite(block.data(), 2, size_t(n), f) != size_t(n)) die("short write (disk full?)");
        }
    }
    if (std::fclose(f) != 0) die("close failed");
    report("write model.safetensors (page cache)", double(offset), seconds(t0));
    return offset;
}

// Flushes the file and drops its pages from the page cache (nothing may map it); the resident fraction after.
double evict(const std::filesystem::path& file) {
    const int fd = ::open(file.c_str(), O_RDONLY);
    if (fd < 0) die("open " + file.string());
    const auto t0 = Clock::now();
    if (::fsync(fd) != 0) die("fsync " + file.string());
    const double sync_s = seconds(t0);
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    const size_t size = std::filesystem::file_size(file);
    void* p = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) die("mmap");
    const size_t page = size_t(sysconf(_SC_PAGESIZE)), pages = (size + page - 1) / page;
    std::vector<unsigned char> v(pages);
    size_t resident = 0;
    if (::mincore(p, size, v.data()) == 0)
        for (unsigned char c : v) resident += c & 1;
    ::munmap(p, size);
    ::close(fd);
    std::printf("  evicted %s (fsync %.2f s): %.1f%% resident\n", file.c_str(), sync_s, 100.0 * double(resident) / double(pages));
    return double(resident) / double(pages);
}

struct Item {
    std::string name;
    Tensor host;  // a view of the mapping (or a slice of it, or memory)
    DType dtype = DType::kBF16;
};

// The old `upload` of text/cuda/minimax_text_model_cuda.cpp and vision/cuda: host copy when needed, then a
// synchronous cudaMemcpy.
Expected<Tensor> old_upload(const Tensor& host, DType dtype) {
    Tensor t = host;
    if (t.dtype() != dtype || !t.is_contiguous()) {
        VOLT_ASSIGN_OR_RETURN(t, t.to(dtype));
    }
    return t.to(Device::cuda(0));
}

// One pass over `items` by the old path (opt == nullptr) or staged; the seconds and, in `out`, the device tensors.
double pass(const std::vector<Item>& items, const CudaUploadOptions* opt, std::vector<Tensor>* out = nullptr) {
    std::vector<Tensor> got;
    got.reserve(items.size());
    CK_CUDA(cudaDeviceSynchronize());
    const auto t0 = Clock::now();
    if (opt) {
        CudaUploader up(*opt);
        for (const Item& it : items) got.push_back(ok(up.upload(it.host, it.dtype, 0, it.name), it.name.c_str()));
        CK(up.finish());
    } else {
        for (const Item& it : items) got.push_back(ok(old_upload(it.host, it.dtype), it.name.c_str()));
        CK_CUDA(cudaDeviceSynchronize());
    }
    const double s = seconds(t0);
    if (out) *out = std::move(got);
    return s;
}

double device_bytes(const std::vector<Item>& items) {
    double b = 0;
    for (const Item& it : items) b += double(it.host.numel()) * double(dtype_size(it.dtype));
    return b;
}

// Bitwise: every tensor of `a` equals the one of `b`.
void expect_equal(const std::vector<Tensor>& a, const std::vector<Tensor>& b, const std::string& what) {
    if (a.size() != b.size()) die(what + ": tensor counts differ");
    for (size_t i = 0; i < a.size(); ++i) {
        Tensor x = ok(a[i].to(Device::cpu()), "download"), y = ok(b[i].to(Device::cpu()), "download");
        if (x.nbytes() != y.nbytes() || std::memcmp(x.data(), y.data(), x.nbytes()) != 0)
            die(str_cat(what, ": tensor ", i, " differs between the old and the staged path"));
    }
    std::printf("  %s: staged == old path, bitwise (%zu tensors)\n", what.c_str(), a.size());
}

const CudaUploadOptions kDefault{};

void time_both(const std::string& what, const std::vector<Item>& items, int reps, const CudaUploadOptions& opt,
               bool verify) {
    const double bytes = device_bytes(items);
    std::vector<double> o, s;
    std::vector<Tensor> old_out, staged_out;
    for (int r = 0; r < reps; ++r) o.push_back(pass(items, nullptr, verify && r == 0 ? &old_out : nullptr));
    for (int r = 0; r < reps; ++r) s.push_back(pass(items, &opt, verify && r == 0 ? &staged_out : nullptr));
    if (verify) expect_equal(old_out, staged_out, what);
    report(what + ": old path", bytes, median(o), {{"reps", reps}});
    report(what + ": staged", bytes, median(s), {{"reps", reps}});
}

}  // namespace
}  // namespace volt

int main(int argc, char** argv) {
    using namespace volt;
    Args a;
    for (int i = 1; i < argc; ++i) {
        const std::string k = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) die("missing value for " + k);
            return argv[++i];
        };
        if (k == "--dir") a.dir = next();
        else if (k == "--layers") a.layers = std::stoi(next());
        else if (k == "--experts") a.experts = std::stoi(next());
        else if (k == "--cold-gib") a.cold_gib = std::stod(next());
        else if (k == "--reps") a.reps = std::stoi(next());
        else if (k == "--json") a.json = next();
        else if (k == "--keep") a.keep = true;
        else die("unknown argument " + k);
    }
    if (a.layers < 1 || a.experts < 2 || a.reps < 1) die("--layers >= 1, --experts >= 2, --reps >= 1");
    cudaDeviceProp prop{};
    CK_CUDA(cudaGetDeviceProperties(&prop, 0));
    std::printf("device: %s, %d threads in the global pool\n", prop.name, ThreadPool::global().num_threads());

    h2d_gbs(true, size_t{1} << 30, 5);
    h2d_gbs(false, size_t{1} << 30, 3);

    TextConfig config;
    const uint64_t file_bytes = write_checkpoint(a, config);
    const auto file = a.dir / "model.safetensors";

    // Warm: the whole file (every tensor as the checkpoint has it), old path and staged variants.
    {
        Checkpoint ck = ok(Checkpoint::open(a.dir), "open");
        std::vector<Item> all;
        for (const std::string& n : ck.names()) all.push_back({n, ok(ck.view(n), "view")});
        (void)pass(all, &kDefault);  // touches every page once (the page cache holds the file since it was written)
        time_both("warm, whole file", all, a.reps, kDefault, /*verify=*/true);
        const CudaUploadOptions variants[] = {{size_t{32} << 20, 2, 1},  {size_t{32} << 20, 2, 2},
                                              {size_t{32} << 20, 2, 4},  {size_t{8} << 20, 2, 4},
                                              {size_t{8} << 20, 2, 8},   {size_t{16} << 20, 2, 8},
                                              {size_t{64} << 20, 2, 8},  {size_t{32} << 20, 3, 8},
                                              {size_t{32} << 20, 2, 16}};
        for (const CudaUploadOptions& v : variants) {
            std::vector<double> s;
            for (int r = 0; r < a.reps; ++r) s.push_back(pass(all, &v));
            report(str_cat("warm, whole file: staged ", v.buffer_bytes >> 20, " MiB x ", v.buffers, ", ",
                           v.pack_threads, " threads"),
                   device_bytes(all), median(s),
                   {{"buffer_mib", v.buffer_bytes >> 20}, {"buffers", v.buffers}, {"threads", v.pack_threads}});
        }
        // Rank 0 of a 2-way tensor-parallel split: heads, vocabulary rows, out_proj / o_proj columns (strided).
        const ParallelMapping tp{.tp_size = 2, .ep_size = 1, .rank = 0};
        std::vector<Item> sliced, strided;
        for (const Item& it : all) {
            const WeightSlice sl = tp.slice_of(it.name, config);
            if (sl.absent) continue;
            Item s{it.name, sl.dim < 0 ? it.host : ok(it.host.slice(sl.dim, sl.range.begin, sl.range.end()), "slice")};
            if (!s.host.is_contiguous()) strided.push_back(s);
            sliced.push_back(std::move(s));
        }
        time_both("warm, tp rank 0 of 2 (all slices)", sliced, 1, kDefault, true);
        time_both("warm, tp rank 0 of 2 (strided column slices only)", strided, a.reps, kDefault, true);
        // f32 in memory -> bf16 (from_tensors with an f32 state dict, the ViT's f32 checkpoints).
        Tensor f32 = ok(Tensor::empty({16384, 6144}, DType::kF32), "f32");
        ThreadPool::global().parallel_for(f32.numel(), [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; ++i) f32.data_as<float>()[i] = bf16_to_f32(random_bf16(5, uint64_t(i))) * 1.001f;
        }, 1 << 20);
        time_both("memory f32 -> bf16 (16384 x 6144)", {{"f32", f32, DType::kBF16}}, a.reps, kDefault, true);
    }

    // The model load `volt` runs (MiniMaxTextModelCuda::load, staged): warm here, while the page cache holds the file
    // (the cold section below evicts it); cold after that section.
    auto load_model = [&](bool cold, double cold_gbs) {
        if (cold && (cold_gbs <= 0 || double(file_bytes) / 1e9 / cold_gbs > 20)) return;  // > 20 s of disk: skipped
        const double resident = cold ? evict(file) : 1.0;
        const auto t0 = Clock::now();
        auto m = MiniMaxTextModelCuda::load(a.dir);
        if (!m) die("load: " + m.status().to_string());
        CK_CUDA(cudaDeviceSynchronize());
        const double s = seconds(t0);
        m->reset();
        report(str_cat("MiniMaxTextModelCuda::load (", a.layers, " layers, ", a.experts, " experts), ",
                       cold ? "cold" : "warm"),
               double(file_bytes), s, {{"resident_before", resident}});
    };
    load_model(false, 0);

    // Cold: the first --cold-gib GiB of tensors with the file's pages evicted before each pass.
    double cold_gbs = 0;
    if (a.cold_gib > 0) {
        std::vector<std::string> names;
        {
            Checkpoint ck = ok(Checkpoint::open(a.dir), "open");
            double b = 0;
            for (const std::string& n : ck.names()) {
                if (b >= a.cold_gib * (1 << 30)) break;
                names.push_back(n);
                b += double(ok(ck.view(n), "view").nbytes());
            }
        }
        for (const CudaUploadOptions* opt : {static_cast<const CudaUploadOptions*>(nullptr), &kDefault}) {
            const double resident = evict(file);
            Checkpoint ck = ok(Checkpoint::open(a.dir), "open");
            std::vector<Item> items;
            for (const std::string& n : names) items.push_back({n, ok(ck.view(n), "view")});
            const double s = pass(items, opt);
            report(str_cat("cold, first ", a.cold_gib, " GiB: ", opt ? "staged" : "old path"), device_bytes(items), s,
                   {{"resident_before", resident}});
            if (opt) cold_gbs = device_bytes(items) / s / 1e9;
        }
    }

    load_model(true, cold_gbs);

    if (!a.json.empty()) {
        std::ofstream out(a.json);
        for (const auto& j : results) out << j.dump() << "\n";
    }
    if (!a.keep) std::filesystem::remove_all(a.dir);
    return 0;
}
