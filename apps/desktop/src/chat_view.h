// The conversation as a scrolling column of MessageWidgets, kept in step with a ConversationModel. Streaming text
// is re-rendered at most every 40 ms (Markdown is re-parsed whole, so per-token rendering would cost O(n^2) on long
// answers), and the view follows the answer only while the user is at the bottom.
#pragma once

#include <QScrollArea>
#include <QTimer>

#include "conversation.h"

class QVBoxLayout;

namespace volt::desktop {

class ConversationModel;
class MessageWidget;

class ChatView : public QScrollArea {
    Q_OBJECT
public:
    explicit ChatView(ConversationModel* model, QWidget* parent = nullptr);
    void setBusy(bool busy);                 // a reply is being written (edit/regenerate wait)
    MessageWidget* messageWidget(int row) const;
    int count() const { return int(widgets_.size()); }

signals:
    void copyRequested(int row);
    void editRequested(int row);
    void regenerateRequested();
    void attachmentActivated(const volt::desktop::Attachment& attachment);

private:
    void rebuild();
    void insertRows(int first, int last);
    void removeRows(int first, int last);
    void refresh(int row);
    void flushPending();

    ConversationModel* model_;
    QWidget* column_;
    QVBoxLayout* layout_;
    QWidget* placeholder_;
    QList<MessageWidget*> widgets_;
    QTimer renderTimer_;
    QList<int> pendingText_;
    bool busy_ = false;
    bool stickToBottom_ = true;
};

}  // namespace volt::desktop
