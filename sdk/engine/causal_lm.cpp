#include "sdk/engine/causal_lm.h"

namespace volt {

Status check_token_ids(std::span<const int32_t> ids, int64_t vocab_size) {
    if (ids.empty()) return invalid_argument("empty token list: at least one token id is needed");
    for (size_t i = 0; i < ids.size(); ++i)
        if (ids[i] < 0 || ids[i] >= vocab_size)
            return invalid_argument("token id ", ids[i], " at position ", i, " is outside the vocabulary [0, ",
                                    vocab_size, ")");
    return Status::ok();
}

}  // namespace volt
