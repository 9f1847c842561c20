#include "markdown_view.h"

#include <QAbstractTextDocumentLayout>
#include <QApplication>
#include <QClipboard>
#include <QContextMenuEvent>
#include <QMenu>
#include <QScrollBar>
#include <QTextBlock>
#include <QTextCursor>
#include <QTextFrame>
#include <QTextTable>

#include <cmath>
#include <memory>

namespace volt::desktop {

MarkdownView::MarkdownView(QWidget* parent) : QTextBrowser(parent) {
    setOpenExternalLinks(true);
    setFrameShape(QFrame::NoFrame);
    setVerticalScrollBarPolicy(Qt::ScrollBarAlwaysOff);  // the chat view scrolls, not each message
    setHorizontalScrollBarPolicy(Qt::ScrollBarAsNeeded);  // long code lines do not wrap
    setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Fixed);
    setContextMenuPolicy(Qt::DefaultContextMenu);
    viewport()->setAutoFillBackground(false);
    setStyleSheet(QStringLiteral("QTextBrowser { background: transparent; }"));
    document()->setDocumentMargin(2);
    connect(document()->documentLayout(), &QAbstractTextDocumentLayout::documentSizeChanged, this,
            &MarkdownView::fitHeight);
}

void MarkdownView::setMarkdownText(const QString& markdown) {
    if (markdown == markdown_) return;
    markdown_ = markdown;
    setMarkdown(markdown);
    decorate();
    fitHeight();
}

void MarkdownView::decorate() {
    QTextDocument* doc = document();
    const QColor codeBg = palette().color(QPalette::AlternateBase).darker(104);
    QTextCursor cursor(doc);
    cursor.beginEditBlock();
    for (QTextBlock b = doc->begin(); b.isValid(); b = b.next()) {
        QTextBlockFormat f = b.blockFormat();
        // Fenced and indented code blocks come out of the Markdown reader as non-breaking blocks.
        if (f.hasProperty(QTextFormat::BlockCodeFence) || f.nonBreakableLines()) {
            f.setBackground(codeBg);
            f.setLeftMargin(6);
            f.setRightMargin(6);
            QTextCursor c(b);
            c.setBlockFormat(f);
        }
    }
    // Tables: the reader leaves them without rules, which makes numeric tables hard to read.
    QList<QTextFrame*> frames{doc->rootFrame()};
    while (!frames.isEmpty()) {
        QTextFrame* fr = frames.takeFirst();
        frames.append(fr->childFrames());
        if (auto* table = qobject_cast<QTextTable*>(fr)) {
            QTextTableFormat tf = table->format();
            tf.setBorder(1);
            tf.setBorderStyle(QTextFrameFormat::BorderStyle_Solid);
            tf.setBorderBrush(palette().color(QPalette::Mid));
            tf.setBorderCollapse(true);
            tf.setCellPadding(4);
            tf.setCellSpacing(0);
            table->setFormat(tf);
        }
    }
    cursor.endEditBlock();
}

void MarkdownView::fitHeight() {
    int h = int(std::ceil(document()->size().height())) + contentsMargins().top() + contentsMargins().bottom();
    if (horizontalScrollBar()->isVisible() || document()->idealWidth() > viewport()->width() + 1)
        h += horizontalScrollBar()->sizeHint().height();
    if (h != height()) setFixedHeight(std::max(h, fontMetrics().height() + 4));
}

namespace {
bool isCode(const QTextBlock& b) {
    return b.isValid() && (b.blockFormat().hasProperty(QTextFormat::BlockCodeFence) || b.blockFormat().nonBreakableLines());
}
}  // namespace

QString MarkdownView::codeBlockAt(int position) const {
    QTextBlock b = document()->findBlock(position);
    if (!isCode(b)) return {};
    QTextBlock first = b;
    while (isCode(first.previous())) first = first.previous();
    QStringList lines;
    for (QTextBlock it = first; isCode(it); it = it.next()) lines << it.text();
    return lines.join(QLatin1Char('\n'));
}

void MarkdownView::contextMenuEvent(QContextMenuEvent* event) {
    std::unique_ptr<QMenu> menu(createStandardContextMenu(event->pos()));
    const QString code = codeBlockAt(cursorForPosition(event->pos()).position());
    if (!code.isEmpty()) {
        QAction* copyCode = new QAction(tr("Copy code block"), menu.get());
        connect(copyCode, &QAction::triggered, this, [code] { QApplication::clipboard()->setText(code); });
        menu->insertAction(menu->actions().value(0), copyCode);
        menu->insertSeparator(menu->actions().value(1));
    }
    menu->exec(event->globalPos());
}

QSize MarkdownView::sizeHint() const { return {QTextBrowser::sizeHint().width(), height()}; }
QSize MarkdownView::minimumSizeHint() const { return {50, height()}; }

void MarkdownView::resizeEvent(QResizeEvent* event) {
    QTextBrowser::resizeEvent(event);
    fitHeight();
}

}  // namespace volt::desktop
