#include "sdk/engine/session.h"

#include <algorithm>
#include <cstring>

namespace volt {

Expected<int64_t> Session::context_limit(const CausalLM& model, const SessionOptions& options) {
    if (options.max_context < 0) return invalid_argument("max_context ", options.max_context, " must be >= 0");
    if (options.max_context > model.max_context())
        return invalid_argument("max_context ", options.max_context, " exceeds the model's max_position_embeddings ",
                                model.max_context());
    return options.max_context > 0 ? options.max_context : model.max_context();
}

Expected<Session> Session::create(const CausalLM& model, const SessionOptions& options) {
    VOLT_ASSIGN_OR_RETURN(const int64_t limit, context_limit(model, options));
    VOLT_ASSIGN_OR_RETURN(SequenceCache cache, model.new_cache(limit));
    return Session(&model, std::move(cache));
}

Status Session::check(std::span<const int32_t> ids) const {
    VOLT_RETURN_IF_ERROR(check_token_ids(ids, model_->vocab_size()));
    const int64_t total = static_cast<int64_t>(tokens_.size() + ids.size());
    if (total > cache_.max_tokens())
        return resource_exhausted(tokens_.empty() ? "prompt of " : "session of ", total,
                                  " tokens exceeds the context of ", cache_.max_tokens(), " tokens",
                                  tokens_.empty() ? "" : str_cat(" (", tokens_.size(), " already held)"));
    return Status::ok();
}

Expected<Tensor> Session::append(std::span<const int32_t> ids, LogitsMode mode, const CancelCheck& cancelled) {
    VOLT_RETURN_IF_ERROR(check(ids));
    // The last row is always kept (prefill of an identical prompt, generation), so ask for at least that.
    const LogitsMode run_mode = mode == LogitsMode::kNone ? LogitsMode::kLast : mode;
    return finish(model_->forward(ids, cache_, run_mode, cancelled), ids, mode);
}

Expected<Tensor> Session::append_embeddings(const Tensor& embeds, std::span<const int32_t> ids, LogitsMode mode,
                                            const CancelCheck& cancelled) {
    VOLT_RETURN_IF_ERROR(check(ids));
    if (embeds.rank() != 2 || embeds.dim(0) != static_cast<int64_t>(ids.size()) || embeds.dim(1) != model_->hidden_size())
        return invalid_argument("embeddings ", embeds.shape().to_string(), " do not match ", ids.size(),
                                " ids x hidden size ", model_->hidden_size());
    const LogitsMode run_mode = mode == LogitsMode::kNone ? LogitsMode::kLast : mode;
    auto out = finish(model_->forward_embeddings(embeds, cache_, run_mode, cancelled), ids, mode);
    if (out.has_value()) holds_embeddings_ = true;
    return out;
}

Expected<std::vector<SequenceCache*>> Session::batch_caches(std::span<Session* const> sessions,
                                                             std::span<const int32_t> ids) {
    if (sessions.empty() || sessions.size() != ids.size())
        return invalid_argument("append_each: ", ids.size(), " token ids for ", sessions.size(),
                                " sessions (one each, at least one)");
    std::vector<SequenceCache*> caches;
    for (size_t b = 0; b < sessions.size(); ++b) {
        Session* s = sessions[b];
        if (!s) return invalid_argument("append_each: session ", b, " is null");
        if (s->model_ != sessions[0]->model_)
            return invalid_argument("append_each: session ", b, " belongs to another model than session 0");
        VOLT_RETURN_IF_ERROR(s->check(ids.subspan(b, 1)).with_context(str_cat("session ", b)));
        caches.push_back(&s->cache_);
    }
    return caches;
}

// Refused input changed nothing; a failure during compute leaves every cache of the batch unusable.
Status Session::batch_failed(std::span<Session* const> sessions, const Status& status) {
    if (status.code() != StatusCode::kInvalidArgument)
        for (Session* s : sessions) s->reset();
    return status;
}

Expected<Tensor> Session::append_each(std::span<Session* const> sessions, std::span<const int32_t> ids,
                                     const CancelCheck& cancelled) {
    VOLT_ASSIGN_OR_RETURN(const std::vector<SequenceCache*> caches, batch_caches(sessions, ids));
    Expected<Tensor> logits = sessions[0]->model_->decode(ids, caches, cancelled);  // also refuses repeats
    if (!logits) return batch_failed(sessions, logits.status());
    for (size_t b = 0; b < sessions.size(); ++b) {
        Session* s = sessions[b];
        s->reused_ = 0;
        s->tokens_.push_back(ids[b]);
        VOLT_ASSIGN_OR_RETURN(s->last_logits_, logits->slice(0, int64_t(b), int64_t(b) + 1));  // a view of row b
    }
    return logits;
}

Expected<std::vector<int32_t>> Session::append_each_sample(std::span<Session* const> sessions,
                                                            std::span<const int32_t> ids,
                                                            std::span<const TokenPick> picks, bool keep_logits,
                                                            const CancelCheck& cancelled) {
    VOLT_ASSIGN_OR_RETURN(const std::vector<SequenceCache*> caches, batch_caches(sessions, ids));
    VOLT_RETURN_IF_ERROR(check_token_picks(picks, ids.size()));
    // Each pick's history is its session's tokens with this step's id: pushed now (the spans view them) and taken
    // back if the step is refused.
    std::vector<TokenPick> with_history(picks.begin(), picks.end());
    for (size_t b = 0; b < sessions.size(); ++b) {
        sessions[b]->tokens_.push_back(ids[b]);
        with_history[b].history = sessions[b]->tokens_;
    }
    Tensor rows;
    Expected<std::vector<int32_t>> next =
        sessions[0]->model_->decode_sample(ids, caches, with_history, keep_logits ? &rows : nullptr, cancelled);
    if (!next) {
        for (Session* s : sessions) s->tokens_.pop_back();
        return batch_failed(sessions, next.status());
    }
    for (size_t b = 0; b < sessions.size(); ++b) {
        Session* s = sessions[b];
        s->reused_ = 0;
        s->last_logits_ = Tensor();  // without keep_logits they stayed where they were sampled
        if (keep_logits) {
            VOLT_ASSIGN_OR_RETURN(s->last_logits_, rows.slice(0, int64_t(b), int64_t(b) + 1));
        }
    }
    return next;
}

Expected<Tensor> Session::finish(Expected<Tensor> logits, std::span<const int32_t> ids, LogitsMode mode) {
    reused_ = 0;
    if (!logits) {
        reset();  // the cache may be half-updated (check() already caught bad input, so this is rare)
        return logits.status();
    }
    tokens_.insert(tokens_.end(), ids.begin(), ids.end());
    const int64_t rows = logits->dim(0);
    VOLT_ASSIGN_OR_RETURN(Tensor last, logits->slice(0, rows - 1, rows));
    VOLT_ASSIGN_OR_RETURN(last_logits_, last.to(DType::kF32));  // own copy: `logits` is returned to the caller
    if (mode == LogitsMode::kNone) return Tensor();
    return logits;
}

Expected<Tensor> Session::prefill(std::span<const int32_t> prompt, LogitsMode mode) {
    if (prompt.empty()) return invalid_argument("empty prompt: at least one token id is needed");
    const bool extends = !tokens_.empty() && !holds_embeddings_ && tokens_.size() <= prompt.size() &&
                         std::equal(tokens_.begin(), tokens_.end(), prompt.begin());
    // An identical prompt returns the logits kept from the last call (after append_each_sample there are none: it
    // then starts over).
    if (extends && tokens_.size() == prompt.size() && mode != LogitsMode::kAll &&
        (mode == LogitsMode::kNone || last_logits_.defined())) {
        reused_ = static_cast<int64_t>(tokens_.size());
        if (mode == LogitsMode::kNone) return Tensor();
        return last_logits_.to(DType::kF32);
    }
    if (!extends || tokens_.size() == prompt.size()) {
        // Validate before dropping what the session holds.
        std::vector<int32_t> held;
        held.swap(tokens_);
        Status st = check(prompt);
        if (!st.is_ok()) {
            held.swap(tokens_);
            return st;
        }
        reset();
        return append(prompt, mode);
    }
    const int64_t reuse = static_cast<int64_t>(tokens_.size());
    auto out = append(prompt.subspan(tokens_.size()), mode);
    if (out) reused_ = reuse;
    return out;
}

void Session::reset() {
    cache_.clear();
    tokens_.clear();
    last_logits_ = Tensor();
    reused_ = 0;
    holds_embeddings_ = false;
}

Expected<Session> Session::fork() const {
    VOLT_ASSIGN_OR_RETURN(SequenceCache cache, cache_.clone());
    Session s(model_, std::move(cache));
    s.tokens_ = tokens_;
    s.holds_embeddings_ = holds_embeddings_;
    if (last_logits_.defined() && last_logits_.numel() > 0) {
        VOLT_ASSIGN_OR_RETURN(s.last_logits_, last_logits_.to(DType::kF32));
    }
    return s;
}

}  // namespace volt
