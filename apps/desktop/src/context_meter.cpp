#include "context_meter.h"

#include <QHBoxLayout>
#include <QLabel>
#include <QLocale>
#include <QProgressBar>

namespace volt::desktop {

ContextMeter::ContextMeter(QWidget* parent) : QWidget(parent) {
    auto* h = new QHBoxLayout(this);
    h->setContentsMargins(0, 0, 0, 0);
    bar_ = new QProgressBar(this);
    bar_->setTextVisible(false);
    bar_->setFixedWidth(140);
    bar_->setFixedHeight(10);
    bar_->setToolTip(tr("Context used by the conversation, the attachments and your draft"));
    label_ = new QLabel(this);
    h->addWidget(bar_);
    h->addWidget(label_, 1);
    setUsage(-1, 0, 0);
}

QString ContextMeter::warning() const {
    const QLocale loc;
    switch (level_) {
        case Level::Tight:
            return tr("The answer may be cut short: %1 tokens are left of %2, and an answer may take up to %3.")
                .arg(loc.toString(limit_ - used_), loc.toString(limit_), loc.toString(reserve_));
        case Level::Over:
            return tr("Too long for the context: %1 tokens of %2. Remove an attachment, start a new conversation or "
                      "raise the context length in Settings.")
                .arg(loc.toString(used_), loc.toString(limit_));
        default: return {};
    }
}

void ContextMeter::setUsage(qint64 used, qint64 limit, qint64 reserve) {
    used_ = used;
    limit_ = limit;
    reserve_ = reserve;
    const QLocale loc;
    if (used < 0 || limit <= 0) {
        level_ = Level::Unknown;
        bar_->setRange(0, 1);
        bar_->setValue(0);
        label_->setText(limit > 0 ? tr("context: –") : QString());
        label_->setToolTip({});
        return;
    }
    level_ = used >= limit ? Level::Over : used + reserve > limit ? Level::Tight : Level::Ok;
    // QProgressBar takes int; scale long contexts (MiniMax: 1M+ tokens) to per-mille.
    bar_->setRange(0, 1000);
    bar_->setValue(int(std::min<qint64>(1000, used * 1000 / limit)));
    const char* color = level_ == Level::Over ? "#c62828" : level_ == Level::Tight ? "#ef8f00" : "#2e7d32";
    bar_->setStyleSheet(QStringLiteral("QProgressBar::chunk { background: %1; }").arg(QLatin1String(color)));
    QString text = tr("%1 / %2 tokens").arg(loc.toString(used), loc.toString(limit));
    if (level_ == Level::Tight) text += tr(" · the answer may not fit");
    if (level_ == Level::Over) text += tr(" · too long");
    label_->setText(text);
    label_->setStyleSheet(level_ == Level::Ok ? QString() : QStringLiteral("color: %1;").arg(QLatin1String(color)));
    label_->setToolTip(warning());
}

}  // namespace volt::desktop
