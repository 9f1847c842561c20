// Shows an attached image at any zoom, for maps and diagrams: the mouse wheel zooms around the pointer, + and -
// (buttons or keys) zoom around the centre, Fit shows it whole (and keeps fitting as the window resizes), 100% shows
// one image pixel per screen pixel; dragging pans. Pixels stay sharp when enlarged (no smoothing above 200%), so
// small print on a map can be read. Large files are decoded off the GUI thread.
#pragma once

#include <QDialog>
#include <QFutureWatcher>
#include <QImage>

#include "conversation.h"

class QGraphicsPixmapItem;
class QGraphicsView;
class QLabel;

namespace volt::desktop {

class ImageViewer : public QDialog {
    Q_OBJECT
public:
    ImageViewer(const Attachment& image, QWidget* parent = nullptr);
    ~ImageViewer() override;

    double zoom() const { return zoom_; }  // screen pixels per image pixel
    bool fitting() const { return fitting_; }
    bool isLoaded() const { return loaded_; }
    QString statusText() const;
    QGraphicsView* view() const { return view_; }

    void zoomBy(double factor, bool aroundPointer = false);
    void fit();
    void actualSize();

signals:
    void loaded();  // the image is shown (or its error is)

protected:
    void keyPressEvent(QKeyEvent* event) override;
    bool eventFilter(QObject* watched, QEvent* event) override;

private:
    void display(const QImage& image, const QString& error);
    void setZoom(double zoom, bool aroundPointer);
    void updateStatus();

    Attachment attachment_;
    QGraphicsView* view_;
    QGraphicsPixmapItem* item_;
    QLabel* status_;
    QFutureWatcher<QImage> watcher_;
    QString error_;
    double zoom_ = 1.0;
    bool fitting_ = true;
    bool loaded_ = false;
};

}  // namespace volt::desktop
