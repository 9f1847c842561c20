// The backbone split over 2 GPUs (text/parallel_mapping.h: heads, projections and vocabulary over both, experts
// spread, replicated or sliced along their intermediate dimension; NCCL all-reduces) against the same model on one
// GPU and on the CPU. Needs 2 GPUs (the nvidia-h200-x2 machine); skips with a message otherwise. Tolerances as in
// test_text_model_gpu.cpp: the split changes only the order of bf16 sums (partial output projections and expert
// outputs added by the all-reduce).
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <memory>

#include "sdk/cuda_memory.h"
#include "sdk/engine/chat_session.h"
#include "sdk/engine/session.h"
#include "sdk/npy.h"
#include "tests/gpu/model/model_test_util.h"
#include "tests/integration/cli_runner.h"
#include "text/cuda/comm_overlap.h"
#include "text/cuda/minimax_text_model_cuda.h"
#include "text/minimax_text_model.h"

namespace volt {
namespace {

using namespace gpu_model_test;

// How a split model's prompt piece is cut for the overlapped sums (no GPU needed): one chunk below kMinRows, else 2-4
// chunks of >= kMinChunkRows rows that tile the piece, every chunk but the last a multiple of 64 rows.
TEST(CommOverlapChunks, TileThePieceInAlignedChunks) {
    for (int64_t rows : {1, 64, 2047, 2048, 2049, 3001, 4096, 4097, 4500, 8191, 8192, 65536, 65537, 1000003}) {
        SCOPED_TRACE(rows);
        const RowChunks ch = CommOverlap::chunks(rows);
        EXPECT_EQ(ch.rows, rows);
        if (rows < CommOverlap::kMinRows) {
            EXPECT_EQ(ch.count, 1);
            EXPECT_EQ(ch.length(0), rows);
            continue;
        }
        EXPECT_GE(ch.count, 2);
        EXPECT_LE(ch.count, CommOverlap::kMaxChunks);
        int64_t next = 0;
        for (int c = 0; c < ch.count; ++c) {
            EXPECT_EQ(ch.begin(c), next);
            EXPECT_GE(ch.length(c), 1);
            if (c + 1 < ch.count) {
                EXPECT_EQ(ch.length(c) % 64, 0);
                EXPECT_GE(ch.length(c), CommOverlap::kMinChunkRows);
            }
            next += ch.length(c);
        }
        EXPECT_EQ(next, rows);
    }
}

class TextModelMultiGpu : public ::testing::Test {
protected:
    void SetUp() override {
        if (cuda_device_count() < 2)
            GTEST_SKIP() << cuda_device_count() << " CUDA GPU(s) here: the split backbone needs 2 (nvidia-h200-x2)";
    }
};

struct Trio {
    std::unique_ptr<MiniMaxTextModel> cpu;
    std::unique_ptr<MiniMaxTextModelCuda> one, two;  // one GPU; split over two
};

CudaTextModelOptions split_options(int gpus, ExpertPlacement e) { return {.device = 0, .gpus = gpus, .experts = e}; }

Trio make_trio(const TextConfig& c, ExpertPlacement experts) {
    const auto w = synthetic_weights(c, 42);
    Trio t;
    auto cpu = MiniMaxTextModel::from_tensors(c, w, "synthetic");
    auto one = MiniMaxTextModelCuda::from_tensors(c, w);
    auto two = MiniMaxTextModelCuda::from_tensors(c, w, split_options(2, experts));
    EXPECT_TRUE(cpu) << cpu.status().to_string();
    EXPECT_TRUE(one) << one.status().to_string();
    EXPECT_TRUE(two) << two.status().to_string();
    if (cpu) t.cpu = std::move(cpu).value();
    if (one) t.one = std::move(one).value();
    if (two) t.two = std::move(two).value();
    return t;
}

Expected<Tensor> prefill(const CausalLM& m, std::span<const int32_t> ids, LogitsMode mode = LogitsMode::kAll) {
    VOLT_ASSIGN_OR_RETURN(SequenceCache cache, m.new_cache(static_cast<int64_t>(ids.size())));
    return m.forward(ids, cache, mode);
}

// A split model's variant: post- or pre-norm, experts per token, where the experts live.
struct Variant {
    bool postnorm;
    int k;
    ExpertPlacement experts;
    const char* name;
};

TEST_F(TextModelMultiGpu, SplitPrefillMatchesOneGpuAndTheCpu) {
    for (const Variant v : {Variant{true, 4, ExpertPlacement::kSpread, "post-norm, all experts, experts spread"},
                            Variant{false, 4, ExpertPlacement::kReplicated, "pre-norm, all experts, experts replicated"},
                            Variant{true, 2, ExpertPlacement::kSpread, "post-norm, top-2, experts spread"},
                            Variant{true, 4, ExpertPlacement::kSliced, "post-norm, all experts, experts sliced"},
                            Variant{false, 2, ExpertPlacement::kSliced, "pre-norm, top-2, experts sliced"}}) {
        SCOPED_TRACE(v.name);
        const TextConfig c = synthetic_config(v.postnorm, v.k);
        Trio m = make_trio(c, v.experts);
        ASSERT_TRUE(m.cpu && m.one && m.two);
        EXPECT_EQ(m.two->gpus(), 2);
        for (int64_t T : {1, 127, 600}) {
            const auto ids = random_ids(T, c.vocab_size, 1 + uint32_t(T));
            auto ref = prefill(*m.cpu, ids);
            auto one = prefill(*m.one, ids);
            auto two = prefill(*m.two, ids);
            ASSERT_TRUE(ref && one && two) << (two ? (one ? ref.status() : one.status()) : two.status()).to_string();
            const std::string what = std::string(v.name) + ", prefill T=" + std::to_string(T);
            expect_close(*two, *one, (what + ", 2 GPUs vs 1").c_str(), v.k < 4);
            expect_close(*two, *ref, (what + ", 2 GPUs vs cpu").c_str(), v.k < 4);
        }
    }
}

TEST_F(TextModelMultiGpu, DecodePrefixReuseForkAndLongPrefill) {
    const TextConfig c = synthetic_config(true, 4);  // continuous routing: every row must match
    Trio m = make_trio(c, ExpertPlacement::kSpread);
    ASSERT_TRUE(m.cpu && m.two);
    expect_prefix_reuse_decode_and_fork(*m.cpu, *m.two, c.vocab_size, "2 GPUs: ");
    if (HasFatalFailure()) return;

    const auto long_ids = random_ids(4097, c.vocab_size, 5);
    auto lref = prefill(*m.cpu, long_ids, LogitsMode::kLast);
    auto lgot = prefill(*m.two, long_ids, LogitsMode::kLast);
    ASSERT_TRUE(lref && lgot) << (lgot ? lref.status() : lgot.status()).to_string();
    expect_close(*lgot, *lref, "2 GPUs: prefill T=4097, last row", false);
}

// Long pieces on 2 GPUs sum their partial rows in chunks on a second stream while computing
// (CudaTextModelOptions::comm_overlap): the output projection's rows as they are made, the MoE's while the next layer
// consumes the chunks already summed. Logits within the split's tolerance of the same split without overlap and of
// the CPU, for pieces cut into 2 to 4 chunks (a ragged last one), a piece after a cached prefix and a decode step
// after it; post- and pre-norm; experts spread and sliced (the MoE summed) and replicated (only the attention).
// Against the CPU the worst single row of a post-norm prefill of thousands of tokens reaches 6-8% (2 x H200), with
// or without the overlap (the two were bitwise equal there): its bf16 residual stream carries the rounding.
TEST_F(TextModelMultiGpu, LongPiecesSumTheirRowsWhileComputing) {
    constexpr double kLongWorstRow = 0.1;
    for (const Variant v : {Variant{true, 4, ExpertPlacement::kSpread, "post-norm, all experts, experts spread"},
                            Variant{false, 2, ExpertPlacement::kSliced, "pre-norm, top-2, experts sliced"},
                            Variant{true, 4, ExpertPlacement::kReplicated, "post-norm, experts replicated"}}) {
        SCOPED_TRACE(v.name);
        const TextConfig c = synthetic_config(v.postnorm, v.k);
        const auto w = synthetic_weights(c, 42);
        auto cpu = MiniMaxTextModel::from_tensors(c, w, "synthetic");
        CudaTextModelOptions options = split_options(2, v.experts);
        auto overlapped = MiniMaxTextModelCuda::from_tensors(c, w, options);
        options.comm_overlap = false;
        auto plain = MiniMaxTextModelCuda::from_tensors(c, w, options);
        ASSERT_TRUE(cpu && overlapped && plain)
            << (cpu ? (overlapped ? plain.status() : overlapped.status()) : cpu.status()).to_string();
        const CausalLM* models[3] = {cpu->get(), overlapped->get(), plain->get()};
        for (int64_t T : {2048, 3001, 4500}) {
            const std::string what = std::string(v.name) + ", prefill T=" + std::to_string(T);
            const auto ids = random_ids(T, c.vocab_size, 7 + uint32_t(T));
            const size_t before = (*overlapped)->overlapped_pieces();
            Tensor out[3];
            for (int i = 0; i < 3; ++i) {
                auto r = prefill(*models[i], ids);
                ASSERT_TRUE(r) << what << ": " << r.status().to_string();
                out[i] = std::move(r).value();
            }
            EXPECT_EQ((*overlapped)->overlapped_pieces(), before + 2) << what << ": each GPU's piece overlaps";
            expect_close(out[1], out[2], (what + ", overlapped vs not").c_str(), false);
            expect_close(out[1], out[0], (what + ", overlapped vs cpu").c_str(), v.k < 4, kLongWorstRow);
        }
        // 300 cached tokens, a 2500-token piece after them (its keys appended past the prefix), one decode step.
        const auto ids = random_ids(2801, c.vocab_size, 99);
        const std::span<const int32_t> all(ids);
        Tensor rows[3], step[3];
        for (int i = 0; i < 3; ++i) {
            auto cache = models[i]->new_cache(2801);
            ASSERT_TRUE(cache) << cache.status().to_string();
            auto first = models[i]->forward(all.subspan(0, 300), *cache, LogitsMode::kLast);
            auto second = models[i]->forward(all.subspan(300, 2500), *cache, LogitsMode::kAll);
            auto third = models[i]->forward(all.subspan(2800, 1), *cache, LogitsMode::kAll);
            ASSERT_TRUE(first && second && third) << (second ? third.status() : second.status()).to_string();
            rows[i] = std::move(second).value(), step[i] = std::move(third).value();
        }
        const std::string what = std::string(v.name) + ", 2500 tokens after 300 cached";
        expect_close(rows[1], rows[2], (what + ", overlapped vs not").c_str(), false);
        expect_close(rows[1], rows[0], (what + ", overlapped vs cpu").c_str(), v.k < 4, kLongWorstRow);
        expect_close(step[1], step[0], (what + ", then a decode step, vs cpu").c_str(), v.k < 4);
        EXPECT_EQ((*plain)->overlapped_pieces(), 0u);
    }
}

// CUDA graphs on two GPUs of one process: each GPU replays its captured decode step, NCCL collectives inside, with
// bitwise the results of the eager steps (rows and picked ids, new split counts, regrown staging, a cancel before a
// replayed step), experts spread, replicated and sliced.
TEST_F(TextModelMultiGpu, SplitDecodeReplaysCudaGraphsLikeEager) {
    const TextConfig c = synthetic_config(true, 2);
    const auto w = synthetic_weights(c, 42);
    for (const ExpertPlacement e : {ExpertPlacement::kSpread, ExpertPlacement::kReplicated, ExpertPlacement::kSliced}) {
        SCOPED_TRACE(std::string("experts ") + expert_placement_name(e));
        CudaTextModelOptions options = split_options(2, e);
        auto graphs = MiniMaxTextModelCuda::from_tensors(c, w, options);
        options.cuda_graphs = false;
        auto eager = MiniMaxTextModelCuda::from_tensors(c, w, options);
        ASSERT_TRUE(graphs && eager) << (graphs ? eager.status() : graphs.status()).to_string();
        expect_graph_replays_match_eager(**graphs, **eager, c.vocab_size, "2 GPUs: ");
    }
}

TEST_F(TextModelMultiGpu, VocabularySplitEmbeddingsAreExact) {
    const TextConfig c = synthetic_config(true, 4);
    Trio m = make_trio(c, ExpertPlacement::kSpread);
    ASSERT_TRUE(m.one && m.two);
    auto ids = random_ids(64, c.vocab_size, 6);
    ids[0] = 0, ids[1] = int32_t(c.vocab_size - 1), ids[2] = int32_t(c.vocab_size / 2 - 1), ids[3] = int32_t(c.vocab_size / 2);
    auto e1 = m.one->embed(ids);
    auto e2 = m.two->embed(ids);
    ASSERT_TRUE(e1 && e2) << (e1 ? e2.status() : e1.status()).to_string();
    EXPECT_EQ(std::memcmp(e1->data(), e2->data(), e1->nbytes()), 0) << "a gather plus zeros must be exact";
    auto c1 = m.two->new_cache(64);
    auto c2 = m.two->new_cache(64);
    auto from_ids = m.two->forward(ids, *c1, LogitsMode::kAll);
    auto from_embeds = m.two->forward_embeddings(*e2, *c2, LogitsMode::kAll);
    ASSERT_TRUE(from_ids && from_embeds) << (from_ids ? from_embeds.status() : from_ids.status()).to_string();
    EXPECT_EQ(std::memcmp(from_ids->data(), from_embeds->data(), from_ids->nbytes()), 0);
}

TEST_F(TextModelMultiGpu, ModelDirectoryThroughChatModelAndCli) {
    const TextConfig c = synthetic_config();
    const auto w = synthetic_weights(c, 42);
    const auto dir = write_model_dir(c, w, "volt-multi-gpu-model");
    auto two = ChatModel::load(dir, {}, Device::cuda(0), 2);
    ASSERT_TRUE(two) << two.status().to_string();
    auto cpu = ChatModel::load(dir);
    ASSERT_TRUE(cpu) << cpu.status().to_string();
    const auto ids = random_ids(100, c.vocab_size, 11);
    auto gs = Session::create(*(*two)->lm);
    auto cs = Session::create(*(*cpu)->lm);
    ASSERT_TRUE(gs && cs);
    auto got = gs->append(ids, LogitsMode::kAll);
    auto ref = cs->append(ids, LogitsMode::kAll);
    ASSERT_TRUE(got && ref) << (got ? ref.status() : got.status()).to_string();
    expect_close(*got, *ref, "ChatModel on 2 GPUs vs cpu");

    const auto ids_file = dir / "ids.json";
    std::ofstream(ids_file) << nlohmann::json(ids).dump();
    const std::string base = "logits --model " + test::shell_quote(dir.string()) + " --ids-file " +
                             test::shell_quote(ids_file.string()) + " --device cuda --out ";
    auto r1 = test::run_volt(base + test::shell_quote((dir / "two.npy").string()) + " --gpus 2");
    auto r2 = test::run_volt(base + test::shell_quote((dir / "one.npy").string()) + " --gpus 1");
    ASSERT_EQ(r1.exit_code, 0) << r1.err;
    ASSERT_EQ(r2.exit_code, 0) << r2.err;
    auto a = read_npy(dir / "two.npy");
    auto b = read_npy(dir / "one.npy");
    ASSERT_TRUE(a && b);
    expect_close(*a, *b, "volt logits --gpus 2 vs --gpus 1");
    auto r3 = test::run_volt(base + test::shell_quote((dir / "x.npy").string()) + " --gpus 64");
    EXPECT_NE(r3.exit_code, 0);
    EXPECT_NE(r3.err.find("do not exist"), std::string::npos) << r3.err;
    // The GPUs listed in another order: the same logits as --gpus 2 (bitwise: same kernels, two-term sums).
    auto r4 = test::run_volt(base + test::shell_quote((dir / "listed.npy").string()) + " --gpu-ids 1,0");
    ASSERT_EQ(r4.exit_code, 0) << r4.err;
    auto l = read_npy(dir / "listed.npy");
    ASSERT_TRUE(l);
    ASSERT_EQ(l->nbytes(), a->nbytes());
    EXPECT_EQ(std::memcmp(l->data(), a->data(), a->nbytes()), 0) << "volt logits --gpu-ids 1,0 vs --gpus 2";
    // ... and through ChatModel (the ViT-less text model: the backbone on GPUs 1 and 0).
    const int reversed[2] = {1, 0};
    auto listed = ChatModel::load(dir, {}, Device::cuda(1), 2, ExpertWeights::kBf16, reversed);
    ASSERT_TRUE(listed) << listed.status().to_string();
    auto ls = Session::create(*(*listed)->lm);
    ASSERT_TRUE(ls);
    auto lgot = ls->append(ids, LogitsMode::kAll);
    ASSERT_TRUE(lgot) << lgot.status().to_string();
    expect_close(*lgot, *ref, "ChatModel on GPUs {1, 0} vs cpu");
    auto mismatched = ChatModel::load(dir, {}, Device::cuda(0), 2, ExpertWeights::kBf16, reversed);
    ASSERT_FALSE(mismatched);
    EXPECT_EQ(mismatched.status().code(), StatusCode::kInvalidArgument) << mismatched.status().to_string();
    std::filesystem::remove_all(dir);
}

// A cancel seen by one GPU's thread stops both at the same layer (no rank left in an all-reduce), the group is not
// aborted, and the next forward is bitwise the uncancelled one.
TEST_F(TextModelMultiGpu, CancelStopsEveryGpuAtTheSameLayer) {
    const TextConfig c = synthetic_config(true, 4);
    Trio m = make_trio(c, ExpertPlacement::kSpread);
    ASSERT_TRUE(m.two);
    const auto ids = random_ids(3000, c.vocab_size, 21);
    auto want = prefill(*m.two, ids, LogitsMode::kLast);
    ASSERT_TRUE(want) << want.status().to_string();
    for (int stop_at : {0, 1, 5}) {
        std::atomic<int> asked{0};
        auto cache = m.two->new_cache(3000);
        auto r = m.two->forward(ids, *cache, LogitsMode::kLast, [&] { return asked++ >= stop_at; });
        ASSERT_FALSE(r);
        EXPECT_EQ(r.status().code(), StatusCode::kCancelled) << r.status().to_string();
        auto again = prefill(*m.two, ids, LogitsMode::kLast);
        ASSERT_TRUE(again) << again.status().to_string();
        EXPECT_EQ(std::memcmp(again->data(), want->data(), want->nbytes()), 0);
    }
}

// One process per GPU under a launcher (VOLT_WORLD_SIZE / VOLT_RANK / VOLT_MASTER_PORT): two `volt logits` processes
// meet over TCP, split the model like one process with --gpus 2 does, and each writes the whole logits. 3000 tokens:
// more than one piece's minimum, so the processes also agree on how to cut the input, and a piece long enough to sum
// its rows while computing (the stop flags agreed on the comm stream then).
TEST_F(TextModelMultiGpu, ProcessesShareTheSplitLikeOneProcess) {
    const TextConfig c = synthetic_config();
    const auto dir = write_model_dir(c, synthetic_weights(c, 42), "volt-processes-model");
    const auto ids = random_ids(3000, c.vocab_size, 13);
    const auto ids_file = dir / "ids.json";
    std::ofstream(ids_file) << nlohmann::json(ids).dump();
    const std::string base = "logits --model " + test::shell_quote(dir.string()) + " --ids-file " +
                             test::shell_quote(ids_file.string()) + " --device cuda --out ";
    auto one = test::run_volt(base + test::shell_quote((dir / "one.npy").string()) + " --gpus 2");
    ASSERT_EQ(one.exit_code, 0) << one.err;
    const std::string port = std::to_string(20000 + ::getpid() % 20000);
    // `args` + OUT in two processes that meet on `meet_port`; OUT is `prefix`0`suffix` and `prefix`1`suffix`.
    auto two_processes = [&](const std::string& args, const std::string& prefix, const std::string& suffix,
                             const std::string& meet_port) {
        test::CliResult r[2];
        std::thread ranks[2];
        for (int k = 0; k < 2; ++k)
            ranks[k] = std::thread([&, k] {
                r[k] = test::run_volt(args + test::shell_quote((dir / (prefix + std::to_string(k) + suffix)).string()),
                                      "VOLT_WORLD_SIZE=2 VOLT_RANK=" + std::to_string(k) + " VOLT_MASTER_PORT=" +
                                          meet_port + " VOLT_BOOTSTRAP_TIMEOUT=60");
            });
        for (auto& t : ranks) t.join();
        EXPECT_EQ(r[0].exit_code, 0) << r[0].err;
        EXPECT_EQ(r[1].exit_code, 0) << r[1].err;
        return r[0].exit_code == 0 && r[1].exit_code == 0;
    };
    ASSERT_TRUE(two_processes(base, "rank", ".npy", port));
    auto a = read_npy(dir / "rank0.npy");
    auto b = read_npy(dir / "rank1.npy");
    auto want = read_npy(dir / "one.npy");
    ASSERT_TRUE(a && b && want);
    ASSERT_EQ(a->shape(), want->shape());
    EXPECT_EQ(std::memcmp(a->data(), b->data(), a->nbytes()), 0) << "every process gets the same whole logits";
    expect_close(*a, *want, "2 processes x 1 GPU vs 1 process x 2 GPUs", false);
    // Continuous batching in the process mode: `volt generate` with several prompts (batched decode steps, logits
    // gathered) in two processes gives what one process with both GPUs gives, in both processes.
    std::ofstream(dir / "many.json") << nlohmann::json({random_ids(40, c.vocab_size, 1), random_ids(3, c.vocab_size, 2),
                                                        random_ids(300, c.vocab_size, 3)})
                                            .dump();
    const std::string gen = "generate --model " + test::shell_quote(dir.string()) + " --ids-file " +
                            test::shell_quote((dir / "many.json").string()) +
                            " --max-new-tokens 8 --greedy --max-batch 2 --device cuda --out ";
    const std::string gen_port = std::to_string(std::stoi(port) + 1);  // a fresh port for the second meeting
    auto g1 = test::run_volt(gen + test::shell_quote((dir / "gen_one.json").string()) + " --gpus 2");
    ASSERT_EQ(g1.exit_code, 0) << g1.err;
    ASSERT_TRUE(two_processes(gen, "gen", ".json", gen_port));
    auto read_text = [](const std::filesystem::path& f) {
        std::ifstream in(f);
        return std::string(std::istreambuf_iterator<char>(in), {});
    };
    const std::string want_gen = read_text(dir / "gen_one.json");
    EXPECT_FALSE(want_gen.empty());
    EXPECT_EQ(read_text(dir / "gen0.json"), want_gen);
    EXPECT_EQ(read_text(dir / "gen1.json"), want_gen);
    // A process whose partner never comes says so within its deadline.
    auto lonely = test::run_volt(base + test::shell_quote((dir / "x.npy").string()),
                                 "VOLT_WORLD_SIZE=2 VOLT_RANK=1 VOLT_MASTER_PORT=" + port + " VOLT_BOOTSTRAP_TIMEOUT=2");
    EXPECT_NE(lonely.exit_code, 0);
    EXPECT_NE(lonely.err.find("could not reach rank 0"), std::string::npos) << lonely.err;
    std::filesystem::remove_all(dir);
}

TEST_F(TextModelMultiGpu, RefusesWhatItCannotSplitAndStaysUsable) {
    TextConfig c = synthetic_config();
    c.num_kv_heads = 1;
    auto w = synthetic_weights(c, 1);
    auto bad = MiniMaxTextModelCuda::from_tensors(c, w, {.device = 0, .gpus = 2});
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.status().code(), StatusCode::kUnimplemented);
    EXPECT_NE(bad.status().message().find("num_key_value_heads 1"), std::string::npos) << bad.status().to_string();
    auto too_many = MiniMaxTextModelCuda::from_tensors(synthetic_config(), synthetic_weights(synthetic_config(), 1),
                                                       {.device = 1, .gpus = cuda_device_count()});
    ASSERT_FALSE(too_many);
    EXPECT_EQ(too_many.status().code(), StatusCode::kInvalidArgument);

    // Sliced experts need every GPU's slice of intermediate_size in multiples of 8: asked for, refused with the field
    // named; by default (auto) such a config spreads its experts instead.
    TextConfig odd = synthetic_config();
    odd.intermediate_size = 392;  // 196 per GPU
    const auto odd_w = synthetic_weights(odd, 1);
    auto sliced = MiniMaxTextModelCuda::from_tensors(odd, odd_w, split_options(2, ExpertPlacement::kSliced));
    ASSERT_FALSE(sliced);
    EXPECT_EQ(sliced.status().code(), StatusCode::kUnimplemented);
    EXPECT_NE(sliced.status().message().find("intermediate_size 392"), std::string::npos) << sliced.status().to_string();
    EXPECT_EQ(MiniMaxTextModelCuda::expert_placement(odd, {.gpus = 2}), ExpertPlacement::kSpread);
    EXPECT_EQ(MiniMaxTextModelCuda::expert_placement(synthetic_config(), {.gpus = 2}), ExpertPlacement::kSliced);
    EXPECT_TRUE(MiniMaxTextModelCuda::from_tensors(odd, odd_w, {.device = 0, .gpus = 2}));

    const TextConfig ok = synthetic_config(true, 4);
    Trio m = make_trio(ok, ExpertPlacement::kSpread);
    ASSERT_TRUE(m.one && m.two);
    // A one-GPU cache is not the split model's; an over-long input is refused before any GPU works.
    auto one_cache = m.one->new_cache(8);
    const int32_t good[1] = {1};
    EXPECT_EQ(m.two->forward(good, *one_cache, LogitsMode::kLast).status().code(), StatusCode::kInvalidArgument);
    auto small = m.two->new_cache(4);
    const int32_t five[5] = {1, 2, 3, 4, 5};
    EXPECT_EQ(m.two->forward(five, *small, LogitsMode::kLast).status().code(), StatusCode::kResourceExhausted);
    const int32_t out_of_vocab[2] = {1, int32_t(ok.vocab_size)};
    EXPECT_EQ(m.two->forward(out_of_vocab, *small, LogitsMode::kLast).status().code(), StatusCode::kInvalidArgument);
    // ... and the model still runs, and agrees with one GPU.
    const auto ids = random_ids(33, ok.vocab_size, 4);
    auto a = prefill(*m.two, ids);
    auto b = prefill(*m.one, ids);
    ASSERT_TRUE(a && b) << (a ? b.status() : a.status()).to_string();
    expect_close(*a, *b, "2 GPUs after refusals vs 1", false);
}

// The GPUs as a list in any order (device_ids): {1, 0} puts rank 0 on GPU 1, and its logits equal the {0, 1} split's
// bitwise (the same kernels and the same two-term sums); a prefill + decode against the CPU; what a list may not be.
TEST_F(TextModelMultiGpu, GpuListInAnyOrder) {
    const TextConfig c = synthetic_config(true, 4);
    const auto w = synthetic_weights(c, 42);
    auto cpu = MiniMaxTextModel::from_tensors(c, w, "synthetic");
    auto ordered = MiniMaxTextModelCuda::from_tensors(c, w, {.device = 0, .gpus = 2});
    auto reversed = MiniMaxTextModelCuda::from_tensors(c, w, {.device = 1, .gpus = 2, .device_ids = {1, 0}});
    ASSERT_TRUE(cpu && ordered && reversed) << (reversed ? ordered.status() : reversed.status()).to_string();
    EXPECT_EQ((*reversed)->device(), 1);  // rank 0's GPU
    for (int64_t T : {1, 300}) {
        const auto ids = random_ids(T, c.vocab_size, 60 + uint32_t(T));
        auto a = prefill(**ordered, ids);
        auto b = prefill(**reversed, ids);
        ASSERT_TRUE(a && b) << (a ? b.status() : a.status()).to_string();
        ASSERT_EQ(a->nbytes(), b->nbytes());
        EXPECT_EQ(std::memcmp(a->data(), b->data(), a->nbytes()), 0) << "T=" << T << ": {1, 0} vs {0, 1}";
    }
    expect_prefix_reuse_decode_and_fork(**cpu, **reversed, c.vocab_size, "GPUs {1, 0}: ");
    struct Bad {
        CudaTextModelOptions o;
        const char* needle;
    };
    const Bad bad[] = {
        {{.device = 1, .gpus = 2, .device_ids = {1, 1}}, "both GPU 1"},
        {{.device = 0, .gpus = 2, .device_ids = {0, 99}}, "GPU 99 does not exist"},
        {{.device = 0, .gpus = 2, .device_ids = {0, -1}}, "GPU -1 does not exist"},
        {{.device = 0, .gpus = 3, .device_ids = {0, 1}}, "lists 2 GPUs for a split over 3"},
        {{.device = 0, .gpus = 2, .device_ids = {1, 0}}, "starts at GPU 1, device is 0"},
    };
    for (const Bad& b : bad) {
        auto m = MiniMaxTextModelCuda::from_tensors(c, w, b.o);
        ASSERT_FALSE(m) << b.needle;
        EXPECT_EQ(m.status().code(), StatusCode::kInvalidArgument) << m.status().to_string();
        EXPECT_NE(m.status().message().find(b.needle), std::string::npos) << m.status().to_string();
    }
}

// Every split the machine allows beyond 2 GPUs (4 on nvidia-h200-x4, 8 on x8): a config whose 16 heads, 8 kv heads
// and 8 experts (all 8 per token) divide over 2, 4 and 8 ranks (one expert and one kv head per GPU at 8), prefill, decode, prefix reuse
// and fork against the CPU, and the N-GPU logits against 1 GPU, with experts spread, replicated and sliced.
TEST_F(TextModelMultiGpu, SplitOverEveryGpuCountMatchesOneGpuAndTheCpu) {
    TextConfig c = synthetic_config(true, 8);  // every expert per token: continuous routing, every row must match
    c.num_heads = 16;
    c.num_kv_heads = 8;
    c.num_experts = 8;
    const auto w = synthetic_weights(c, 77);
    auto cpu = MiniMaxTextModel::from_tensors(c, w, "synthetic");
    auto one = MiniMaxTextModelCuda::from_tensors(c, w);
    ASSERT_TRUE(cpu && one) << (cpu ? one.status() : cpu.status()).to_string();
    // The attention here is 8x the hidden width (16 x 128 vs 256), so single rows carry more bf16 rounding than in
    // the default config: measured on 4 x H200, one GPU against the CPU and N GPUs against either stay at 1.2-1.7e-2
    // overall with argmax 99.8-100%, while the worst of 700 rows reaches 7-11% against the CPU (4-5% between GPU
    // counts). Every comparison keeps the overall <= 2e-2 and argmax >= 99% rule; the worst row is bounded at 12%,
    // and the split must not be much worse than one GPU against the CPU (below).
    constexpr double kWorstRow = 0.12;
    int tried = 0;
    for (int n : {2, 4, 8}) {
        if (n > cuda_device_count()) break;
        for (const ExpertPlacement e : {ExpertPlacement::kSpread, ExpertPlacement::kReplicated, ExpertPlacement::kSliced}) {
            const std::string what = std::to_string(n) + " GPUs, experts " + expert_placement_name(e);
            SCOPED_TRACE(what);
            auto split = MiniMaxTextModelCuda::from_tensors(c, w, split_options(n, e));
            ASSERT_TRUE(split) << split.status().to_string();
            EXPECT_EQ((*split)->gpus(), n);
            ++tried;
            for (int64_t T : {1, 77, 700}) {
                const auto ids = random_ids(T, c.vocab_size, 31 + uint32_t(T));
                auto ref = prefill(**cpu, ids);
                auto base = prefill(**one, ids);
                auto got = prefill(**split, ids);
                ASSERT_TRUE(ref && base && got) << (got ? (base ? ref.status() : base.status()) : got.status()).to_string();
                const std::string at = what + ", prefill T=" + std::to_string(T);
                expect_close(*got, *base, (at + " vs 1 GPU").c_str(), false, kWorstRow);
                expect_close(*got, *ref, (at + " vs cpu").c_str(), false, kWorstRow);
                expect_close(*base, *ref, (at + ": 1 GPU vs cpu, for scale").c_str(), false, kWorstRow);
                EXPECT_LE(compare(*got, *ref).rel, 1.3 * compare(*base, *ref).rel + 1e-3)
                    << at << ": the split is not much less exact than one GPU";
            }
            if (e != ExpertPlacement::kReplicated) {
                expect_prefix_reuse_decode_and_fork(**cpu, **split, c.vocab_size, what + ": ", kWorstRow);
                expect_batched_decode_matches(**cpu, **split, c.vocab_size, what + ": ", kWorstRow);
                expect_sampled_decode_matches(**split, c.vocab_size, what + ": ");
            }
        }
    }
    std::printf("[ split   ] %d split model(s) checked on %d GPU(s)\n", tried, cuda_device_count());
}

// FP8 experts split over 2 GPUs (spread: whole experts per GPU, so the same bytes and scales; replicated) against the
// FP8 model on one GPU: T = 600 runs the prefill's FP8 tensor-core GEMMs on e4m3 activations, T = 1 the grouped path.
// The split changes the order of bf16 sums (the all-reduce of the expert outputs), which each next layer's e4m3
// rounding of its activations turns into whole e4m3 steps for a few elements, so two FP8 runs differ about as much
// as the FP8 model differs from the bf16 one (tests/gpu/model/test_text_model_gpu.cpp). Measured on 2 x H200: T = 600
// 3.9e-2 overall, argmax 97.8% (spread) / 98.0% (replicated) of clear rows; T = 1 1.7e-2. Bounds: the FP8-vs-bf16
// model test's, 8e-2 overall and argmax 95%.
TEST_F(TextModelMultiGpu, SplitFp8ExpertsFollowOneGpu) {
    const TextConfig c = synthetic_config(true, 2);
    const auto w = synthetic_weights(c, 42);
    auto one = MiniMaxTextModelCuda::from_tensors(c, w, {.expert_weights = ExpertWeights::kFp8});
    ASSERT_TRUE(one) << one.status().to_string();
    for (const ExpertPlacement e : {ExpertPlacement::kSpread, ExpertPlacement::kReplicated}) {
        const std::string what = std::string("FP8 experts, 2 GPUs, experts ") + expert_placement_name(e);
        SCOPED_TRACE(what);
        CudaTextModelOptions o = split_options(2, e);
        o.expert_weights = ExpertWeights::kFp8;
        auto two = MiniMaxTextModelCuda::from_tensors(c, w, o);
        ASSERT_TRUE(two) << two.status().to_string();
        for (int64_t T : {1, 600}) {
            const auto ids = random_ids(T, c.vocab_size, 5 + uint32_t(T));
            auto base = prefill(**one, ids);
            auto got = prefill(**two, ids);
            ASSERT_TRUE(base && got) << (got ? base.status() : got.status()).to_string();
            const Agreement a = compare(*got, *base);
            std::printf("[%s, prefill T=%lld vs 1 GPU] rel %.3e (worst row %.3e), argmax %.4f over %lld clear rows\n",
                        what.c_str(), (long long)T, a.rel, a.worst_row, a.argmax, (long long)a.clear_rows);
            EXPECT_LE(a.rel, 8e-2) << "T=" << T;
            EXPECT_GE(a.argmax, 0.95) << "T=" << T;
        }
    }
}

}  // namespace
}  // namespace volt
