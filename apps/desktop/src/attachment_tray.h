// Files waiting to go with the next message: each shows its pages and token cost (measured by the worker before
// anything is sent) or why it cannot be used. Accepts drops; the composer forwards pasted files here.
#pragma once

#include <QWidget>

#include "conversation.h"

class QHBoxLayout;

namespace volt::desktop {

class ChatController;

class AttachmentTray : public QWidget {
    Q_OBJECT
public:
    explicit AttachmentTray(ChatController* controller, QWidget* parent = nullptr);

    // Adds files; ones that cannot be attached at all (folders, images while volt.h has no image input) are
    // refused with a message. Returns how many were added.
    int addFiles(const QStringList& paths);
    void clear();
    void setAttachments(const QList<Attachment>& attachments);  // edit: a message's attachments back in the tray
    QList<Attachment> attachments() const;                      // usable ones (measured, no error)
    bool isEmpty() const { return items_.isEmpty(); }
    // Empty when everything can be sent; else why not (still counting, or unreadable files).
    QString blockingReason() const;
    void remeasure();  // after a model was loaded

    static bool isImageFile(const QString& path);

signals:
    void changed();
    void refused(const QString& message);
    void openRequested(const QString& path, const QString& name);

protected:
    void dragEnterEvent(QDragEnterEvent* event) override;
    void dropEvent(QDropEvent* event) override;

private:
    struct Item {
        Attachment attachment;
        QString error;
        bool measuring = false;
    };
    void onMeasured(const QString& path, qint64 tokens, int pages, const QString& error);
    void rebuildChips();

    ChatController* controller_;
    QHBoxLayout* layout_;
    QList<Item> items_;
};

}  // namespace volt::desktop
