#include "image_viewer.h"

#include <QGraphicsPixmapItem>
#include <QGraphicsView>
#include <QHBoxLayout>
#include <QKeyEvent>
#include <QLabel>
#include <QScrollBar>
#include <QToolButton>
#include <QVBoxLayout>
#include <QWheelEvent>
#include <QtConcurrent/QtConcurrentRun>

#include <cmath>

#include "thumbnails.h"

namespace volt::desktop {

namespace {
constexpr double kMinZoom = 0.01;
constexpr double kMaxZoom = 32.0;
constexpr double kStep = 1.25;
}  // namespace

ImageViewer::ImageViewer(const Attachment& image, QWidget* parent) : QDialog(parent), attachment_(image) {
    setWindowTitle(image.name);
    setAttribute(Qt::WA_DeleteOnClose);
    resize(900, 720);
    auto* v = new QVBoxLayout(this);
    auto* bar = new QHBoxLayout;
    status_ = new QLabel(tr("Loading %1…").arg(image.name), this);
    status_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    bar->addWidget(status_, 1);
    auto button = [&](const QString& text, const QString& tip, auto slot) {
        auto* b = new QToolButton(this);
        b->setText(text);
        b->setToolTip(tip);
        b->setAccessibleName(tip);
        connect(b, &QToolButton::clicked, this, slot);
        bar->addWidget(b);
    };
    button(QStringLiteral("−"), tr("Zoom out (-)"), [this] { zoomBy(1 / kStep); });
    button(QStringLiteral("+"), tr("Zoom in (+)"), [this] { zoomBy(kStep); });
    button(tr("Fit"), tr("Fit the window (0)"), [this] { fit(); });
    button(tr("100%"), tr("Actual size: one image pixel per screen pixel (1)"), [this] { actualSize(); });
    v->addLayout(bar);

    view_ = new QGraphicsView(this);
    view_->setScene(new QGraphicsScene(view_));
    item_ = view_->scene()->addPixmap({});
    view_->setDragMode(QGraphicsView::ScrollHandDrag);
    view_->setTransformationAnchor(QGraphicsView::AnchorViewCenter);
    view_->setResizeAnchor(QGraphicsView::AnchorViewCenter);
    view_->setBackgroundBrush(palette().dark());
    view_->setFocusPolicy(Qt::StrongFocus);
    view_->viewport()->installEventFilter(this);  // wheel: zoom instead of scroll; resize: keep fitting
    v->addWidget(view_, 1);

    connect(&watcher_, &QFutureWatcher<QImage>::finished, this, [this] { display(watcher_.result(), error_); });
    if (!image.pixels.isNull()) {
        display(image.pixels, {});
    } else {
        const QString path = image.path;
        watcher_.setFuture(QtConcurrent::run([this, path] { return Thumbnails::readImage(path, {}, &error_); }));
    }
}

ImageViewer::~ImageViewer() { watcher_.waitForFinished(); }

void ImageViewer::display(const QImage& image, const QString& error) {
    loaded_ = true;
    if (image.isNull()) {
        error_ = error.isEmpty() ? tr("%1 cannot be shown.").arg(attachment_.name) : error;
        status_->setText(tr("Cannot show the image: %1").arg(error_));
    } else {
        item_->setPixmap(QPixmap::fromImage(image));
        view_->setSceneRect(item_->boundingRect());
        fit();
    }
    emit loaded();
}

void ImageViewer::setZoom(double zoom, bool aroundPointer) {
    zoom = std::clamp(zoom, kMinZoom, kMaxZoom);
    view_->setTransformationAnchor(aroundPointer ? QGraphicsView::AnchorUnderMouse : QGraphicsView::AnchorViewCenter);
    view_->setTransform(QTransform::fromScale(zoom, zoom));
    view_->setTransformationAnchor(QGraphicsView::AnchorViewCenter);
    zoom_ = zoom;
    // Reduced: smooth. Enlarged past 2x: the pixels themselves, so lines and small print stay crisp.
    item_->setTransformationMode(zoom < 2.0 ? Qt::SmoothTransformation : Qt::FastTransformation);
    updateStatus();
}

void ImageViewer::zoomBy(double factor, bool aroundPointer) {
    fitting_ = false;
    setZoom(zoom_ * factor, aroundPointer);
}

void ImageViewer::fit() {
    fitting_ = true;
    const QRectF r = item_->boundingRect();
    if (r.isEmpty()) return;
    const QSize room = view_->viewport()->size() - QSize(4, 4);
    setZoom(std::min({room.width() / r.width(), room.height() / r.height(), 1.0}), false);
    view_->centerOn(item_);
}

void ImageViewer::actualSize() {
    fitting_ = false;
    setZoom(1.0, false);
}

QString ImageViewer::statusText() const { return status_->text(); }

void ImageViewer::updateStatus() {
    if (!error_.isEmpty()) return;
    const QSize size = item_->pixmap().size();
    QStringList parts{attachment_.name, QStringLiteral("%1×%2").arg(size.width()).arg(size.height())};
    if (attachment_.tokens >= 0) parts << countText(attachment_.tokens, tr("token"), tr("tokens"));
    parts << QStringLiteral("%1%").arg(std::lround(zoom_ * 100)) + (fitting_ ? tr(" (fit)") : QString());
    status_->setText(parts.join(QStringLiteral(" · ")));
}

void ImageViewer::keyPressEvent(QKeyEvent* event) {
    switch (event->key()) {
        case Qt::Key_Plus:
        case Qt::Key_Equal: zoomBy(kStep); return;
        case Qt::Key_Minus: zoomBy(1 / kStep); return;
        case Qt::Key_0: fit(); return;
        case Qt::Key_1: actualSize(); return;
        default: QDialog::keyPressEvent(event);
    }
}

bool ImageViewer::eventFilter(QObject* watched, QEvent* event) {
    if (watched == view_->viewport() && event->type() == QEvent::Wheel) {
        const auto* wheel = static_cast<QWheelEvent*>(event);
        const int delta = wheel->angleDelta().y();
        if (delta != 0) zoomBy(std::pow(kStep, delta / 120.0), true);  // one notch: one step, around the pointer
        return true;
    }
    if (watched == view_->viewport() && event->type() == QEvent::Resize && fitting_ && loaded_) fit();
    return QDialog::eventFilter(watched, event);
}

}  // namespace volt::desktop
