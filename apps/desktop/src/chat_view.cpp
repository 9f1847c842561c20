#include "chat_view.h"

#include <QLabel>
#include <QScrollBar>
#include <QVBoxLayout>

#include "conversation_model.h"
#include "message_widget.h"

namespace volt::desktop {

ChatView::ChatView(ConversationModel* model, QWidget* parent) : QScrollArea(parent), model_(model) {
    setWidgetResizable(true);
    setFrameShape(QFrame::NoFrame);
    setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
    column_ = new QWidget;
    layout_ = new QVBoxLayout(column_);
    layout_->setContentsMargins(16, 12, 16, 12);
    layout_->setSpacing(10);
    auto* hint = new QLabel(tr("<h3>Ask about an image, a document, a table or anything else.</h3>"
                               "<p>Open a model, type a question, and attach images (with a MiniMax-VL-01 model), PDF, "
                               "text or Markdown files with Attach…, by dragging them here, or by pasting them.</p>"),
                            column_);
    hint->setAlignment(Qt::AlignCenter);
    hint->setWordWrap(true);
    hint->setStyleSheet(QStringLiteral("color: palette(mid);"));
    placeholder_ = hint;
    layout_->addWidget(placeholder_);
    layout_->addStretch(1);
    setWidget(column_);

    renderTimer_.setSingleShot(true);
    renderTimer_.setInterval(40);
    connect(&renderTimer_, &QTimer::timeout, this, &ChatView::flushPending);

    QScrollBar* bar = verticalScrollBar();
    connect(bar, &QScrollBar::valueChanged, this, [this, bar](int v) { stickToBottom_ = v >= bar->maximum() - 24; });
    connect(bar, &QScrollBar::rangeChanged, this, [this, bar](int, int max) {
        if (stickToBottom_) bar->setValue(max);
    });

    connect(model_, &QAbstractItemModel::modelReset, this, &ChatView::rebuild);
    connect(model_, &QAbstractItemModel::rowsInserted, this,
            [this](const QModelIndex&, int first, int last) { insertRows(first, last); });
    connect(model_, &QAbstractItemModel::rowsRemoved, this,
            [this](const QModelIndex&, int first, int last) { removeRows(first, last); });
    connect(model_, &QAbstractItemModel::dataChanged, this,
            [this](const QModelIndex& from, const QModelIndex& to, const QList<int>& roles) {
                for (int r = from.row(); r <= to.row(); ++r) {
                    const bool textOnly = !roles.isEmpty() && !roles.contains(ConversationModel::StateRole);
                    if (textOnly) {  // streaming: coalesce
                        if (!pendingText_.contains(r)) pendingText_.append(r);
                        if (!renderTimer_.isActive()) renderTimer_.start();
                    } else {
                        refresh(r);
                    }
                }
            });
    rebuild();
}

MessageWidget* ChatView::messageWidget(int row) const { return row >= 0 && row < widgets_.size() ? widgets_[row] : nullptr; }

void ChatView::setBusy(bool busy) {
    busy_ = busy;
    for (int r = 0; r < widgets_.size(); ++r) refresh(r);
}

void ChatView::rebuild() {
    pendingText_.clear();
    qDeleteAll(widgets_);
    widgets_.clear();
    stickToBottom_ = true;
    if (model_->rowCount() > 0) insertRows(0, model_->rowCount() - 1);
    placeholder_->setVisible(widgets_.isEmpty());
}

void ChatView::insertRows(int first, int last) {
    for (int r = first; r <= last; ++r) {
        auto* w = new MessageWidget(column_);
        // Rows only ever change at the end (append, truncate), so a widget's row is its index in widgets_.
        connect(w, &MessageWidget::copyRequested, this, [this, w] { emit copyRequested(int(widgets_.indexOf(w))); });
        connect(w, &MessageWidget::editRequested, this, [this, w] { emit editRequested(int(widgets_.indexOf(w))); });
        connect(w, &MessageWidget::regenerateRequested, this, &ChatView::regenerateRequested);
        connect(w, &MessageWidget::attachmentActivated, this, &ChatView::attachmentActivated);
        widgets_.insert(r, w);
        layout_->insertWidget(r + 1, w);  // after the placeholder
    }
    // The previous last message loses its Regenerate button.
    for (int r = std::max(0, first - 1); r < widgets_.size(); ++r) refresh(r);
    placeholder_->setVisible(widgets_.isEmpty());
    stickToBottom_ = true;  // a new message (the user's or the answer's) always comes into view
}

void ChatView::removeRows(int first, int last) {
    for (int r = last; r >= first; --r) {
        pendingText_.removeAll(r);
        delete widgets_.takeAt(r);
    }
    if (!widgets_.isEmpty()) refresh(int(widgets_.size()) - 1);
    placeholder_->setVisible(widgets_.isEmpty());
}

void ChatView::refresh(int row) {
    if (row < 0 || row >= widgets_.size() || row >= model_->rowCount()) return;
    pendingText_.removeAll(row);
    widgets_[row]->setMessage(model_->message(row), row == model_->lastRow(), busy_);
}

void ChatView::flushPending() {
    const QList<int> rows = pendingText_;
    pendingText_.clear();
    for (int r : rows) refresh(r);
}

}  // namespace volt::desktop
