#include "message_widget.h"

#include <QHBoxLayout>
#include <QLabel>
#include <QStyle>
#include <QToolButton>
#include <QVBoxLayout>

#include "conversation_model.h"
#include "layout_items.h"
#include "markdown_view.h"
#include "thumbnails.h"

namespace volt::desktop {

namespace {
constexpr int kThumbnail = 160;  // message thumbnails: longest side (logical pixels)
}

MessageWidget::MessageWidget(QWidget* parent) : QFrame(parent) {
    setObjectName(QStringLiteral("message"));
    setFrameShape(QFrame::StyledPanel);
    auto* v = new QVBoxLayout(this);
    v->setContentsMargins(10, 6, 10, 6);
    v->setSpacing(4);

    auto* header = new QHBoxLayout;
    role_ = new QLabel(this);
    QFont bold = role_->font();
    bold.setBold(true);
    role_->setFont(bold);
    stats_ = new QLabel(this);
    stats_->setObjectName(QStringLiteral("stats"));
    stats_->setStyleSheet(QStringLiteral("color: palette(mid);"));
    header->addWidget(role_);
    header->addSpacing(8);
    header->addWidget(stats_, 1);
    copy_ = new QToolButton(this);
    copy_->setText(tr("Copy"));
    copy_->setToolTip(tr("Copy this message as Markdown"));
    edit_ = new QToolButton(this);
    edit_->setText(tr("Edit"));
    edit_->setToolTip(tr("Edit this message and ask again (the messages after it are replaced)"));
    regenerate_ = new QToolButton(this);
    regenerate_->setText(tr("Regenerate"));
    regenerate_->setToolTip(tr("Write this answer again"));
    for (QToolButton* b : {copy_, edit_, regenerate_}) {
        b->setAutoRaise(true);
        header->addWidget(b);
    }
    v->addLayout(header);

    attachments_ = new QWidget(this);
    attachmentsLayout_ = new QHBoxLayout(attachments_);
    attachmentsLayout_->setContentsMargins(0, 0, 0, 0);
    attachmentsLayout_->setAlignment(Qt::AlignLeft | Qt::AlignTop);
    attachmentsLayout_->addStretch(1);
    v->addWidget(attachments_);

    body_ = new MarkdownView(this);
    v->addWidget(body_);
    error_ = new QLabel(this);
    error_->setWordWrap(true);
    error_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    error_->setStyleSheet(QStringLiteral("color: #b00020;"));
    v->addWidget(error_);

    connect(Thumbnails::instance(), &Thumbnails::ready, this, [this](const QString& key) {
        QToolButton* b = thumbnails_.value(key);
        if (b) showThumbnail(b, Thumbnails::instance()->get(shown_[b->property("index").toInt()]));
    });
    connect(copy_, &QToolButton::clicked, this, &MessageWidget::copyRequested);
    connect(edit_, &QToolButton::clicked, this, &MessageWidget::editRequested);
    connect(regenerate_, &QToolButton::clicked, this, &MessageWidget::regenerateRequested);
}

void MessageWidget::setMessage(const Message& m, bool last, bool busy) {
    const bool user = m.role == Role::User;
    // Style sheets re-polish the whole widget tree; set it once per role, not on every streamed refresh.
    if (property("role").toString() != roleName(m.role)) {
        setProperty("role", roleName(m.role));
        setStyleSheet(user ? QStringLiteral("QFrame#message { background: #eef3fb; border: 1px solid #d6e0f0; border-radius: 8px; }")
                           : QStringLiteral("QFrame#message { background: palette(base); border: 1px solid palette(midlight); border-radius: 8px; }"));
    }
    role_->setText(user ? tr("You") : tr("Assistant"));
    QString stats = ConversationModel::statsText(m);
    if (m.state == Message::State::Streaming) stats = m.text.isEmpty() ? tr("reading the prompt…") : tr("writing…");
    stats_->setText(stats);
    edit_->setVisible(user);
    edit_->setEnabled(!busy);
    regenerate_->setVisible(!user && last && m.state != Message::State::Streaming);
    regenerate_->setEnabled(!busy);
    copy_->setEnabled(!m.text.isEmpty());

    if (m.attachments.size() != shown_.size() ||
        !std::equal(m.attachments.begin(), m.attachments.end(), shown_.begin(),
                    [](const Attachment& a, const Attachment& b) { return a.key() == b.key() && a.tokens == b.tokens; })) {
        delete_leading_items(attachmentsLayout_, 1);  // the trailing stretch stays
        thumbnails_.clear();
        shown_ = m.attachments;
        for (qsizetype i = 0; i < shown_.size(); ++i) {
            const Attachment& a = shown_[i];
            auto* chip = new QToolButton(attachments_);
            chip->setText(a.describe());
            if (a.isImage()) {
                // The picture itself, at thumbnail size (it arrives from the decoding thread if not made yet).
                chip->setToolButtonStyle(Qt::ToolButtonTextUnderIcon);
                chip->setIconSize(QSize(kThumbnail, kThumbnail));
                chip->setAutoRaise(true);
                chip->setProperty("index", int(i));
                chip->setIcon(style()->standardIcon(QStyle::SP_FileIcon));  // until the picture is decoded
                showThumbnail(chip, Thumbnails::instance()->get(a));
                chip->setToolTip(tr("Open %1 (zoom and pan)").arg(a.name));
                chip->setAccessibleName(tr("Image %1").arg(a.name));
                thumbnails_.insert(a.key(), chip);
            } else {
                chip->setIcon(style()->standardIcon(QStyle::SP_FileIcon));
                chip->setToolButtonStyle(Qt::ToolButtonTextBesideIcon);
                chip->setToolTip(tr("Open %1").arg(a.path));
            }
            connect(chip, &QToolButton::clicked, this, [this, a] { emit attachmentActivated(a); });
            attachmentsLayout_->insertWidget(attachmentsLayout_->count() - 1, chip, 0, Qt::AlignTop);
        }
    }
    attachments_->setVisible(!m.attachments.isEmpty());
    body_->setVisible(!m.text.isEmpty() || m.state != Message::State::Failed);
    setText(m.text);
    error_->setText(m.error);
    error_->setVisible(!m.error.isEmpty());
}

void MessageWidget::showThumbnail(QToolButton* button, const QImage& thumbnail) {
    if (thumbnail.isNull()) return;
    button->setIcon(QIcon(QPixmap::fromImage(thumbnail)));
    button->setIconSize(thumbnail.size().scaled(kThumbnail, kThumbnail, Qt::KeepAspectRatio));  // no empty bands
}

void MessageWidget::setText(const QString& markdown) { body_->setMarkdownText(markdown); }
QString MessageWidget::text() const { return body_->markdownText(); }

}  // namespace volt::desktop
