#include "log_bridge.h"

#include "volt.h"

namespace volt::desktop {

LogBridge::LogBridge(QObject* parent) : QObject(parent) { volt_log_set(&LogBridge::onLog, this, VOLT_LOG_INFO); }

LogBridge::~LogBridge() { volt_log_set(nullptr, nullptr, VOLT_LOG_WARN); }

void LogBridge::onLog(void* self, int32_t level, int32_t /*category*/, const char* message) {
    emit static_cast<LogBridge*>(self)->message(level, QString::fromUtf8(message));
}

}  // namespace volt::desktop
