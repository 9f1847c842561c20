// Levelled, categorised logging that an embedder can redirect (the C ABI forwards it to its logging hook).
// Cheap when disabled: the level check happens before the message is built.
#pragma once

#include <functional>
#include <string_view>

#include "sdk/status.h"

namespace volt {

enum class LogLevel : int { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kOff = 4 };
enum class LogCategory : int { kGeneral = 0, kLoad, kKernel, kNccl, kVision, kText, kEngine, kCount };

std::string_view log_level_name(LogLevel level);
std::string_view log_category_name(LogCategory category);

// Receives every message at or above the threshold. Called from any thread; must be thread-safe.
using LogSink = std::function<void(LogLevel, LogCategory, std::string_view message)>;

// Replaces the sink (nullptr restores the default: stderr, "volt[load] warn: ...").
void set_log_sink(LogSink sink);
void set_log_level(LogLevel level);  // default kWarn, or VOLT_LOG_LEVEL=debug|info|warn|error|off
LogLevel log_level();
bool log_enabled(LogLevel level);
void log_message(LogLevel level, LogCategory category, std::string_view message);

}  // namespace volt

#define VOLT_LOG(level, category, ...)                                                        \
    do {                                                                                      \
        if (::volt::log_enabled(::volt::LogLevel::level))                                     \
            ::volt::log_message(::volt::LogLevel::level, ::volt::LogCategory::category,       \
                                ::volt::str_cat(__VA_ARGS__));                                \
    } while (0)
