#include "composer.h"

#include <QKeyEvent>
#include <QMimeData>

namespace volt::desktop {

Composer::Composer(QWidget* parent) : QPlainTextEdit(parent) {
    setPlaceholderText(tr("Ask something… (Enter sends, Shift+Enter for a new line)"));
    setTabChangesFocus(true);
}

QSize Composer::sizeHint() const { return {400, fontMetrics().lineSpacing() * 4 + 12}; }

void Composer::keyPressEvent(QKeyEvent* event) {
    if ((event->key() == Qt::Key_Return || event->key() == Qt::Key_Enter) &&
        !(event->modifiers() & (Qt::ShiftModifier | Qt::AltModifier))) {
        emit submitted();
        return;
    }
    QPlainTextEdit::keyPressEvent(event);
}

bool Composer::canInsertFromMimeData(const QMimeData* source) const {
    return source->hasUrls() || source->hasImage() || QPlainTextEdit::canInsertFromMimeData(source);
}

void Composer::insertFromMimeData(const QMimeData* source) {
    if (source->hasUrls()) {
        QStringList paths;
        for (const QUrl& u : source->urls())
            if (u.isLocalFile()) paths << u.toLocalFile();
        if (!paths.isEmpty()) {
            emit filesPasted(paths);
            return;
        }
    }
    if (source->hasImage()) {
        emit imageDataPasted(qvariant_cast<QImage>(source->imageData()));
        return;
    }
    QPlainTextEdit::insertFromMimeData(source);
}

}  // namespace volt::desktop
