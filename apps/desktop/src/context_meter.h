// How much of the context the conversation plus the draft takes, with a warning before the limit: amber when the
// answer may not fit, red when the prompt itself does not (then Send is refused; nothing is ever cut silently).
#pragma once

#include <QWidget>

class QLabel;
class QProgressBar;

namespace volt::desktop {

class ContextMeter : public QWidget {
    Q_OBJECT
public:
    enum class Level { Unknown, Ok, Tight, Over };
    explicit ContextMeter(QWidget* parent = nullptr);
    // used < 0: unknown (no model, or an attachment cannot be read).
    void setUsage(qint64 used, qint64 limit, qint64 reserve);
    Level level() const { return level_; }
    QString warning() const;

private:
    QProgressBar* bar_;
    QLabel* label_;
    Level level_ = Level::Unknown;
    qint64 used_ = -1, limit_ = 0, reserve_ = 0;
};

}  // namespace volt::desktop
