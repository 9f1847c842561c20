// The message editor: Enter sends, Shift+Enter starts a new line; pasted or dropped files and image data (a
// screenshot on the clipboard) go to the attachment tray instead of becoming text.
#pragma once

#include <QImage>
#include <QPlainTextEdit>

namespace volt::desktop {

class Composer : public QPlainTextEdit {
    Q_OBJECT
public:
    explicit Composer(QWidget* parent = nullptr);
    QSize sizeHint() const override;

signals:
    void submitted();
    void filesPasted(const QStringList& paths);
    void imageDataPasted(const QImage& image);

protected:
    void keyPressEvent(QKeyEvent* event) override;
    bool canInsertFromMimeData(const QMimeData* source) const override;
    void insertFromMimeData(const QMimeData* source) override;
};

}  // namespace volt::desktop
