// A read-only Markdown view that is exactly as tall as its content, so a column of them scrolls as one page (the
// chat view). QTextDocument::setMarkdown does the parsing (CommonMark + GitHub tables); this adds what chat
// answers need on top: shaded code blocks (with "Copy code block" in their context menu), ruled tables, links
// that open in the browser.
#pragma once

#include <QTextBrowser>

namespace volt::desktop {

class MarkdownView : public QTextBrowser {
    Q_OBJECT
public:
    explicit MarkdownView(QWidget* parent = nullptr);
    void setMarkdownText(const QString& markdown);
    const QString& markdownText() const { return markdown_; }
    // The whole code block around a document position (all its lines), or an empty string outside code.
    QString codeBlockAt(int position) const;
    QSize sizeHint() const override;
    QSize minimumSizeHint() const override;

protected:
    void resizeEvent(QResizeEvent* event) override;
    void contextMenuEvent(QContextMenuEvent* event) override;  // adds "Copy code block" inside code

private:
    void decorate();
    void fitHeight();
    QString markdown_;
};

}  // namespace volt::desktop
