// Shows an attached document: PDF pages (QtPdf, with zoom and scrolling) or the text of a text file, so the user
// can check what was attached before asking about it.
#pragma once

#include <QDialog>

namespace volt::desktop {

class DocumentViewer : public QDialog {
    Q_OBJECT
public:
    DocumentViewer(const QString& path, const QString& name, QWidget* parent = nullptr);
};

}  // namespace volt::desktop
