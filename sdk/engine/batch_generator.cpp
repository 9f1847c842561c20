#include "sdk/engine/batch_generator.h"

#include <algorithm>
#include <chrono>
#include <random>

namespace volt {

namespace {
using clock_type = std::chrono::steady_clock;
double seconds_since(clock_type::time_point t) {
    return std::chrono::duration<double>(clock_type::now() - t).count();
}
}  // namespace

struct BatchGenerator::Request {
    std::vector<int32_t> prompt;
    GenerationOptions options;
    TokenCallback on_token;
    std::optional<Session> session;
    std::mt19937_64 rng;
    int64_t context = 0;         // positions its session may hold: prompt + max_new_tokens, within the context
    int64_t reserved = 0;        // its worst-case cache bytes while it runs (memory budget)
    int64_t prefilled = 0;       // prompt tokens run so far
    int32_t pending = -1;        // the id sampled last, to run in the next decode step
    bool done = false;
    Status error;                // a failed request's error
    GenerationResult result;
};

BatchGenerator::BatchGenerator(const CausalLM& model, const BatchOptions& options) : model_(&model), options_(options) {}
BatchGenerator::BatchGenerator(BatchGenerator&&) noexcept = default;
BatchGenerator& BatchGenerator::operator=(BatchGenerator&&) noexcept = default;
BatchGenerator::~BatchGenerator() = default;

Expected<BatchGenerator> BatchGenerator::create(const CausalLM& model, const BatchOptions& options) {
    if (options.max_batch < 1) return invalid_argument("max_batch ", options.max_batch, " must be >= 1");
    if (options.prefill_chunk < 1) return invalid_argument("prefill_chunk ", options.prefill_chunk, " must be >= 1");
    if (options.memory_budget_bytes < 0)
        return invalid_argument("memory_budget_bytes ", options.memory_budget_bytes, " must be >= 0");
    BatchGenerator g(model, options);
    if (options.memory_budget_bytes > 0) {
        VOLT_ASSIGN_OR_RETURN(SequenceCache probe, model.new_cache(1));  // the model's cache layout
        g.state_bytes_ = probe.state_bytes();
        g.kv_bytes_per_token_ = probe.kv_bytes_per_token();
    }
    return g;
}

int64_t BatchGenerator::cache_bytes(int64_t tokens) const {
    if (options_.memory_budget_bytes == 0) return 0;
    return static_cast<int64_t>(state_bytes_ + 2 * kv_bytes_per_token_ * static_cast<size_t>(tokens));
}

Expected<BatchGenerator::RequestId> BatchGenerator::submit(std::vector<int32_t> prompt,
                                                           const GenerationOptions& options, TokenCallback on_token,
                                                           const SessionOptions& session) {
    VOLT_RETURN_IF_ERROR(validate(options));
    VOLT_RETURN_IF_ERROR(check_token_ids(prompt, model_->vocab_size()));
    VOLT_ASSIGN_OR_RETURN(const int64_t context, Session::context_limit(*model_, session));
    if (static_cast<int64_t>(prompt.size()) > context)
        return resource_exhausted("prompt of ", prompt.size(), " tokens exceeds the context of ", context, " tokens");
    // The session holds no more than the request can reach (its KV rows never grow past that); generation is the
    // same, since the last new id needs no room.
    const int64_t reach = std::min<int64_t>(context, static_cast<int64_t>(prompt.size()) + options.max_new_tokens);
    const int64_t need = cache_bytes(reach);
    if (need > options_.memory_budget_bytes && options_.memory_budget_bytes > 0)
        return resource_exhausted("a request of ", reach, " positions needs up to ", need,
                                  " bytes of cache, more than the batch's memory budget of ",
                                  options_.memory_budget_bytes, " bytes");
    auto r = std::make_unique<Request>();
    r->context = reach;
    r->reserved = need;
    r->prompt = std::move(prompt);
    r->options = options;
    r->on_token = std::move(on_token);
    r->rng.seed(options.seed);
    r->result.prompt_tokens = static_cast<int64_t>(r->prompt.size());
    const RequestId id = next_id_++;
    queued_.push_back(r.get());
    requests_.emplace(id, std::move(r));
    return id;
}

Expected<BatchGenerator::Request*> BatchGenerator::find(RequestId id, const char* what) const {
    auto it = requests_.find(id);
    if (it != requests_.end()) return it->second.get();
    if (id >= 0 && id < next_id_) return not_found(what, ": request ", id, " was released");
    return not_found(what, ": no request ", id);
}

void BatchGenerator::free_cache(Request& r) {
    r.session.reset();
    reserved_bytes_ -= r.reserved;
}

Status BatchGenerator::cancel(RequestId id) {
    if (stepping_)
        return invalid_argument("cancel(", id, ") inside step(): a token callback ends its own request by returning "
                                "false; cancel others after step() returns");
    VOLT_ASSIGN_OR_RETURN(Request* r, find(id, "cancel"));
    if (r->done) return Status::ok();
    r->done = true;
    r->pending = -1;
    r->result.reason = StopReason::kCancelled;
    if (r->session) {  // admitted: it leaves the batch before its next prefill piece or decode step
        free_cache(*r);
        std::erase(running_, r);
    } else {
        std::erase(queued_, r);
    }
    return Status::ok();
}

Status BatchGenerator::release(RequestId id) {
    if (stepping_) return invalid_argument("release(", id, ") inside step(): release after step() returns");
    VOLT_ASSIGN_OR_RETURN(Request* r, find(id, "release"));
    if (!r->done) return invalid_argument("release: request ", id, " has not finished (cancel it first)");
    requests_.erase(id);
    return Status::ok();
}

// The per-token rules of generate() (next_token) for the first new id, sampled on the host from the prompt's last row.
Expected<bool> BatchGenerator::take_first_token(Request& r, const float* logits, int64_t vocab) {
    VOLT_ASSIGN_OR_RETURN(const bool goes_on,
                          next_token(*r.session, logits, vocab, r.options, r.rng, r.on_token, r.result));
    if (goes_on) r.pending = r.result.ids.back();
    return goes_on;
}

Status BatchGenerator::prefill_step(Request& r) {
    const auto t0 = clock_type::now();
    const int64_t n = static_cast<int64_t>(r.prompt.size());
    const int64_t m = std::min(options_.prefill_chunk, n - r.prefilled);
    const bool last = r.prefilled + m == n;
    auto piece = std::span<const int32_t>(r.prompt).subspan(size_t(r.prefilled), size_t(m));
    VOLT_ASSIGN_OR_RETURN(Tensor logits, r.session->append(piece, last ? LogitsMode::kLast : LogitsMode::kNone));
    r.prefilled += m;
    r.result.prefill_seconds += seconds_since(t0);
    if (!last) return Status::ok();
    const auto t1 = clock_type::now();
    VOLT_ASSIGN_OR_RETURN(const bool goes_on, take_first_token(r, logits.data_as<float>(), logits.dim(1)));
    r.result.decode_seconds += seconds_since(t1);
    if (!goes_on) r.done = true;
    return Status::ok();
}

Expected<int64_t> BatchGenerator::step() {
    if (stepping_) return invalid_argument("step() inside step() (from a token callback)");
    struct Stepping {  // cleared on every return
        bool& flag;
        explicit Stepping(bool& f) : flag(f) { flag = true; }
        ~Stepping() { flag = false; }
    } stepping(stepping_);
    // Admit in order: a session (its cache) per request, up to max_batch at once and within the memory budget.
    while (!queued_.empty() && static_cast<int>(running_.size()) < options_.max_batch) {
        Request* r = queued_.front();
        if (options_.memory_budget_bytes > 0 && reserved_bytes_ + r->reserved > options_.memory_budget_bytes) break;
        queued_.pop_front();
        auto s = Session::create(*model_, {.max_context = r->context});
        if (!s) {
            r->error = s.status(), r->done = true;
            continue;
        }
        r->session.emplace(std::move(*s));
        reserved_bytes_ += r->reserved;
        running_.push_back(r);
    }
    // One prefill piece: the earliest admitted request still in its prompt.
    for (Request* r : running_) {
        if (r->prefilled == static_cast<int64_t>(r->prompt.size())) continue;
        Status st = prefill_step(*r);
        if (!st.is_ok()) r->error = st, r->done = true;
        break;
    }
    // One batched decode step for every request with a sampled id to run; each next id is picked where the logits
    // are (on the GPU for the CUDA backbone) with the draw generate() would make from the request's RNG.
    std::vector<Request*> batch;
    std::vector<Session*> sessions;
    std::vector<int32_t> ids;
    std::vector<TokenPick> picks;
    for (Request* r : running_)
        if (!r->done && r->pending >= 0) {
            batch.push_back(r), sessions.push_back(&*r->session), ids.push_back(r->pending);
            picks.push_back({.sampling = r->options.sampling, .uniform = draw_uniform(r->rng)});
        }
    if (!batch.empty()) {
        const auto t0 = clock_type::now();
        Expected<std::vector<int32_t>> next = Session::append_each_sample(sessions, ids, picks, /*keep_logits=*/false);
        const double seconds = seconds_since(t0);
        for (size_t b = 0; b < batch.size(); ++b) {
            Request& r = *batch[b];
            r.pending = -1;
            r.result.decode_seconds += seconds;
            if (!next) {
                r.error = next.status(), r.done = true;
                continue;
            }
            if (take_token(*r.session, (*next)[b], r.options, r.on_token, r.result)) r.pending = (*next)[b];
            else r.done = true;
        }
    }
    // Finished requests leave (their sessions, and the memory of their caches, go with them).
    for (Request* r : running_)
        if (r->done) free_cache(*r);
    std::erase_if(running_, [](const Request* r) { return r->done; });
    return static_cast<int64_t>(running_.size() + queued_.size());
}

Status BatchGenerator::run() {
    while (true) {
        VOLT_ASSIGN_OR_RETURN(const int64_t left, step());
        if (left == 0) return Status::ok();
    }
}

bool BatchGenerator::finished(RequestId id) const {
    auto it = requests_.find(id);
    return it != requests_.end() && it->second->done;
}

Expected<GenerationResult> BatchGenerator::result(RequestId id) const {
    VOLT_ASSIGN_OR_RETURN(const Request* found, find(id, "result"));
    const Request& r = *found;
    if (!r.done) return invalid_argument("request ", id, " has not finished: call step() or run() first");
    if (!r.error.is_ok()) return r.error;
    return r.result;
}

}  // namespace volt
