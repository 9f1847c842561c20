#include "attachment_tray.h"

#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QLabel>
#include <QMimeData>
#include <QStyle>
#include <QToolButton>

#include "chat_controller.h"

namespace volt::desktop {

AttachmentTray::AttachmentTray(ChatController* controller, QWidget* parent)
    : QWidget(parent), controller_(controller) {
    setAcceptDrops(true);
    layout_ = new QHBoxLayout(this);
    layout_->setContentsMargins(0, 0, 0, 0);
    layout_->addStretch(1);
    connect(controller_, &ChatController::attachmentMeasured, this, &AttachmentTray::onMeasured);
    setVisible(false);
}

bool AttachmentTray::isImageFile(const QString& path) {
    static const QStringList kImages{"png", "jpg", "jpeg", "bmp", "gif", "webp", "tif", "tiff"};
    return kImages.contains(QFileInfo(path).suffix().toLower());
}

int AttachmentTray::addFiles(const QStringList& paths) {
    int added = 0;
    QStringList refusedWhy;
    for (const QString& p : paths) {
        const QFileInfo fi(p);
        if (isImageFile(p)) {
            refusedWhy << tr("%1: image input is not available yet (this Volt build's C API has no image "
                             "functions); attach PDF, text or Markdown files.").arg(fi.fileName());
            continue;
        }
        if (!fi.isFile()) {
            refusedWhy << tr("%1: not a file.").arg(p);
            continue;
        }
        const QString abs = fi.absoluteFilePath();
        if (std::any_of(items_.begin(), items_.end(), [&](const Item& i) { return i.attachment.path == abs; })) continue;
        Item item;
        item.attachment.path = abs;
        item.attachment.name = fi.fileName();
        item.measuring = controller_->hasModel();
        items_.append(item);
        if (item.measuring) controller_->measureAttachment(abs);
        ++added;
    }
    if (!refusedWhy.isEmpty()) emit refused(refusedWhy.join(QLatin1Char('\n')));
    if (added) {
        rebuildChips();
        emit changed();
    }
    return added;
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
        if (!i.error.isEmpty()) return tr("%1 cannot be read: remove it to send.").arg(i.attachment.name);
        if (i.measuring) return tr("Still reading %1…").arg(i.attachment.name);
    }
    return {};
}

void AttachmentTray::remeasure() {
    for (Item& i : items_) {
        i.measuring = true;
        i.error.clear();
        controller_->measureAttachment(i.attachment.path);
    }
    rebuildChips();
}

void AttachmentTray::onMeasured(const QString& path, qint64 tokens, int pages, const QString& error) {
    for (Item& i : items_) {
        if (i.attachment.path != path) continue;
        i.measuring = false;
        i.attachment.tokens = tokens;
        i.attachment.pages = pages;
        i.error = error;
    }
    rebuildChips();
    emit changed();
}

void AttachmentTray::rebuildChips() {
    while (layout_->count() > 1) delete layout_->takeAt(0)->widget();
    for (const Item& i : items_) {
        auto* chip = new QFrame(this);
        chip->setObjectName(QStringLiteral("chip"));
        chip->setStyleSheet(i.error.isEmpty()
                                ? QStringLiteral("QFrame#chip { border: 1px solid palette(mid); border-radius: 6px; }")
                                : QStringLiteral("QFrame#chip { border: 1px solid #b00020; border-radius: 6px; }"));
        auto* h = new QHBoxLayout(chip);
        h->setContentsMargins(6, 2, 2, 2);
        auto* open = new QToolButton(chip);
        open->setAutoRaise(true);
        open->setIcon(style()->standardIcon(QStyle::SP_FileIcon));
        open->setToolButtonStyle(Qt::ToolButtonTextBesideIcon);
        QString label = i.attachment.name;
        if (i.attachment.pages > 0) label += QStringLiteral(" · ") + countText(i.attachment.pages, tr("page"), tr("pages"));
        if (i.measuring) label += tr(" · counting tokens…");
        else if (!i.error.isEmpty()) label += tr(" · cannot be read");
        else if (i.attachment.tokens >= 0) label += QStringLiteral(" · ") + countText(i.attachment.tokens, tr("token"), tr("tokens"));
        else label += tr(" · tokens counted once a model is loaded");
        open->setText(label);
        open->setToolTip(i.error.isEmpty() ? i.attachment.path : i.error);
        const Attachment a = i.attachment;
        connect(open, &QToolButton::clicked, this, [this, a] { emit openRequested(a.path, a.name); });
        auto* remove = new QToolButton(chip);
        remove->setAutoRaise(true);
        remove->setText(QStringLiteral("✕"));
        remove->setToolTip(tr("Remove %1").arg(i.attachment.name));
        remove->setAccessibleName(tr("Remove %1").arg(i.attachment.name));
        const QString path = i.attachment.path;
        connect(remove, &QToolButton::clicked, this, [this, path] {
            items_.removeIf([&](const Item& it) { return it.attachment.path == path; });
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
    if (event->mimeData()->hasUrls()) event->acceptProposedAction();
}

void AttachmentTray::dropEvent(QDropEvent* event) {
    QStringList paths;
    for (const QUrl& u : event->mimeData()->urls())
        if (u.isLocalFile()) paths << u.toLocalFile();
    if (!paths.isEmpty()) {
        addFiles(paths);
        event->acceptProposedAction();
    }
}

}  // namespace volt::desktop
