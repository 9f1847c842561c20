#include "samples/volt/cli.h"

#include <cstdio>

namespace volt::cli {

int exit_code_for(const Status& status) {
    switch (status.code()) {
        case StatusCode::kOk: return kExitOk;
        case StatusCode::kInvalidArgument:
        case StatusCode::kNotFound:
        case StatusCode::kDataLoss:
        case StatusCode::kUnimplemented: return kExitBadInput;
        case StatusCode::kResourceExhausted: return kExitResourceExhausted;
        case StatusCode::kCancelled: return kExitCancelled;
        case StatusCode::kInternal: return kExitInternal;
    }
    return kExitInternal;
}

int report_error(const Status& status) {
    std::fprintf(stderr, "volt: %s\n", status.message().c_str());
    return exit_code_for(status);
}

}  // namespace volt::cli
