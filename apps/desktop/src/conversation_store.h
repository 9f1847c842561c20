// Conversations on disk: one JSON file per conversation under <root>/conversations/, and the attached files copied
// into <root>/conversations/<id>/ so that a conversation reloads (and its images and documents re-enter the prompt)
// even when the originals moved or were deleted. Images are copied byte for byte (never re-encoded or downscaled);
// images pasted from the clipboard are written there as lossless PNG. JSON rather than SQLite: no Qt SQL driver to install, files a user can read and back up.
// Writes go to a temporary file renamed over the old one (QSaveFile), so a crash never leaves half a conversation.
#pragma once

#include <QDateTime>
#include <QHash>
#include <QList>
#include <QString>

#include "conversation.h"

namespace volt::desktop {

struct ConversationSummary {
    QString id;
    QString title;
    QDateTime updated;
};

class ConversationStore {
public:
    // `root`: the app data directory (QStandardPaths::AppDataLocation in the app, a temporary one in tests).
    explicit ConversationStore(QString root);

    QString root() const { return root_; }
    QString directory() const;  // <root>/conversations

    // Newest first. Files that do not parse are skipped (and named in *warnings when given).
    QList<ConversationSummary> list(QStringList* warnings = nullptr) const;
    bool save(const Conversation& c, QString* error) const;
    bool load(const QString& id, Conversation* out, QString* error) const;
    bool remove(const QString& id, QString* error) const;

    // Copies `source` into the conversation's attachment folder (a unique name there) and returns the copy's path,
    // or an empty string with *error set. A file already inside that folder is returned as it is.
    QString importAttachment(const QString& conversationId, const QString& source, QString* error) const;
    // A new, unique path for `fileName` in the conversation's attachment folder, created empty so that no other
    // attachment takes the name before the caller writes the file; empty with *error on failure.
    QString reserveAttachment(const QString& conversationId, const QString& fileName, QString* error) const;

private:
    QString filePath(const QString& id) const;
    QString attachmentDir(const QString& id) const;
    // The conversation's attachment folder (created) and a name in it that no file has yet.
    QString freePath(const QString& conversationId, const QString& fileName, QString* error) const;
    QString root_;
    // list() runs after every save; re-parsing every conversation each time would grow with the history, so
    // summaries are kept per file and re-read only when the file's time or size changed.
    struct Cached {
        QDateTime modified;
        qint64 size = 0;
        ConversationSummary summary;
    };
    mutable QHash<QString, Cached> cache_;
};

}  // namespace volt::desktop
