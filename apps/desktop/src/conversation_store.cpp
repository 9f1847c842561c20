#include "conversation_store.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QJsonDocument>
#include <QSaveFile>

#include <algorithm>

namespace volt::desktop {

namespace {

// Ids become file names: only what Conversation::createNew makes (hex digits and dashes) is accepted, so a
// crafted id can never name a path outside the store.
bool validId(const QString& id) {
    if (id.isEmpty() || id.size() > 64) return false;
    return std::all_of(id.begin(), id.end(), [](QChar c) { return c.isLetterOrNumber() || c == QLatin1Char('-'); });
}

}  // namespace

ConversationStore::ConversationStore(QString root) : root_(std::move(root)) {}

QString ConversationStore::directory() const { return QDir(root_).filePath(QStringLiteral("conversations")); }
QString ConversationStore::filePath(const QString& id) const { return QDir(directory()).filePath(id + ".json"); }
QString ConversationStore::attachmentDir(const QString& id) const { return QDir(directory()).filePath(id); }

QList<ConversationSummary> ConversationStore::list(QStringList* warnings) const {
    QList<ConversationSummary> out;
    const QDir dir(directory());
    QHash<QString, Cached> seen;
    for (const QFileInfo& fi : dir.entryInfoList({QStringLiteral("*.json")}, QDir::Files)) {
        const QString id = fi.completeBaseName();
        auto hit = cache_.constFind(id);
        if (hit != cache_.constEnd() && hit->modified == fi.lastModified() && hit->size == fi.size()) {
            seen.insert(id, *hit);
            out.append(hit->summary);
            continue;
        }
        Conversation c;
        QString error;
        if (!load(id, &c, &error)) {
            if (warnings) warnings->append(error);
            continue;
        }
        const ConversationSummary summary{c.id, c.displayTitle(), c.updated};
        seen.insert(id, {fi.lastModified(), fi.size(), summary});
        out.append(summary);
    }
    cache_ = std::move(seen);
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.updated > b.updated; });
    return out;
}

bool ConversationStore::save(const Conversation& c, QString* error) const {
    if (!validId(c.id)) {
        *error = QObject::tr("invalid conversation id \"%1\"").arg(c.id);
        return false;
    }
    if (!QDir().mkpath(directory())) {
        *error = QObject::tr("cannot create %1").arg(directory());
        return false;
    }
    QSaveFile f(filePath(c.id));
    if (!f.open(QIODevice::WriteOnly)) {
        *error = QObject::tr("cannot write %1: %2").arg(f.fileName(), f.errorString());
        return false;
    }
    f.write(QJsonDocument(toJson(c)).toJson(QJsonDocument::Indented));
    if (!f.commit()) {
        *error = QObject::tr("cannot write %1: %2").arg(f.fileName(), f.errorString());
        return false;
    }
    return true;
}

bool ConversationStore::load(const QString& id, Conversation* out, QString* error) const {
    if (!validId(id)) {
        *error = QObject::tr("invalid conversation id \"%1\"").arg(id);
        return false;
    }
    QFile f(filePath(id));
    if (!f.open(QIODevice::ReadOnly)) {
        *error = QObject::tr("cannot read %1: %2").arg(f.fileName(), f.errorString());
        return false;
    }
    QJsonParseError pe;
    const QJsonDocument doc = QJsonDocument::fromJson(f.readAll(), &pe);
    if (pe.error != QJsonParseError::NoError) {
        *error = QObject::tr("%1: %2 at byte %3").arg(f.fileName(), pe.errorString()).arg(pe.offset);
        return false;
    }
    QString why;
    if (!fromJson(doc.object(), out, &why)) {
        *error = QStringLiteral("%1: %2").arg(f.fileName(), why);
        return false;
    }
    return true;
}

bool ConversationStore::remove(const QString& id, QString* error) const {
    if (!validId(id)) {
        *error = QObject::tr("invalid conversation id \"%1\"").arg(id);
        return false;
    }
    QDir(attachmentDir(id)).removeRecursively();
    if (QFile::exists(filePath(id)) && !QFile::remove(filePath(id))) {
        *error = QObject::tr("cannot delete %1").arg(filePath(id));
        return false;
    }
    return true;
}

QString ConversationStore::freePath(const QString& conversationId, const QString& fileName, QString* error) const {
    if (!validId(conversationId)) {
        *error = QObject::tr("invalid conversation id \"%1\"").arg(conversationId);
        return {};
    }
    const QString dirPath = attachmentDir(conversationId);
    if (!QDir().mkpath(dirPath)) {
        *error = QObject::tr("cannot create %1").arg(dirPath);
        return {};
    }
    const QDir dir(dirPath);
    const QFileInfo fi(fileName);
    QString name = fi.fileName();
    for (int n = 2; dir.exists(name); ++n)
        name = QStringLiteral("%1 (%2)%3").arg(fi.completeBaseName()).arg(n).arg(fi.suffix().isEmpty() ? QString() : "." + fi.suffix());
    return dir.filePath(name);
}

QString ConversationStore::importAttachment(const QString& conversationId, const QString& source, QString* error) const {
    const QFileInfo src(source);
    if (validId(conversationId) && src.absolutePath() == QFileInfo(attachmentDir(conversationId)).absoluteFilePath())
        return src.absoluteFilePath();
    const QString dest = freePath(conversationId, src.fileName(), error);
    if (dest.isEmpty()) return {};
    if (!QFile::copy(source, dest)) {
        *error = QObject::tr("cannot copy %1 into the conversation: %2").arg(source, QFile(source).exists() ? QObject::tr("copy failed") : QObject::tr("the file no longer exists"));
        return {};
    }
    return dest;
}

QString ConversationStore::reserveAttachment(const QString& conversationId, const QString& fileName, QString* error) const {
    const QString dest = freePath(conversationId, fileName, error);
    if (dest.isEmpty()) return {};
    QFile f(dest);
    if (!f.open(QIODevice::WriteOnly)) {
        *error = QObject::tr("cannot create %1: %2").arg(dest, f.errorString());
        return {};
    }
    return dest;
}

}  // namespace volt::desktop
