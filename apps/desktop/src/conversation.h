// The conversation as the app keeps it: the source of truth for what was said. The volt_session is only an executor
// that the worker brings in line with this before every reply (continuing, branching from a restore point or
// truncating, see model_worker.h), so everything the session must know (images and documents included) is recorded
// here.
#pragma once

#include <QDateTime>
#include <QImage>
#include <QJsonObject>
#include <QMetaType>
#include <QList>
#include <QString>

namespace volt::desktop {

enum class Role { System, User, Assistant };

// "1 page", "3 pages" (the app ships no translations, so tr()'s %n plurals would read "page(s)").
QString countText(qint64 n, const QString& one, const QString& many);

// Pixels as Volt takes them from memory (volt_image_from_rgb) and as a pasted image is saved: 8-bit RGB, alpha
// dropped the way MiniMax-VL-01's processor drops it.
QImage toRgb888(const QImage& image);

QString roleName(Role role);                 // "system", "user", "assistant" (the JSON and Markdown spelling)
bool roleFromName(const QString& name, Role* out);

// A file attached to a user message. `path` is where the app reads it from (the conversation's own copy once sent,
// so a moved or deleted original does not break reloading); `name` is what the user attached.
// Images pasted from the clipboard have no file until they are sent: `pixels` holds them (RGB888, exactly what is
// measured and sent) and the conversation writes them as PNG next to its other attachments.
struct Attachment {
    enum class Kind { Document, Image };
    Kind kind = Kind::Document;
    QString path;
    QString name;
    qint64 tokens = -1;  // tokens it takes in the prompt (-1: not measured)
    int pages = 0;       // PDF pages (0: not a PDF or not known)
    int width = 0;       // images: size after EXIF orientation (0: not known yet)
    int height = 0;
    QImage pixels;       // pasted images, in memory (not saved in the JSON; the PNG copy is)

    bool isImage() const { return kind == Kind::Image; }
    // Identifies the attachment in the tray and in measurements: its path, or for pixels in memory their key.
    QString key() const;
    // What is known about it: {"3 pages", "321 tokens"} or {"640×480", "2340 tokens"} (unknown parts left out).
    QStringList details() const;
    // "photo.jpg · 640×480 · 2340 tokens": the tray, the messages and the model's attachment lines.
    QString describe() const;
};

// How one reply ran, as reported by the worker (DONE event plus the wall clock to the first token).
struct ReplyStats {
    double timeToFirstToken = -1;  // seconds from the request to the first streamed token (-1: none came)
    double tokensPerSecond = 0;
    double prefillSeconds = 0;
    qint64 promptTokens = 0;
    qint64 reusedTokens = 0;
    qint64 completionTokens = 0;
};

struct Message {
    enum class State { Complete, Streaming, Stopped, ContextFull, Failed };
    Role role = Role::User;
    QString text;
    QList<Attachment> attachments;
    State state = State::Complete;
    ReplyStats stats;      // assistant messages
    QString error;         // State::Failed: the readable reason
    QDateTime created;
};

QString stateName(Message::State state);
Message::State stateFromName(const QString& name);

struct Conversation {
    QString id;  // file-name-safe (a UUID without braces)
    QString title;
    QDateTime created;
    QDateTime updated;
    QList<Message> messages;

    static Conversation createNew();
    // The first user message's first line, shortened; "New conversation" while there is none.
    QString displayTitle() const;
};

QJsonObject toJson(const Conversation& c);
// Returns false (with a reason) for JSON that is not a conversation; unknown fields are ignored.
bool fromJson(const QJsonObject& o, Conversation* out, QString* error);

// The conversation as a Markdown document (export and "copy conversation"). `systemPrompt` is written first when
// not empty, since it shaped every answer.
QString toMarkdown(const Conversation& c, const QString& systemPrompt);

}  // namespace volt::desktop

Q_DECLARE_METATYPE(volt::desktop::Attachment)
