// Files and images waiting to go with the next message. Each shows its token cost, measured by the worker before
// anything is sent (documents: pages too; images: a thumbnail and the size), or why it cannot be used (unreadable,
// a text-only model, larger than the context). Accepts drops; the composer forwards pasted files and image data.
#pragma once

#include <QWidget>

#include "conversation.h"

class QHBoxLayout;
class QMimeData;

namespace volt::desktop {

class ChatController;

class AttachmentTray : public QWidget {
    Q_OBJECT
public:
    explicit AttachmentTray(ChatController* controller, QWidget* parent = nullptr);

    // Adds files (images by their extension, the rest as documents); what cannot be attached at all (folders,
    // images with a text-only model) is refused with a message. Returns how many were added.
    int addFiles(const QStringList& paths);
    // Adds image data (pasted or dropped without a file) as "Pasted image N.png". Returns false when refused.
    bool addImageData(const QImage& image);
    // Local files (addFiles) or else image data (addImageData) from a drop or a paste; false when it had neither.
    bool addMime(const QMimeData* mime);
    void clear();
    void setAttachments(const QList<Attachment>& attachments);  // edit: a message's attachments back in the tray
    QList<Attachment> attachments() const;                      // usable ones (measured, no error)
    bool isEmpty() const { return items_.isEmpty(); }
    // Empty when everything can be sent; else why not (still counting, or unusable files).
    QString blockingReason() const;
    void remeasure();  // after a model was loaded

    static const QStringList& imageSuffixes();  // "png", "jpg", …
    static bool isImageFile(const QString& path);

signals:
    void changed();
    void refused(const QString& message);
    void openRequested(const volt::desktop::Attachment& attachment);

protected:
    void dragEnterEvent(QDragEnterEvent* event) override;
    void dropEvent(QDropEvent* event) override;

private:
    struct Item {
        Attachment attachment;
        QString error;
        bool measuring = false;
    };
    void add(const Attachment& a);
    void measure(Item& item);
    void onMeasured(const QString& path, qint64 tokens, int pages, const QString& error);
    void onImageMeasured(const QString& key, qint64 tokens, int width, int height, const QString& error);
    void rebuildChips();

    ChatController* controller_;
    QHBoxLayout* layout_;
    QList<Item> items_;
    int pasted_ = 0;
};

}  // namespace volt::desktop
