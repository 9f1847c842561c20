// The conversation as the app keeps it: the source of truth for what was said. The volt_session is only an executor
// that the worker re-fills from this before every reply (volt.h has no "remove message"; regenerate and edit need
// one), so everything the session must know (documents included) is recorded here.
#pragma once

#include <QDateTime>
#include <QJsonObject>
#include <QList>
#include <QString>

namespace volt::desktop {

enum class Role { System, User, Assistant };

// "1 page", "3 pages" (the app ships no translations, so tr()'s %n plurals would read "page(s)").
QString countText(qint64 n, const QString& one, const QString& many);

QString roleName(Role role);                 // "system", "user", "assistant" (the JSON and Markdown spelling)
bool roleFromName(const QString& name, Role* out);

// A file attached to a user message. `path` is where the app reads it from (the conversation's own copy once sent,
// so a moved or deleted original does not break reloading); `name` is what the user attached.
struct Attachment {
    enum class Kind { Document };
    Kind kind = Kind::Document;
    QString path;
    QString name;
    qint64 tokens = -1;  // tokens its text takes in the prompt (-1: not measured)
    int pages = 0;       // PDF pages (0: not a PDF or not known)
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
