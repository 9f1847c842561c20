// Volt's log (volt_log_set) into the app: the callback may run on any thread, so it only emits a signal, which Qt
// queues to the GUI thread's log panel.
#pragma once

#include <QObject>

namespace volt::desktop {

class LogBridge : public QObject {
    Q_OBJECT
public:
    explicit LogBridge(QObject* parent = nullptr);
    ~LogBridge() override;  // restores Volt's default sink before the object goes away

signals:
    void message(int level, const QString& text);

private:
    static void onLog(void* self, int32_t level, int32_t category, const char* message);
};

}  // namespace volt::desktop
