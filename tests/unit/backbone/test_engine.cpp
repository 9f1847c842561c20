// Sessions (prefix reuse, fork, context limit) and generation (greedy = argmax chain of full forwards, the
// transformers greedy references, seeded sampling, stop ids).
#include <gtest/gtest.h>

#include <algorithm>

#include "backbone_test_util.h"
#include "sdk/engine/batch_generator.h"
#include "sdk/engine/generate.h"
#include "sdk/engine/session.h"

namespace volt {
namespace {

using namespace volt::test;

class Engine : public ::testing::Test {
protected:
    static void SetUpTestSuite() { model_ = load_fixture("tiny-text").release(); }
    static void TearDownTestSuite() { delete model_; }
    static MiniMaxTextModel* model_;

    // The worst-case cache bytes a BatchGenerator reserves for a request of `positions` (prompt + max_new_tokens).
    static int64_t worst_case_bytes(int64_t positions) {
        auto probe = model_->new_cache(1);
        EXPECT_TRUE(probe) << probe.status().to_string();
        return probe ? int64_t(probe->state_bytes() + 2 * probe->kv_bytes_per_token() * size_t(positions)) : 0;
    }

    static Tensor last_row_fresh(const std::vector<int32_t>& ids) {
        auto s = Session::create(*model_);
        auto r = s->append(ids, LogitsMode::kLast);
        EXPECT_TRUE(r.has_value()) << r.status().to_string();
        return *r;
    }
};
MiniMaxTextModel* Engine::model_ = nullptr;

TEST_F(Engine, PrefillReusesTheSessionPrefix) {
    ASSERT_TRUE(model_);
    const int64_t V = model_->vocab_size();
    const auto ids = random_ids(300, V, 11);
    const std::vector<int32_t> head(ids.begin(), ids.begin() + 200);
    auto s = Session::create(*model_);
    ASSERT_TRUE(s->prefill(head).has_value());
    EXPECT_EQ(s->reused_tokens(), 0);
    auto r = s->prefill(ids);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(s->reused_tokens(), 200);
    EXPECT_EQ(s->tokens(), ids);
    const Tensor want = last_row_fresh(ids);
    EXPECT_LE(rel_fro(r->data_as<float>(), want.data_as<float>(), V), 1e-5);
    // The same prompt again: nothing runs, the kept logits come back.
    auto again = s->prefill(ids);
    ASSERT_TRUE(again.has_value());
    EXPECT_EQ(s->reused_tokens(), 300);
    EXPECT_EQ(rel_fro(again->data_as<float>(), r->data_as<float>(), V), 0.0);
    // A prompt that diverges: start over (and still be right).
    std::vector<int32_t> other = head;
    other[5] = (other[5] + 1) % static_cast<int32_t>(V);
    auto o = s->prefill(other);
    ASSERT_TRUE(o.has_value());
    EXPECT_EQ(s->reused_tokens(), 0);
    EXPECT_LE(rel_fro(o->data_as<float>(), last_row_fresh(other).data_as<float>(), V), 1e-5);
}

TEST_F(Engine, ForkedSessionsContinueIndependently) {
    ASSERT_TRUE(model_);
    const int64_t V = model_->vocab_size();
    const auto prefix = random_ids(260, V, 12);  // a shared "system prompt" past one lightning block
    auto base = Session::create(*model_);
    ASSERT_TRUE(base->prefill(prefix).has_value());
    auto fork = base->fork();
    ASSERT_TRUE(fork.has_value());
    const std::vector<int32_t> a = {1, 2, 3}, b = {400, 7};
    auto la = base->append(a);
    auto lb = fork->append(b);
    ASSERT_TRUE(la.has_value() && lb.has_value());
    auto pa = prefix, pb = prefix;
    pa.insert(pa.end(), a.begin(), a.end());
    pb.insert(pb.end(), b.begin(), b.end());
    EXPECT_LE(rel_fro(la->data_as<float>(), last_row_fresh(pa).data_as<float>(), V), 1e-5);
    EXPECT_LE(rel_fro(lb->data_as<float>(), last_row_fresh(pb).data_as<float>(), V), 1e-5);
}

// A cache's token record (kept by a GPU model; here on the host) is copied by clone() and emptied by clear(), and
// is valid only while it covers every token run.
TEST_F(Engine, TokenRecordIsClonedAndCleared) {
    auto cache = model_->new_cache(64);
    ASSERT_TRUE(cache) << cache.status().to_string();
    EXPECT_FALSE(cache->token_record_valid()) << "the CPU backbone keeps no record";
    const size_t with_record = cache->state_bytes() + 12;
    auto bits = Tensor::zeros({3}, DType::kI32);
    ASSERT_TRUE(bits);
    cache->token_record.bits = std::move(*bits);
    EXPECT_TRUE(cache->token_record_valid()) << "an empty sequence's empty record";
    const std::vector<int32_t> ids = {4, 40, 4};
    ASSERT_TRUE(model_->forward(ids, *cache, LogitsMode::kNone).has_value());
    EXPECT_FALSE(cache->token_record_valid()) << "the model added no ids: the record fell behind";
    auto* words = static_cast<uint32_t*>(cache->token_record.bits.data());
    cpu::record_ids(ids, 70, words);
    cache->token_record.count = 3, cache->token_record.first = 4, cache->token_record.last = 4;
    EXPECT_TRUE(cache->token_record_valid());
    auto copy = cache->clone();
    ASSERT_TRUE(copy) << copy.status().to_string();
    EXPECT_TRUE(copy->token_record_valid());
    EXPECT_EQ(copy->token_record.first, 4);
    EXPECT_EQ(copy->token_record.last, 4);
    ASSERT_NE(copy->token_record.bits.data(), cache->token_record.bits.data()) << "a copy, not a view";
    const auto* copied = static_cast<const uint32_t*>(copy->token_record.bits.data());
    EXPECT_EQ(copied[0], 1u << 4);
    EXPECT_EQ(copied[1], 1u << (40 - 32));
    cache->clear();
    EXPECT_TRUE(cache->token_record_valid());
    EXPECT_EQ(cache->token_record.count, 0);
    EXPECT_EQ(cache->token_record.first, -1);
    EXPECT_EQ(words[0] | words[1] | words[2], 0u);
    EXPECT_EQ(copied[0], 1u << 4) << "the clone keeps its record";
    EXPECT_EQ(copy->state_bytes(), with_record) << "the record counts as state";
}

// How a decode step uses a cache's token record (decided on the host in O(1); the CUDA backbone then sets the bits on
// its GPU): kept and extended while valid, rebuilt from a penalised pick's history once it fell behind, left behind
// when a pick's history cannot be the sequence's tokens.
TEST(TokenRecord, PlansEachStepFromLengthsAndEnds) {
    using Use = TokenRecord::Use;
    using Ids = std::vector<int32_t>;
    TokenRecord none;
    EXPECT_EQ(none.plan_step(0, true, Ids{5}, 5), Use::kNone) << "no bits: no record";
    TokenRecord r;
    r.bits = *Tensor::zeros({2}, DType::kI32);
    EXPECT_EQ(r.plan_step(0, false, {}, 5), Use::kAdd) << "valid and empty";
    EXPECT_EQ(r.plan_step(0, true, Ids{5}, 5), Use::kAdd);
    EXPECT_EQ(r.plan_step(0, true, Ids{4}, 5), Use::kNone) << "the history must end with the step's id";
    r.after_ids(Ids{4, 40, 4});
    EXPECT_EQ(r.count, 3);
    EXPECT_EQ(r.first, 4);
    EXPECT_EQ(r.last, 4);
    EXPECT_EQ(r.plan_step(3, true, Ids{4, 40, 4, 7}, 7), Use::kAdd);
    EXPECT_EQ(r.plan_step(3, false, {}, 7), Use::kAdd);
    EXPECT_EQ(r.plan_step(3, true, Ids{9, 40, 4, 7}, 7), Use::kNone) << "another first id";
    EXPECT_EQ(r.plan_step(3, true, Ids{4, 40, 5, 7}, 7), Use::kNone) << "another id before the step's";
    EXPECT_EQ(r.plan_step(3, true, Ids{4, 40, 4, 7}, 8), Use::kNone) << "another step id";
    EXPECT_EQ(r.plan_step(3, true, Ids{40, 4, 7}, 7), Use::kNone) << "a history shorter than the sequence";
    // Fallen behind (a forward from embeddings ran 2 more tokens): only a penalised row with a history of the
    // sequence's length ending in the step's id rebuilds it.
    EXPECT_EQ(r.plan_step(5, false, {}, 7), Use::kNone);
    EXPECT_EQ(r.plan_step(5, true, Ids{1, 2, 3, 4, 5}, 7), Use::kNone);
    const Ids h = {1, 2, 3, 4, 5, 7};
    EXPECT_EQ(r.plan_step(5, true, h, 7), Use::kRebuild);
    r.after_step(Use::kRebuild, 5, h, 7);
    EXPECT_EQ(r.count, 6);
    EXPECT_EQ(r.first, 1);
    EXPECT_EQ(r.last, 7);
    r.after_step(Use::kAdd, 6, {}, 8);
    EXPECT_EQ(r.count, 7);
    EXPECT_EQ(r.last, 8);
    r.after_step(Use::kNone, 7, Ids{1, 2, 3, 4, 5, 7, 8, 9}, 9);
    EXPECT_EQ(r.count, 7) << "left behind";
    EXPECT_EQ(r.plan_step(8, true, Ids{1, 2, 3, 4, 5, 7, 8, 9, 2}, 2), Use::kRebuild);
}

TEST_F(Engine, PromptBeyondTheContextIsResourceExhausted) {
    ASSERT_TRUE(model_);
    auto s = Session::create(*model_, {.max_context = 32});
    ASSERT_TRUE(s.has_value());
    auto r = s->prefill(random_ids(33, model_->vocab_size(), 1));
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
    EXPECT_NE(r.status().message().find("prompt of 33 tokens exceeds the context of 32 tokens"), std::string::npos)
        << r.status().message();
    // At the limit exactly is fine; one more token is not.
    ASSERT_TRUE(s->prefill(random_ids(32, model_->vocab_size(), 1)).has_value());
    const std::vector<int32_t> one = {0};
    EXPECT_EQ(s->append(one).status().code(), StatusCode::kResourceExhausted);
    // Past the model's max_position_embeddings (config: 4096) by default.
    auto d = Session::create(*model_);
    EXPECT_EQ(d->max_context(), 4096);
    EXPECT_EQ(d->prefill(random_ids(4097, model_->vocab_size(), 2)).status().code(), StatusCode::kResourceExhausted);
    EXPECT_EQ(Session::create(*model_, {.max_context = 5000}).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(Engine, GreedyEqualsArgmaxChainOfFullForwards) {
    ASSERT_TRUE(model_);
    const auto prompt = random_ids(40, model_->vocab_size(), 13);
    auto s = Session::create(*model_);
    auto r = generate(*s, prompt, {.max_new_tokens = 10, .sampling = {.temperature = 0}});
    ASSERT_TRUE(r.has_value()) << r.status().to_string();
    ASSERT_EQ(r->ids.size(), 10u);
    EXPECT_EQ(r->reason, StopReason::kMaxNewTokens);
    std::vector<int32_t> seq = prompt;
    for (size_t i = 0; i < r->ids.size(); ++i) {
        const Tensor row = last_row_fresh(seq);  // a full forward of everything so far
        const int32_t want = static_cast<int32_t>(argmax_row(row.data_as<float>(), model_->vocab_size()));
        EXPECT_EQ(r->ids[i], want) << "step " << i;
        seq.push_back(want);
    }
}

// Continuous batching: requests of different lengths and options, more than max_batch at once, each token-for-token
// what generate() gives it alone; one request's callback ends only that request.
TEST_F(Engine, BatchGeneratorGivesEachRequestWhatItGetsAlone) {
    ASSERT_TRUE(model_);
    const int64_t V = model_->vocab_size();
    struct Case {
        int64_t prompt;
        GenerationOptions options;
    };
    std::vector<Case> cases = {
        {40, {.max_new_tokens = 12, .sampling = {.temperature = 0}}},
        {300, {.max_new_tokens = 9, .sampling = {.temperature = 1.2f, .top_k = 40, .repetition_penalty = 1.1f}, .seed = 7}},
        {1, {.max_new_tokens = 15, .sampling = {.temperature = 0}}},
        {77, {.max_new_tokens = 0}},
        {520, {.max_new_tokens = 6, .sampling = {.temperature = 0.8f, .top_p = 0.9f}, .seed = 99}},
        {12, {.max_new_tokens = 20, .sampling = {.temperature = 0}}},
    };
    std::vector<std::vector<int32_t>> prompts;
    for (size_t i = 0; i < cases.size(); ++i) prompts.push_back(random_ids(cases[i].prompt, V, 200 + uint32_t(i)));
    // A stop id that request 5 meets: its greedy run alone says which.
    {
        auto s = Session::create(*model_);
        auto alone = generate(*s, prompts[5], cases[5].options);
        ASSERT_TRUE(alone) << alone.status().to_string();
        cases[5].options.stop_ids = {alone->ids[4]};
    }
    for (int64_t chunk : {int64_t{100000}, int64_t{256}}) {  // whole prompts; pieces of 256 mixed with decode steps
        SCOPED_TRACE(chunk);
        auto gen = BatchGenerator::create(*model_, {.max_batch = 4, .prefill_chunk = chunk});
        ASSERT_TRUE(gen) << gen.status().to_string();
        std::vector<BatchGenerator::RequestId> ids;
        std::vector<std::vector<int32_t>> streamed(cases.size());
        for (size_t i = 0; i < cases.size(); ++i) {
            auto id = gen->submit(prompts[i], cases[i].options, [&streamed, i](int32_t t) {
                streamed[i].push_back(t);
                return true;
            });
            ASSERT_TRUE(id) << id.status().to_string();
            ids.push_back(*id);
        }
        EXPECT_FALSE(gen->finished(ids[0]));
        EXPECT_EQ(gen->result(ids[0]).status().code(), StatusCode::kInvalidArgument);
        ASSERT_TRUE(gen->run().is_ok());
        for (size_t i = 0; i < cases.size(); ++i) {
            auto s = Session::create(*model_);
            auto want = generate(*s, prompts[i], cases[i].options);
            auto got = gen->result(ids[i]);
            ASSERT_TRUE(want && got) << (got ? want.status() : got.status()).to_string();
            EXPECT_EQ(got->ids, want->ids) << "request " << i;
            EXPECT_EQ(got->reason, want->reason) << "request " << i;
            EXPECT_EQ(streamed[i], want->ids) << "request " << i;
        }
        EXPECT_EQ(gen->result(ids[5])->reason, StopReason::kStopId);
        EXPECT_EQ(gen->result(99).status().code(), StatusCode::kNotFound);
    }

    // A callback that says stop ends its own request only.
    auto gen = BatchGenerator::create(*model_, {.max_batch = 8});
    ASSERT_TRUE(gen);
    auto a = gen->submit(prompts[0], cases[0].options, [n = 0](int32_t) mutable { return ++n < 3; });
    auto b = gen->submit(prompts[2], cases[2].options);
    ASSERT_TRUE(a && b);
    ASSERT_TRUE(gen->run().is_ok());
    EXPECT_EQ(gen->result(*a)->reason, StopReason::kCancelled);
    EXPECT_EQ(gen->result(*a)->ids.size(), 3u);
    EXPECT_EQ(gen->result(*b)->ids.size(), 15u);

    // Bad requests are refused at submit, with what was wrong.
    EXPECT_EQ(gen->submit({}, {}).status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(gen->submit({1, int32_t(V)}, {}).status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(gen->submit({1}, {.max_new_tokens = -1}).status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(gen->submit(random_ids(50, V, 1), {}, {}, {.max_context = 20}).status().code(),
              StatusCode::kResourceExhausted);
    EXPECT_EQ(BatchGenerator::create(*model_, {.max_batch = 0}).status().code(), StatusCode::kInvalidArgument);
}

// A memory budget admits requests only while every running cache's worst case fits; the others wait in order, and
// a request that alone exceeds the budget is refused at submit. Results stay what each request gets alone.
TEST_F(Engine, BatchGeneratorKeepsTheCachesWithinItsMemoryBudget) {
    ASSERT_TRUE(model_);
    const int64_t V = model_->vocab_size();
    const GenerationOptions greedy{.max_new_tokens = 10, .sampling = {.temperature = 0}};
    // Four requests of 100 prompt tokens + 10 new: room for exactly two worst cases.
    const int64_t one = worst_case_bytes(110);
    auto gen = BatchGenerator::create(*model_, {.max_batch = 8, .memory_budget_bytes = 2 * one + 1});
    ASSERT_TRUE(gen) << gen.status().to_string();
    std::vector<std::vector<int32_t>> prompts;
    std::vector<BatchGenerator::RequestId> ids;
    for (int i = 0; i < 4; ++i) {
        prompts.push_back(random_ids(100, V, 500 + uint32_t(i)));
        auto id = gen->submit(prompts.back(), greedy);
        ASSERT_TRUE(id) << id.status().to_string();
        ids.push_back(*id);
    }
    int64_t most = 0;
    while (true) {
        auto left = gen->step();
        ASSERT_TRUE(left) << left.status().to_string();
        most = std::max(most, gen->running());
        if (*left == 0) break;
    }
    EXPECT_EQ(most, 2) << "two worst cases fit the budget, three do not";
    for (int i = 0; i < 4; ++i) {
        auto s = Session::create(*model_);
        auto want = generate(*s, prompts[size_t(i)], greedy);
        ASSERT_TRUE(want);
        EXPECT_EQ(gen->result(ids[size_t(i)])->ids, want->ids) << "request " << i;
    }
    auto big = gen->submit(random_ids(300, V, 9), greedy);
    ASSERT_FALSE(big);
    EXPECT_EQ(big.status().code(), StatusCode::kResourceExhausted);
    EXPECT_NE(big.status().message().find("memory budget"), std::string::npos) << big.status().to_string();
}

// What generate() gives `prompt` alone on a new session (the reference of every batch test).
GenerationResult generate_alone(const CausalLM& model, const std::vector<int32_t>& prompt,
                                const GenerationOptions& options) {
    auto s = Session::create(model);
    EXPECT_TRUE(s) << s.status().to_string();
    auto r = generate(*s, prompt, options);
    EXPECT_TRUE(r) << r.status().to_string();
    return r ? *r : GenerationResult{};
}

// A token callback that records the ids it was told.
TokenCallback record_into(std::vector<int32_t>& seen) {
    return [&seen](int32_t id) {
        seen.push_back(id);
        return true;
    };
}

// cancel() of a queued request drops it without running anything; of a decoding one, takes it out of the batch
// with the ids chosen so far. Either way its memory-budget share goes back at once: with a budget for one request,
// the next queued request is admitted in the very next step instead of after the cancelled one's end.
TEST_F(Engine, BatchGeneratorCancelsQueuedAndDecodingRequests) {
    ASSERT_TRUE(model_);
    const int64_t V = model_->vocab_size();
    const GenerationOptions greedy{.max_new_tokens = 10, .sampling = {.temperature = 0}};
    const int64_t one = worst_case_bytes(110);  // 100 prompt tokens + 10 new
    auto gen = BatchGenerator::create(*model_, {.max_batch = 8, .memory_budget_bytes = one + 1});
    ASSERT_TRUE(gen) << gen.status().to_string();
    std::vector<std::vector<int32_t>> prompts;
    for (uint32_t i = 0; i < 3; ++i) prompts.push_back(random_ids(100, V, 600 + i));
    std::vector<int32_t> seen_a, seen_q, seen_n;
    auto a = gen->submit(prompts[0], greedy, record_into(seen_a));
    auto q = gen->submit(prompts[1], greedy, record_into(seen_q));
    auto n = gen->submit(prompts[2], greedy, record_into(seen_n));
    ASSERT_TRUE(a && q && n);
    ASSERT_TRUE(gen->step());
    ASSERT_EQ(gen->running(), 1);
    ASSERT_EQ(gen->queued(), 2);

    // Q, queued: gone now, nothing run.
    ASSERT_TRUE(gen->cancel(*q).is_ok());
    EXPECT_TRUE(gen->finished(*q));
    EXPECT_EQ(gen->queued(), 1);
    auto rq = gen->result(*q);
    ASSERT_TRUE(rq) << rq.status().to_string();
    EXPECT_EQ(rq->reason, StopReason::kCancelled);
    EXPECT_TRUE(rq->ids.empty());
    EXPECT_EQ(rq->prompt_tokens, 100);
    EXPECT_EQ(rq->prefill_seconds, 0.0);
    EXPECT_EQ(rq->decode_seconds, 0.0);
    EXPECT_TRUE(gen->cancel(*q).is_ok()) << "idempotent";

    // A, decoding: leaves with what it chose; N (which the budget held back) is admitted by the next step.
    while (seen_a.size() < 3) ASSERT_TRUE(gen->step());
    EXPECT_EQ(gen->running(), 1);
    EXPECT_EQ(gen->queued(), 1) << "the budget holds N back while A runs";
    ASSERT_TRUE(gen->cancel(*a).is_ok());
    EXPECT_EQ(gen->running(), 0);
    auto ra = gen->result(*a);
    ASSERT_TRUE(ra);
    EXPECT_EQ(ra->reason, StopReason::kCancelled);
    EXPECT_EQ(ra->ids, seen_a) << "the ids told to the callback, none after the cancel";
    const GenerationResult want_a = generate_alone(*model_, prompts[0], greedy);
    ASSERT_LT(seen_a.size(), want_a.ids.size());
    EXPECT_TRUE(std::equal(seen_a.begin(), seen_a.end(), want_a.ids.begin()));
    ASSERT_TRUE(gen->step());
    EXPECT_EQ(gen->running(), 1) << "A's reservation went back: N is admitted at once";
    EXPECT_EQ(gen->queued(), 0);

    ASSERT_TRUE(gen->run().is_ok());
    EXPECT_TRUE(seen_q.empty()) << "a request cancelled while queued never runs";
    EXPECT_EQ(gen->result(*a)->ids, seen_a) << "nothing ran for A after its cancel";
    EXPECT_EQ(gen->result(*n)->ids, generate_alone(*model_, prompts[2], greedy).ids);
    EXPECT_EQ(seen_n, gen->result(*n)->ids);
}

// A request cancelled in the middle of its prompt runs no further piece: the next step's prefill piece is the next
// request's (which gets its first token in that step, instead of after the cancelled prompt's remaining pieces).
TEST_F(Engine, BatchGeneratorCancelStopsAPromptBetweenPieces) {
    ASSERT_TRUE(model_);
    const int64_t V = model_->vocab_size();
    const GenerationOptions greedy{.max_new_tokens = 6, .sampling = {.temperature = 0}};
    auto gen = BatchGenerator::create(*model_, {.max_batch = 4, .prefill_chunk = 64});
    ASSERT_TRUE(gen);
    const auto long_prompt = random_ids(300, V, 610), short_prompt = random_ids(20, V, 611);  // 5 pieces; 1 piece
    std::vector<int32_t> seen_p, seen_w;
    auto p = gen->submit(long_prompt, greedy, record_into(seen_p));
    auto w = gen->submit(short_prompt, greedy, record_into(seen_w));
    ASSERT_TRUE(p && w);
    ASSERT_TRUE(gen->step());  // P's first piece
    ASSERT_TRUE(gen->step());  // its second
    EXPECT_EQ(gen->running(), 2);
    EXPECT_TRUE(seen_w.empty()) << "W's prompt waits behind P's pieces";
    ASSERT_TRUE(gen->cancel(*p).is_ok());
    EXPECT_EQ(gen->running(), 1);
    auto rp = gen->result(*p);
    ASSERT_TRUE(rp);
    EXPECT_EQ(rp->reason, StopReason::kCancelled);
    EXPECT_TRUE(rp->ids.empty());
    EXPECT_GT(rp->prefill_seconds, 0.0) << "two pieces ran";
    ASSERT_TRUE(gen->step());
    EXPECT_EQ(seen_w.size(), 2u) << "the step after the cancel ran W's prompt (first id) and a decode step";
    ASSERT_TRUE(gen->run().is_ok());
    EXPECT_TRUE(seen_p.empty());
    EXPECT_EQ(gen->result(*p)->prefill_seconds, rp->prefill_seconds) << "no piece of P ran after the cancel";
    EXPECT_EQ(gen->result(*w)->ids, generate_alone(*model_, short_prompt, greedy).ids);
}

// Cancelling one of several decoding requests (greedy and sampled) leaves the others' tokens exactly what generate()
// gives each alone. Unknown ids are NOT_FOUND; a finished request does not change; cancel() and release() from a
// token callback (inside step()) are refused.
TEST_F(Engine, BatchGeneratorCancelLeavesTheOthersExact) {
    ASSERT_TRUE(model_);
    const int64_t V = model_->vocab_size();
    const std::vector<GenerationOptions> options = {
        {.max_new_tokens = 14, .sampling = {.temperature = 0}},
        {.max_new_tokens = 30, .sampling = {.temperature = 0.9f, .top_k = 50}, .seed = 3},
        {.max_new_tokens = 12, .sampling = {.temperature = 1.1f, .top_p = 0.9f}, .seed = 4},
        {.max_new_tokens = 9, .sampling = {.temperature = 0}},
    };
    auto gen = BatchGenerator::create(*model_, {.max_batch = 8, .prefill_chunk = 32});
    ASSERT_TRUE(gen);
    std::vector<std::vector<int32_t>> prompts, seen(options.size());
    std::vector<BatchGenerator::RequestId> ids;
    for (size_t i = 0; i < options.size(); ++i) {
        prompts.push_back(random_ids(10 + 25 * int64_t(i), V, 620 + uint32_t(i)));
        auto id = gen->submit(prompts[i], options[i], record_into(seen[i]));
        ASSERT_TRUE(id);
        ids.push_back(*id);
    }
    while (seen[1].size() < 4) ASSERT_TRUE(gen->step());
    ASSERT_TRUE(gen->cancel(ids[1]).is_ok());
    ASSERT_TRUE(gen->run().is_ok());
    for (size_t i = 0; i < options.size(); ++i) {
        const GenerationResult want = generate_alone(*model_, prompts[i], options[i]);
        auto got = gen->result(ids[i]);
        ASSERT_TRUE(got);
        if (i == 1) {
            EXPECT_EQ(got->reason, StopReason::kCancelled);
            ASSERT_EQ(got->ids.size(), 4u);
            EXPECT_TRUE(std::equal(got->ids.begin(), got->ids.end(), want.ids.begin()));
        } else {
            EXPECT_EQ(got->ids, want.ids) << "request " << i;
            EXPECT_EQ(got->reason, want.reason) << "request " << i;
        }
        EXPECT_EQ(seen[i], got->ids) << "request " << i;
    }

    // Unknown ids; a finished request stays as it is.
    EXPECT_EQ(gen->cancel(99).code(), StatusCode::kNotFound);
    EXPECT_EQ(gen->cancel(-1).code(), StatusCode::kNotFound);
    const std::vector<int32_t> before = gen->result(ids[0])->ids;
    ASSERT_TRUE(gen->cancel(ids[0]).is_ok());
    EXPECT_EQ(gen->result(ids[0])->ids, before);
    EXPECT_EQ(gen->result(ids[0])->reason, StopReason::kMaxNewTokens);

    // From inside step(): refused (the callback's own `return false` is the way to stop its request).
    Status from_callback_cancel, from_callback_release;
    BatchGenerator* g = &*gen;
    auto inner = gen->submit(prompts[0], options[0], [&](int32_t) {
        from_callback_cancel = g->cancel(ids[3]);
        from_callback_release = g->release(ids[3]);
        return false;
    });
    ASSERT_TRUE(inner);
    ASSERT_TRUE(gen->run().is_ok());
    EXPECT_EQ(from_callback_cancel.code(), StatusCode::kInvalidArgument) << from_callback_cancel.to_string();
    EXPECT_EQ(from_callback_release.code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(gen->result(ids[3])->ids.size(), 9u);
}

// release() forgets a finished request (NOT_FOUND "released" afterwards), refuses one still queued or running, and
// ids stay unique: new requests never get a released id.
TEST_F(Engine, BatchGeneratorReleasesFinishedRequests) {
    ASSERT_TRUE(model_);
    const int64_t V = model_->vocab_size();
    const GenerationOptions greedy{.max_new_tokens = 5, .sampling = {.temperature = 0}};
    auto gen = BatchGenerator::create(*model_, {.max_batch = 1});
    ASSERT_TRUE(gen);
    const auto prompt = random_ids(30, V, 630);
    auto a = gen->submit(prompt, greedy);
    auto b = gen->submit(prompt, greedy);
    ASSERT_TRUE(a && b);
    EXPECT_EQ(gen->release(*a).code(), StatusCode::kInvalidArgument) << "queued";
    ASSERT_TRUE(gen->step());
    auto refused = gen->release(*a);
    EXPECT_EQ(refused.code(), StatusCode::kInvalidArgument) << "running";
    EXPECT_NE(refused.message().find("not finished"), std::string::npos) << refused.to_string();
    EXPECT_TRUE(gen->result(*a).status().code() == StatusCode::kInvalidArgument);
    ASSERT_TRUE(gen->run().is_ok());
    const std::vector<int32_t> want = generate_alone(*model_, prompt, greedy).ids;
    EXPECT_EQ(gen->result(*a)->ids, want);

    ASSERT_TRUE(gen->release(*a).is_ok());
    auto gone = gen->result(*a);
    ASSERT_FALSE(gone);
    EXPECT_EQ(gone.status().code(), StatusCode::kNotFound);
    EXPECT_NE(gone.status().message().find("released"), std::string::npos) << gone.status().to_string();
    EXPECT_FALSE(gen->finished(*a));
    EXPECT_EQ(gen->release(*a).code(), StatusCode::kNotFound) << "released twice";
    EXPECT_EQ(gen->cancel(*a).code(), StatusCode::kNotFound);
    EXPECT_EQ(gen->result(*b)->ids, want) << "the other request is untouched";
    EXPECT_EQ(gen->release(12345).code(), StatusCode::kNotFound);
    EXPECT_EQ(gen->result(12345).status().message().find("released"), std::string::npos) << "never submitted";

    // A cancelled request can be released; ids keep counting past every released one.
    auto c = gen->submit(prompt, greedy);
    ASSERT_TRUE(c);
    ASSERT_TRUE(gen->cancel(*c).is_ok());
    ASSERT_TRUE(gen->release(*c).is_ok());
    ASSERT_TRUE(gen->release(*b).is_ok());
    std::vector<BatchGenerator::RequestId> all = {*a, *b, *c};
    for (int i = 0; i < 3; ++i) {
        auto id = gen->submit(prompt, greedy);
        ASSERT_TRUE(id);
        all.push_back(*id);
    }
    ASSERT_TRUE(gen->run().is_ok());
    std::vector<BatchGenerator::RequestId> sorted = all;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(std::adjacent_find(sorted.begin(), sorted.end()), sorted.end()) << "an id was reused";
    EXPECT_GT(all[3], *c);
    for (size_t i = 3; i < all.size(); ++i) EXPECT_EQ(gen->result(all[i])->ids, want);
}

// CausalLM::decode (the one-sequence-at-a-time default on the CPU) and Session::append_each: the logits of a batch
// are each sequence's own step, and bad batches change nothing.
TEST_F(Engine, BatchedDecodeStepEqualsEachSessionsStep) {
    ASSERT_TRUE(model_);
    const int64_t V = model_->vocab_size();
    std::vector<Session> batch, alone;
    for (int i = 0; i < 3; ++i) {
        const auto p = random_ids(10 + 90 * i, V, 300 + uint32_t(i));
        for (auto* list : {&batch, &alone}) {
            auto s = Session::create(*model_);
            ASSERT_TRUE(s && s->append(p));
            list->push_back(std::move(*s));
        }
    }
    const std::vector<int32_t> next = {5, 6, 7};
    std::vector<Session*> ptrs = {&batch[0], &batch[1], &batch[2]};
    auto rows = Session::append_each(ptrs, next);
    ASSERT_TRUE(rows) << rows.status().to_string();
    ASSERT_EQ(rows->shape(), (Shape{3, V}));
    for (size_t i = 0; i < 3; ++i) {
        auto want = alone[i].append(std::span<const int32_t>(next).subspan(i, 1));
        ASSERT_TRUE(want);
        EXPECT_EQ(rel_fro(rows->data_as<float>() + int64_t(i) * V, want->data_as<float>(), V), 0.0);
        EXPECT_EQ(rel_fro(batch[i].last_logits().data_as<float>(), want->data_as<float>(), V), 0.0);
        EXPECT_EQ(batch[i].tokens(), alone[i].tokens());
    }
    std::vector<Session*> twice = {&batch[0], &batch[0]};
    EXPECT_EQ(Session::append_each(twice, std::vector<int32_t>{1, 2}).status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(Session::append_each(ptrs, std::vector<int32_t>{1, 2}).status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(Session::append_each(ptrs, std::vector<int32_t>{1, 2, int32_t(V)}).status().code(),
              StatusCode::kInvalidArgument);
    auto small = Session::create(*model_, {.max_context = 1});
    ASSERT_TRUE(small && small->append(std::vector<int32_t>{3}));
    std::vector<Session*> with_full = {&batch[0], &*small};
    EXPECT_EQ(Session::append_each(with_full, std::vector<int32_t>{1, 2}).status().code(),
              StatusCode::kResourceExhausted);
    for (size_t i = 0; i < 3; ++i) EXPECT_EQ(batch[i].tokens(), alone[i].tokens()) << "refused batches change nothing";
}

// Session::append_each_sample (CausalLM::decode_sample's default on the CPU): each session's id is what cpu::sample
// picks from its own step's logits with its tokens (this step's included) as the penalty's history; bad picks or
// batches change nothing; the logits are not kept, so a prefill of exactly the session's tokens starts over and
// still returns the right row.
TEST_F(Engine, BatchedSampledStepPicksWhatEachSessionsLogitsGive) {
    ASSERT_TRUE(model_);
    const int64_t V = model_->vocab_size();
    std::vector<Session> batch, alone;
    std::vector<std::vector<int32_t>> prompts;
    for (int i = 0; i < 4; ++i) {
        prompts.push_back(random_ids(12 + 40 * i, V, 500 + uint32_t(i)));
        for (auto* list : {&batch, &alone}) {
            auto s = Session::create(*model_);
            ASSERT_TRUE(s && s->append(prompts.back()));
            list->push_back(std::move(*s));
        }
    }
    // Greedy, greedy with a penalty, top-k + top-p with a temperature, min-p with a penalty: rows of different
    // options in one batch.
    const std::vector<TokenPick> picks = {
        {.sampling = {.temperature = 0.0f}},
        {.sampling = {.temperature = 0.0f, .repetition_penalty = 1.3f}},
        {.sampling = {.temperature = 0.8f, .top_k = 20, .top_p = 0.9f}, .uniform = 0.37},
        {.sampling = {.temperature = 1.2f, .min_p = 0.05f, .repetition_penalty = 1.1f}, .uniform = 0.91},
    };
    const std::vector<int32_t> next = {5, 6, 7, 8};
    std::vector<Session*> ptrs;
    for (auto& s : batch) ptrs.push_back(&s);
    auto picked = Session::append_each_sample(ptrs, next, picks, /*keep_logits=*/false);
    ASSERT_TRUE(picked) << picked.status().to_string();
    ASSERT_EQ(picked->size(), 4u);
    for (size_t i = 0; i < 4; ++i) {
        auto row = alone[i].append(std::span<const int32_t>(next).subspan(i, 1));
        ASSERT_TRUE(row);
        const auto& history = alone[i].tokens();
        auto want = cpu::sample({.logits = row->data_as<float>(), .vocab_size = V, .sampling = picks[i].sampling,
                                 .history = history.data(), .history_len = int64_t(history.size()),
                                 .uniform = picks[i].uniform});
        ASSERT_TRUE(want);
        EXPECT_EQ((*picked)[i], *want) << "session " << i;
        EXPECT_EQ(batch[i].tokens(), alone[i].tokens());
        EXPECT_FALSE(batch[i].last_logits().defined());
    }
    // Refusals leave every session as it was.
    auto refused = [&](std::vector<TokenPick> bad, std::vector<int32_t> ids) {
        auto r = Session::append_each_sample(ptrs, ids, bad, false);
        EXPECT_FALSE(r);
        EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().to_string();
        for (size_t i = 0; i < 4; ++i) EXPECT_EQ(batch[i].tokens(), alone[i].tokens());
    };
    refused({picks[0], picks[1], picks[2]}, next);                                       // 3 picks for 4
    refused({picks[0], picks[1], picks[2], {.sampling = {.top_p = 1.5f}}}, next);         // bad option
    refused({picks[0], picks[1], picks[2], {.uniform = 1.0}}, next);                      // draw outside [0, 1)
    refused(picks, {1, 2, 3, int32_t(V)});                                                // id outside the vocabulary
    // Without kept logits, the same tokens prefill from scratch and give the same last row as a fresh session.
    auto again = batch[0].prefill(batch[0].tokens());
    ASSERT_TRUE(again) << again.status().to_string();
    EXPECT_EQ(batch[0].reused_tokens(), 0);
    const Tensor want = last_row_fresh(batch[0].tokens());
    EXPECT_LE(rel_fro(again->data_as<float>(), want.data_as<float>(), V), 1e-6);
}

TEST_F(Engine, GreedyMatchesTheTransformersReference) {
    for (const char* name : kFixtures) {
        const fs::path ref = kData / name / "reference";
        const auto manifest = read_json(ref / "manifest.json");
        if (manifest["greedy"].empty()) continue;
        auto model = load_fixture(name);
        ASSERT_TRUE(model);
        for (const auto& g : manifest["greedy"]) {
            const auto prompt = read_ids(ref / g["prompt"].get<std::string>());
            const auto want = read_ids(ref / g["new_ids"].get<std::string>());
            auto s = Session::create(*model);
            auto r = generate(*s, prompt, {.max_new_tokens = g["max_new_tokens"].get<int64_t>(), .sampling = {.temperature = 0}});
            ASSERT_TRUE(r.has_value()) << r.status().to_string();
            EXPECT_EQ(r->ids, want) << name << " from " << g["prompt"];
        }
    }
}

TEST_F(Engine, SamplingIsReproducibleWithASeed) {
    ASSERT_TRUE(model_);
    const auto prompt = random_ids(20, model_->vocab_size(), 14);
    GenerationOptions o{.max_new_tokens = 24, .sampling = {.temperature = 1.3f, .top_k = 50, .top_p = 0.95f, .min_p = 0.01f,
                                                            .repetition_penalty = 1.1f}, .seed = 1234};
    auto s = Session::create(*model_);
    auto a = generate(*s, prompt, o);
    auto b = generate(*s, prompt, o);  // the session restarts (prompt is not an extension of prompt + a)
    ASSERT_TRUE(a.has_value() && b.has_value());
    EXPECT_EQ(a->ids, b->ids);
    o.seed = 99;
    auto c = generate(*s, prompt, o);
    ASSERT_TRUE(c.has_value());
    EXPECT_NE(a->ids, c->ids);  // 24 draws at temperature 1.3 over 50 candidates: equal only by a ~0 chance
    // The sampled ids differ from the greedy chain (sampling actually samples).
    auto g = generate(*s, prompt, {.max_new_tokens = 24, .sampling = {.temperature = 0}});
    EXPECT_NE(a->ids, g->ids);
}

TEST_F(Engine, StopsAtStopIdsMaxTokensAndTheContext) {
    ASSERT_TRUE(model_);
    const auto prompt = random_ids(30, model_->vocab_size(), 15);
    auto s = Session::create(*model_);
    auto greedy = generate(*s, prompt, {.max_new_tokens = 8, .sampling = {.temperature = 0}});
    ASSERT_TRUE(greedy.has_value());
    // Stop at the 3rd greedy id (unless it already appeared earlier).
    const int32_t stop = greedy->ids[2];
    const size_t first = std::find(greedy->ids.begin(), greedy->ids.end(), stop) - greedy->ids.begin();
    auto r = generate(*s, prompt, {.max_new_tokens = 8, .sampling = {.temperature = 0}, .stop_ids = {stop}});
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->reason, StopReason::kStopId);
    EXPECT_EQ(r->ids, std::vector<int32_t>(greedy->ids.begin(), greedy->ids.begin() + first + 1));
    auto zero = generate(*s, prompt, {.max_new_tokens = 0});
    ASSERT_TRUE(zero.has_value());
    EXPECT_TRUE(zero->ids.empty());
    auto small = Session::create(*model_, {.max_context = 32});
    auto full = generate(*small, prompt, {.max_new_tokens = 8, .sampling = {.temperature = 0}});
    ASSERT_TRUE(full.has_value());
    EXPECT_EQ(full->reason, StopReason::kContextFull);
    EXPECT_EQ(full->ids, std::vector<int32_t>(greedy->ids.begin(), greedy->ids.begin() + 3));  // 30 + 2 fed, 3 sampled
    EXPECT_EQ(generate(*s, prompt, {.max_new_tokens = -1}).status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(generate(*s, prompt, {.sampling = {.top_p = 2}}).status().code(), StatusCode::kInvalidArgument);
}

// Input embeddings (the VL-01 path): the model's own token embeddings fed back in give the ids' logits, and a
// session that ran embeddings does not reuse them as a prefix.
TEST_F(Engine, EmbeddingsInputEqualsIdsInput) {
    ASSERT_TRUE(model_);
    const int64_t V = model_->vocab_size();
    const auto ids = random_ids(270, V, 17);
    auto emb = model_->embed(ids);
    ASSERT_TRUE(emb.has_value());
    EXPECT_EQ(emb->shape(), (Shape{270, model_->hidden_size()}));
    auto a = Session::create(*model_);
    auto b = Session::create(*model_);
    auto la = a->append(ids, LogitsMode::kAll);
    auto lb = b->append_embeddings(*emb, ids, LogitsMode::kAll);
    ASSERT_TRUE(la.has_value() && lb.has_value()) << lb.status().to_string();
    EXPECT_EQ(rel_fro(lb->data_as<float>(), la->data_as<float>(), 270 * V), 0.0);  // same arithmetic, same order
    EXPECT_EQ(b->tokens(), ids);
    // A longer prompt starting with the same ids must not reuse embedding-fed positions.
    auto longer = ids;
    longer.push_back(3);
    ASSERT_TRUE(b->prefill(longer).has_value());
    EXPECT_EQ(b->reused_tokens(), 0);
    // Shape errors name both sides.
    auto bad = Session::create(*model_);
    auto r = bad->append_embeddings(*emb, std::span(ids).first(5));
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("do not match"), std::string::npos);
}

TEST(VLBackbone, LoadsTheLanguageModelOfAVlCheckpointOnlyWhenAsked) {
    const fs::path vl = kData / "vision" / "tiny-vl";
    if (!fs::exists(vl / "config.json")) GTEST_SKIP() << "no VL fixture at " << vl;
    auto refused = MiniMaxTextModel::load(vl);
    ASSERT_FALSE(refused.has_value());
    EXPECT_EQ(refused.status().code(), StatusCode::kUnimplemented);
    auto m = MiniMaxTextModel::load(vl, {.language_model_of_vl = true});
    ASSERT_TRUE(m.has_value()) << m.status().to_string();
    auto s = Session::create(**m);
    const std::vector<int32_t> ids = {1, 2, 3};
    auto l = s->append(ids, LogitsMode::kAll);
    ASSERT_TRUE(l.has_value());
    for (int64_t i = 0; i < l->numel(); ++i) ASSERT_TRUE(std::isfinite(l->data_as<float>()[i]));
}

TEST_F(Engine, CancelFromTheCallback) {
    ASSERT_TRUE(model_);
    auto s = Session::create(*model_);
    int seen = 0;
    auto r = generate(*s, random_ids(5, model_->vocab_size(), 16), {.max_new_tokens = 10},
                      [&](int32_t) { return ++seen < 4; });
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->reason, StopReason::kCancelled);
    EXPECT_EQ(r->ids.size(), 4u);
}

// A long prompt stops between layers (it cannot wait for a token): CANCELLED, the session reset, and the next run
// exact. Checked at every layer of every piece, so a stop asked at the k-th check lands before layer k.
TEST_F(Engine, CancelBetweenLayersOfAPrompt) {
    ASSERT_TRUE(model_);
    const int64_t V = model_->vocab_size();
    const auto ids = random_ids(300, V, 17);
    auto s = Session::create(*model_);
    ASSERT_TRUE(s->append(random_ids(10, V, 18)).has_value());
    int asked = 0;
    auto r = s->append(ids, LogitsMode::kLast, [&] { return ++asked > 1; });
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.status().code(), StatusCode::kCancelled);
    EXPECT_NE(r.status().message().find("before layer 1"), std::string::npos) << r.status().to_string();
    EXPECT_EQ(asked, 2);
    EXPECT_TRUE(s->tokens().empty()) << "a half-run cache must not be reused";
    auto again = s->append(ids, LogitsMode::kLast, [] { return false; });
    ASSERT_TRUE(again.has_value()) << again.status().to_string();
    EXPECT_EQ(rel_fro(again->data_as<float>(), last_row_fresh(ids).data_as<float>(), V), 0.0);
}

}  // namespace
}  // namespace volt
