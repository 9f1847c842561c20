#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "kernels/sampling.h"

namespace volt {

Status validate(const SamplingParams& p) {
    if (!(p.temperature >= 0.0f) || !std::isfinite(p.temperature))
        return invalid_argument("temperature ", p.temperature, " must be >= 0 (0 = greedy)");
    if (p.top_k < 0) return invalid_argument("top_k ", p.top_k, " must be >= 0 (0 = off)");
    if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) return invalid_argument("top_p ", p.top_p, " must be in (0, 1]");
    if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) return invalid_argument("min_p ", p.min_p, " must be in [0, 1]");
    if (!(p.repetition_penalty > 0.0f) || !std::isfinite(p.repetition_penalty))
        return invalid_argument("repetition_penalty ", p.repetition_penalty, " must be > 0 (1 = off)");
    return Status::ok();
}

Status validate(const SampleParams& p) {
    VOLT_RETURN_IF_ERROR(validate(p.sampling));
    if (p.vocab_size <= 0 || !p.logits) return invalid_argument("sample: empty logits");
    if (p.history_len < 0 || (p.history_len > 0 && !p.history)) return invalid_argument("sample: bad history");
    if (!(p.uniform >= 0.0 && p.uniform < 1.0)) return invalid_argument("sample: uniform draw must be in [0, 1)");
    return Status::ok();
}

namespace cpu {

void record_ids(std::span<const int32_t> ids, int64_t vocab, uint32_t* bits) {
    for (const int32_t id : ids)
        if (id >= 0 && id < vocab) bits[id >> 5] |= 1u << (id & 31);
}

Expected<int32_t> sample(const SampleParams& p) {
    VOLT_RETURN_IF_ERROR(validate(p));
    const int64_t V = p.vocab_size;
    const SamplingParams& s = p.sampling;
    std::vector<float> l(p.logits, p.logits + V);
    if (s.repetition_penalty != 1.0f) {
        std::vector<char> seen(static_cast<size_t>(V), 0);
        for (int64_t i = 0; i < p.history_len; ++i) {
            const int32_t id = p.history[i];
            if (id < 0 || id >= V || seen[id]) continue;
            seen[id] = 1;
            l[id] = l[id] > 0 ? l[id] / s.repetition_penalty : l[id] * s.repetition_penalty;
        }
    }
    for (float x : l)
        if (std::isnan(x)) return internal_error("sample: logits contain NaN");
    if (s.temperature == 0.0f) return static_cast<int32_t>(std::max_element(l.begin(), l.end()) - l.begin());

    // Candidates sorted by logit (descending; equal logits keep the lower id first).
    std::vector<int32_t> idx(static_cast<size_t>(V));
    std::iota(idx.begin(), idx.end(), 0);
    int64_t n = V;
    if (s.top_k > 0 && s.top_k < V) {
        n = s.top_k;
        std::partial_sort(idx.begin(), idx.begin() + n, idx.end(),
                          [&](int32_t a, int32_t b) { return l[a] > l[b] || (l[a] == l[b] && a < b); });
    } else {
        std::sort(idx.begin(), idx.end(), [&](int32_t a, int32_t b) { return l[a] > l[b] || (l[a] == l[b] && a < b); });
    }
    // Softmax of logit / temperature over the candidates, in double for a stable cumulative sum.
    std::vector<double> prob(static_cast<size_t>(n));
    const double mx = l[idx[0]] / static_cast<double>(s.temperature);
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += prob[i] = std::exp(l[idx[i]] / static_cast<double>(s.temperature) - mx);
    for (auto& q : prob) q /= sum;
    if (s.top_p < 1.0f) {
        double cum = 0;
        int64_t keep = n;
        for (int64_t i = 0; i < n; ++i) {
            cum += prob[i];
            if (cum >= s.top_p) {
                keep = i + 1;
                break;
            }
        }
        n = keep;
    }
    if (s.min_p > 0.0f) {
        const double floor = s.min_p * prob[0];
        int64_t keep = 1;
        while (keep < n && prob[keep] >= floor) ++keep;
        n = keep;
    }
    double total = 0;
    for (int64_t i = 0; i < n; ++i) total += prob[i];
    const double target = p.uniform * total;
    double cum = 0;
    for (int64_t i = 0; i < n; ++i) {
        cum += prob[i];
        if (target < cum) return idx[i];
    }
    return idx[n - 1];  // rounding at the top end of the CDF
}

}  // namespace cpu
}  // namespace volt
