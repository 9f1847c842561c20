#include "thumbnails.h"

#include <QCoreApplication>
#include <QImageReader>
#include <QPointer>

namespace volt::desktop {

namespace {
constexpr qint64 kMaxPixels = 178956970;  // volt.h: images above PIL's limit are refused, so none is shown larger
}

Thumbnails::Thumbnails(QObject* parent) : QObject(parent) {
    pool_.setMaxThreadCount(1);  // decoding is memory-bound; one at a time keeps the GUI's cores free
    pool_.setObjectName(QStringLiteral("volt-thumbnails"));
}

Thumbnails::~Thumbnails() { pool_.waitForDone(); }

Thumbnails* Thumbnails::instance() {
    static QPointer<Thumbnails> self;
    if (!self) self = new Thumbnails(QCoreApplication::instance());
    return self;
}

QImage Thumbnails::readImage(const QString& path, QSize scaledToFit, QString* error) {
    QImageReader reader(path);
    reader.setAutoTransform(true);
    const QSize size = reader.size();
    if (size.isValid() && qint64(size.width()) * size.height() > kMaxPixels) {
        *error = QObject::tr("%1 is %2×%3, more than the %4 pixels Volt accepts")
                     .arg(path).arg(size.width()).arg(size.height()).arg(kMaxPixels);
        return {};
    }
    // The default 256 MiB allocation limit refuses large maps the model itself accepts.
    if (QImageReader::allocationLimit() > 0 && QImageReader::allocationLimit() < 1024) QImageReader::setAllocationLimit(1024);
    if (scaledToFit.isValid() && size.isValid() && (size.width() > scaledToFit.width() || size.height() > scaledToFit.height()))
        reader.setScaledSize(size.scaled(scaledToFit, Qt::KeepAspectRatio));  // JPEG decodes straight to it: fast
    QImage image = reader.read();
    if (image.isNull()) {
        *error = QObject::tr("%1: %2").arg(path, reader.errorString());
        return {};
    }
    return image;
}

QImage Thumbnails::get(const Attachment& a) {
    const QString key = a.key();
    if (auto it = done_.constFind(key); it != done_.constEnd()) return *it;
    if (key.isEmpty() || pending_.contains(key)) return {};
    pending_.insert(key);
    const QString path = a.path;
    const QImage pixels = a.pixels;
    pool_.start([this, key, path, pixels] {
        QImage thumb;
        if (!pixels.isNull()) {
            thumb = pixels;
        } else {
            QString ignored;  // the tray and the messages show the model's own error for unreadable images
            thumb = readImage(path, QSize(kSize, kSize), &ignored);
        }
        if (!thumb.isNull() && (thumb.width() > kSize || thumb.height() > kSize))
            thumb = thumb.scaled(kSize, kSize, Qt::KeepAspectRatio, Qt::SmoothTransformation);
        QMetaObject::invokeMethod(this, [this, key, thumb] {
            pending_.remove(key);
            done_.insert(key, thumb);
            emit ready(key);
        }, Qt::QueuedConnection);
    });
    return {};
}

}  // namespace volt::desktop
