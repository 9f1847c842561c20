#include "sdk/log.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

namespace volt {
namespace {

LogLevel level_from_env() {
    const char* v = std::getenv("VOLT_LOG_LEVEL");
    if (!v) return LogLevel::kWarn;
    for (int l = 0; l <= static_cast<int>(LogLevel::kOff); ++l)
        if (log_level_name(static_cast<LogLevel>(l)) == v) return static_cast<LogLevel>(l);
    return LogLevel::kWarn;
}

std::atomic<int>& threshold() {
    static std::atomic<int> t{static_cast<int>(level_from_env())};
    return t;
}

struct SinkHolder {
    std::mutex mu;
    LogSink sink;
};
SinkHolder& holder() {
    static SinkHolder h;
    return h;
}

}  // namespace

std::string_view log_level_name(LogLevel level) {
    switch (level) {
        case LogLevel::kDebug: return "debug";
        case LogLevel::kInfo: return "info";
        case LogLevel::kWarn: return "warn";
        case LogLevel::kError: return "error";
        case LogLevel::kOff: return "off";
    }
    return "?";
}

std::string_view log_category_name(LogCategory category) {
    switch (category) {
        case LogCategory::kGeneral: return "volt";
        case LogCategory::kLoad: return "load";
        case LogCategory::kKernel: return "kernel";
        case LogCategory::kNccl: return "nccl";
        case LogCategory::kVision: return "vision";
        case LogCategory::kText: return "text";
        case LogCategory::kEngine: return "engine";
        case LogCategory::kCount: break;
    }
    return "?";
}

void set_log_sink(LogSink sink) {
    std::lock_guard lock(holder().mu);
    holder().sink = std::move(sink);
}

void set_log_level(LogLevel level) { threshold().store(static_cast<int>(level)); }
LogLevel log_level() { return static_cast<LogLevel>(threshold().load()); }
bool log_enabled(LogLevel level) {
    return level != LogLevel::kOff && static_cast<int>(level) >= threshold().load(std::memory_order_relaxed);
}

void log_message(LogLevel level, LogCategory category, std::string_view message) {
    if (!log_enabled(level)) return;
    std::lock_guard lock(holder().mu);  // serialises the sink: embedders' sinks need not lock
    if (holder().sink) {
        holder().sink(level, category, message);
        return;
    }
    std::string line = str_cat("volt[", log_category_name(category), "] ", log_level_name(level), ": ", message, "\n");
    std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace volt
