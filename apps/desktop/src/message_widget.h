// One message in the chat view: who said it, its Markdown, its attachments (images as thumbnails, documents as
// chips; clicking opens them), how the reply ran, and the actions that apply to it (copy; edit for the user's
// messages; regenerate for the last answer).
#pragma once

#include <QFrame>
#include <QHash>

#include "conversation.h"

class QImage;
class QLabel;
class QHBoxLayout;
class QToolButton;

namespace volt::desktop {

class MarkdownView;

class MessageWidget : public QFrame {
    Q_OBJECT
public:
    explicit MessageWidget(QWidget* parent = nullptr);
    // `last`: the conversation's last message (regenerate applies to it); `busy`: a reply is being written.
    void setMessage(const Message& m, bool last, bool busy);
    void setText(const QString& markdown);
    QString text() const;

signals:
    void copyRequested();
    void editRequested();
    void regenerateRequested();
    void attachmentActivated(const volt::desktop::Attachment& attachment);

private:
    static void showThumbnail(QToolButton* button, const QImage& thumbnail);

    QLabel* role_;
    QLabel* stats_;
    QWidget* attachments_;
    QHBoxLayout* attachmentsLayout_;
    MarkdownView* body_;
    QLabel* error_;
    QToolButton* copy_;
    QToolButton* edit_;
    QToolButton* regenerate_;
    QList<Attachment> shown_;
    QHash<QString, QToolButton*> thumbnails_;  // image key -> its button (the thumbnail arrives later)
};

}  // namespace volt::desktop
