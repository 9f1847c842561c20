// Emptying a layout of the widgets it shows (chips, thumbnails) while keeping its trailing items (a stretch).
#pragma once

#include <QLayout>
#include <QWidget>

namespace volt::desktop {

// Deletes every item of `layout` but the last `keep`, with its widget: QLayout::takeAt hands the caller the item,
// which deleting the widget alone would leak.
inline void delete_leading_items(QLayout* layout, int keep) {
    while (layout->count() > keep) {
        QLayoutItem* item = layout->takeAt(0);
        delete item->widget();
        delete item;
    }
}

}  // namespace volt::desktop
