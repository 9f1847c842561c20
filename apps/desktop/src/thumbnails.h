// Thumbnails of image attachments for the tray and the messages. Decoding a large photo or map takes a while, so
// they are made on a pool thread (EXIF orientation applied, as the model sees the image) and kept for the rest of
// the run; a widget asks, gets a null image until it is ready, and hears `ready(key)` then.
#pragma once

#include <QHash>
#include <QImage>
#include <QObject>
#include <QSet>
#include <QThreadPool>

#include "conversation.h"

namespace volt::desktop {

class Thumbnails : public QObject {
    Q_OBJECT
public:
    static constexpr int kSize = 320;  // longest side in pixels (shown at half that: sharp on HiDPI screens)

    static Thumbnails* instance();  // one per application (a child of qApp)
    ~Thumbnails() override;

    // The thumbnail of an image attachment (its pixels or its file); null while it is made or when the file
    // cannot be read (then `ready` still comes, and get() stays null).
    QImage get(const Attachment& image);
    // Reads an image file as the viewer shows it: EXIF orientation applied, large images allowed (up to the
    // 178-megapixel limit Volt itself has). Any thread. Null with *error when it cannot.
    static QImage readImage(const QString& path, QSize scaledToFit, QString* error);

signals:
    void ready(const QString& key);

private:
    explicit Thumbnails(QObject* parent);
    QHash<QString, QImage> done_;
    QSet<QString> pending_;
    QThreadPool pool_;
};

}  // namespace volt::desktop
