#include "attachment_tray.h"

#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFileInfo>
#include <QFrame>
#include <QHBoxLayout>
#include <QMimeData>
#include <QPixmap>
#include <QStyle>
#include <QToolButton>

#include "chat_controller.h"
#include "layout_items.h"
#include "thumbnails.h"

namespace volt::desktop {

namespace {
constexpr int kChipIcon = 56;  // tray thumbnails: big enough to recognise the picture, small enough for a row
}

AttachmentTray::AttachmentTray(ChatController* controller, QWidget* parent)
    : QWidget(parent), controller_(controller) {
    setAcceptDrops(true);
    layout_ = new QHBoxLayout(this);
    layout_->setContentsMargins(0, 0, 0, 0);
    layout_->addStretch(1);
    connect(controller_, &ChatController::attachmentMeasured, this, &AttachmentTray::onMeasured);
    connect(controller_, &ChatController::imageMeasured, this, &AttachmentTray::onImageMeasured);
    connect(Thumbnails::instance(), &Thumbnails::ready, this, [this](const QString& key) {
        if (std::any_of(items_.begin(), items_.end(), [&](const Item& i) { return i.attachment.key() == key; }))
            rebuildChips();
    });
    setVisible(false);
}

const QStringList& AttachmentTray::imageSuffixes() {
    // What volt_image_load_file decodes (WebP and TIFF need a Volt build with OpenCV; else its error says so).
    static const QStringList kImages{"png", "jpg", "jpeg", "bmp", "gif", "webp", "tif", "tiff"};
    return kImages;
}

bool AttachmentTray::isImageFile(const QString& path) { return imageSuffixes().contains(QFileInfo(path).suffix().toLower()); }

void AttachmentTray::measure(Item& item) {
    item.error.clear();
    item.measuring = controller_->hasModel();
    if (!item.measuring) return;
    if (item.attachment.isImage()) controller_->measureImage(item.attachment);
    else controller_->measureAttachment(item.attachment.path);
}

void AttachmentTray::add(const Attachment& a) {
    items_.append({a, {}, false});
    measure(items_.last());
}

int AttachmentTray::addFiles(const QStringList& paths) {
    int added = 0;
    QStringList refusedWhy;
    for (const QString& p : paths) {
        const QFileInfo fi(p);
        if (!fi.isFile()) {
            refusedWhy << tr("%1: not a file.").arg(p);
            continue;
        }
        const bool image = isImageFile(p);
        if (const QString why = image ? controller_->imageRefusal(fi.fileName()) : QString(); !why.isEmpty()) {
            refusedWhy << why;
            continue;
        }
        const QString abs = fi.absoluteFilePath();
        if (std::any_of(items_.begin(), items_.end(), [&](const Item& i) { return i.attachment.path == abs; })) continue;
        Attachment a;
        a.kind = image ? Attachment::Kind::Image : Attachment::Kind::Document;
        a.path = abs;
        a.name = fi.fileName();
        add(a);
        ++added;
    }
    if (!refusedWhy.isEmpty()) emit refused(refusedWhy.join(QLatin1Char('\n')));
    if (added) {
        rebuildChips();
        emit changed();
    }
    return added;
}

bool AttachmentTray::addImageData(const QImage& image) {
    const QString name = ++pasted_ == 1 ? tr("Pasted image.png") : tr("Pasted image %1.png").arg(pasted_);
    QString why = image.isNull() ? tr("The pasted data is not an image Qt can read.") : controller_->imageRefusal(name);
    if (!why.isEmpty()) {
        emit refused(why);
        return false;
    }
    Attachment a;
    a.kind = Attachment::Kind::Image;
    a.name = name;
    a.pixels = image;
    a.width = image.width();
    a.height = image.height();
    add(a);
    rebuildChips();
    emit changed();
    return true;
}

void AttachmentTray::clear() {
    if (items_.isEmpty()) return;
    items_.clear();
    rebuildChips();
    emit changed();
}

void AttachmentTray::setAttachments(const QList<Attachment>& attachments) {
    items_.clear();
    for (const Attachment& a : attachments) items_.append({a, {}, false});
    rebuildChips();
    emit changed();
}

QList<Attachment> AttachmentTray::attachments() const {
    QList<Attachment> out;
    for (const Item& i : items_)
        if (i.error.isEmpty()) out.append(i.attachment);
    return out;
}

QString AttachmentTray::blockingReason() const {
    for (const Item& i : items_) {
        if (!i.error.isEmpty()) return tr("%1 cannot be used: %2 Remove it to send.").arg(i.attachment.name, i.error);
        if (i.measuring) return tr("Still reading %1…").arg(i.attachment.name);
    }
    return {};
}

void AttachmentTray::remeasure() {
    // A text-only model now: images cannot go with the message; say so at once rather than at Send.
    QStringList refusedWhy;
    items_.removeIf([&](const Item& i) {
        const QString why = i.attachment.isImage() ? controller_->imageRefusal(i.attachment.name) : QString();
        if (!why.isEmpty()) refusedWhy << why;
        return !why.isEmpty();
    });
    for (Item& i : items_) measure(i);
    rebuildChips();
    if (!refusedWhy.isEmpty()) {
        emit refused(refusedWhy.join(QLatin1Char('\n')));
        emit changed();
    }
}

void AttachmentTray::onMeasured(const QString& path, qint64 tokens, int pages, const QString& error) {
    for (Item& i : items_) {
        if (i.attachment.isImage() || i.attachment.path != path) continue;
        i.measuring = false;
        i.attachment.tokens = tokens;
        i.attachment.pages = pages;
        i.error = error;
    }
    rebuildChips();
    emit changed();
}

void AttachmentTray::onImageMeasured(const QString& key, qint64 tokens, int width, int height, const QString& error) {
    for (Item& i : items_) {
        if (!i.attachment.isImage() || i.attachment.key() != key) continue;
        i.measuring = false;
        i.attachment.tokens = tokens;
        if (width > 0) i.attachment.width = width;
        if (height > 0) i.attachment.height = height;
        i.error = error;
    }
    rebuildChips();
    emit changed();
}

void AttachmentTray::rebuildChips() {
    delete_leading_items(layout_, 1);  // the trailing stretch stays
    for (const Item& i : items_) {
        const Attachment& a = i.attachment;
        auto* chip = new QFrame(this);
        chip->setObjectName(QStringLiteral("chip"));
        chip->setStyleSheet(i.error.isEmpty()
                                ? QStringLiteral("QFrame#chip { border: 1px solid palette(mid); border-radius: 6px; }")
                                : QStringLiteral("QFrame#chip { border: 1px solid #b00020; border-radius: 6px; }"));
        auto* h = new QHBoxLayout(chip);
        h->setContentsMargins(6, 2, 2, 2);
        auto* open = new QToolButton(chip);
        open->setAutoRaise(true);
        open->setToolButtonStyle(Qt::ToolButtonTextBesideIcon);
        const QImage thumb = a.isImage() ? Thumbnails::instance()->get(a) : QImage();
        if (!thumb.isNull()) {
            open->setIcon(QIcon(QPixmap::fromImage(thumb)));
            open->setIconSize(QSize(kChipIcon, kChipIcon));
        } else {
            open->setIcon(style()->standardIcon(QStyle::SP_FileIcon));
        }
        QString label = a.describe();
        if (i.measuring) label += tr(" · counting tokens…");
        else if (!i.error.isEmpty()) label += tr(" · cannot be used");
        else if (a.tokens < 0) label += tr(" · tokens counted once a model is loaded");
        open->setText(label);
        open->setToolTip(i.error.isEmpty() ? (a.path.isEmpty() ? tr("Pasted image (saved with the conversation)") : a.path)
                                           : i.error);
        connect(open, &QToolButton::clicked, this, [this, a] { emit openRequested(a); });
        auto* remove = new QToolButton(chip);
        remove->setAutoRaise(true);
        remove->setText(QStringLiteral("✕"));
        remove->setToolTip(tr("Remove %1").arg(a.name));
        remove->setAccessibleName(tr("Remove %1").arg(a.name));
        const QString key = a.key();
        connect(remove, &QToolButton::clicked, this, [this, key] {
            items_.removeIf([&](const Item& it) { return it.attachment.key() == key; });
            rebuildChips();
            emit changed();
        });
        h->addWidget(open);
        h->addWidget(remove);
        layout_->insertWidget(layout_->count() - 1, chip);
    }
    setVisible(!items_.isEmpty());
}

void AttachmentTray::dragEnterEvent(QDragEnterEvent* event) {
    if (event->mimeData()->hasUrls() || event->mimeData()->hasImage()) event->acceptProposedAction();
}

bool AttachmentTray::addMime(const QMimeData* mime) {
    QStringList paths;
    for (const QUrl& u : mime->urls())
        if (u.isLocalFile()) paths << u.toLocalFile();
    if (!paths.isEmpty()) {
        addFiles(paths);
        return true;
    }
    if (mime->hasImage()) {  // a screenshot, or an image dragged out of a browser or an editor
        addImageData(qvariant_cast<QImage>(mime->imageData()));
        return true;
    }
    return false;
}

void AttachmentTray::dropEvent(QDropEvent* event) {
    if (addMime(event->mimeData())) event->acceptProposedAction();
}

}  // namespace volt::desktop
