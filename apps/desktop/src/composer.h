// The message editor: Enter sends, Shift+Enter starts a new line; pasted or dropped files go to the attachment
// tray instead of becoming their path as text.
#pragma once

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
    void imageDataPasted();

protected:
    void keyPressEvent(QKeyEvent* event) override;
    bool canInsertFromMimeData(const QMimeData* source) const override;
    void insertFromMimeData(const QMimeData* source) override;
};

}  // namespace volt::desktop
