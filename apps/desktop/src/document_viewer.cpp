#include "document_viewer.h"

#include <QFile>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QLabel>
#include <QPlainTextEdit>
#include <QStringDecoder>
#include <QToolButton>
#include <QVBoxLayout>

#ifdef VOLT_DESKTOP_HAVE_QTPDF_WIDGETS
#include <QPdfDocument>
#include <QPdfView>
#endif

namespace volt::desktop {

namespace {
constexpr qint64 kPreviewBytes = 4 << 20;  // the preview only; the prompt always gets the whole document
}

DocumentViewer::DocumentViewer(const QString& path, const QString& name, QWidget* parent) : QDialog(parent) {
    setWindowTitle(name);
    setAttribute(Qt::WA_DeleteOnClose);
    resize(760, 860);
    auto* v = new QVBoxLayout(this);
    const bool pdf = QFileInfo(path).suffix().compare(QLatin1String("pdf"), Qt::CaseInsensitive) == 0;
#ifdef VOLT_DESKTOP_HAVE_QTPDF_WIDGETS
    if (pdf) {
        auto* doc = new QPdfDocument(this);
        auto* view = new QPdfView(this);
        view->setDocument(doc);
        view->setPageMode(QPdfView::PageMode::MultiPage);
        view->setZoomMode(QPdfView::ZoomMode::FitToWidth);
        auto* bar = new QHBoxLayout;
        auto* info = new QLabel(this);
        auto* zoomOut = new QToolButton(this);
        zoomOut->setText(QStringLiteral("−"));
        zoomOut->setToolTip(tr("Zoom out"));
        auto* zoomIn = new QToolButton(this);
        zoomIn->setText(QStringLiteral("+"));
        zoomIn->setToolTip(tr("Zoom in"));
        auto* fit = new QToolButton(this);
        fit->setText(tr("Fit width"));
        auto zoomBy = [view](double f) {
            const double z = view->zoomMode() == QPdfView::ZoomMode::Custom ? view->zoomFactor() : 1.0;
            view->setZoomMode(QPdfView::ZoomMode::Custom);
            view->setZoomFactor(std::clamp(z * f, 0.1, 8.0));
        };
        connect(zoomIn, &QToolButton::clicked, this, [zoomBy] { zoomBy(1.25); });
        connect(zoomOut, &QToolButton::clicked, this, [zoomBy] { zoomBy(0.8); });
        connect(fit, &QToolButton::clicked, this, [view] { view->setZoomMode(QPdfView::ZoomMode::FitToWidth); });
        bar->addWidget(info, 1);
        bar->addWidget(zoomOut);
        bar->addWidget(zoomIn);
        bar->addWidget(fit);
        v->addLayout(bar);
        v->addWidget(view, 1);
        const auto err = doc->load(path);
        info->setText(err == QPdfDocument::Error::None ? tr("%1 · %2 pages").arg(name).arg(doc->pageCount())
                                                       : tr("%1 cannot be shown (it may be encrypted or damaged).").arg(name));
        return;
    }
#endif
    auto* text = new QPlainTextEdit(this);
    text->setReadOnly(true);
    text->setLineWrapMode(QPlainTextEdit::WidgetWidth);
    auto* info = new QLabel(this);
    v->addWidget(info);
    v->addWidget(text, 1);
    QFile f(path);
    if (pdf) {
        info->setText(tr("This build shows PDF pages only with QtPdf; the text the model reads comes from Volt."));
        return;
    }
    if (!f.open(QIODevice::ReadOnly)) {
        info->setText(tr("%1 cannot be opened: %2").arg(path, f.errorString()));
        return;
    }
    const QByteArray bytes = f.read(kPreviewBytes);
    QStringDecoder dec(QStringDecoder::Utf8);
    text->setPlainText(dec(bytes));
    info->setText(f.size() > kPreviewBytes ? tr("%1 · preview of the first 4 MiB (the model reads all of it)").arg(name)
                                           : name);
}

}  // namespace volt::desktop
