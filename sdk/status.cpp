#include "sdk/status.h"

namespace volt {

std::string_view status_code_name(StatusCode code) {
    switch (code) {
        case StatusCode::kOk: return "OK";
        case StatusCode::kInvalidArgument: return "INVALID_ARGUMENT";
        case StatusCode::kNotFound: return "NOT_FOUND";
        case StatusCode::kDataLoss: return "DATA_LOSS";
        case StatusCode::kResourceExhausted: return "RESOURCE_EXHAUSTED";
        case StatusCode::kCancelled: return "CANCELLED";
        case StatusCode::kUnimplemented: return "UNIMPLEMENTED";
        case StatusCode::kInternal: return "INTERNAL";
    }
    return "UNKNOWN";
}

std::string Status::to_string() const {
    if (is_ok()) return "OK";
    return str_cat(status_code_name(code_), ": ", message_);
}

Status Status::with_context(std::string_view context) const {
    if (is_ok()) return *this;
    return Status(code_, str_cat(context, ": ", message_));
}

}  // namespace volt
