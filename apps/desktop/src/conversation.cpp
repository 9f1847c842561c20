#include "conversation.h"

#include <QJsonArray>
#include <QUuid>

namespace volt::desktop {

QString countText(qint64 n, const QString& one, const QString& many) {
    return QStringLiteral("%1 %2").arg(n).arg(n == 1 ? one : many);
}

QImage toRgb888(const QImage& image) {
    if (image.isNull() || image.format() == QImage::Format_RGB888) return image;
    if (!image.hasAlphaChannel()) return image.convertToFormat(QImage::Format_RGB888);
    // Qt's own conversion would blend onto black; PIL's convert("RGB") keeps each pixel's colour and drops alpha.
    const QImage rgba = image.convertToFormat(QImage::Format_RGBA8888);  // straight alpha, bytes R G B A
    QImage out(rgba.size(), QImage::Format_RGB888);
    if (rgba.isNull() || out.isNull()) return {};  // out of memory
    for (int y = 0; y < rgba.height(); ++y) {
        const uchar* src = rgba.constScanLine(y);
        uchar* dst = out.scanLine(y);
        for (int x = 0; x < rgba.width(); ++x, src += 4, dst += 3) {
            dst[0] = src[0];
            dst[1] = src[1];
            dst[2] = src[2];
        }
    }
    return out;
}

QString Attachment::key() const {
    if (!path.isEmpty() || pixels.isNull()) return path;
    return QStringLiteral("clipboard:%1").arg(pixels.cacheKey());
}

QStringList Attachment::details() const {
    QStringList out;
    if (pages > 0) out << countText(pages, QObject::tr("page"), QObject::tr("pages"));
    if (width > 0 && height > 0) out << QStringLiteral("%1×%2").arg(width).arg(height);
    if (tokens >= 0) out << countText(tokens, QObject::tr("token"), QObject::tr("tokens"));
    return out;
}

QString Attachment::describe() const { return (QStringList{name} + details()).join(QStringLiteral(" · ")); }

QString roleName(Role role) {
    switch (role) {
        case Role::System: return QStringLiteral("system");
        case Role::User: return QStringLiteral("user");
        case Role::Assistant: return QStringLiteral("assistant");
    }
    return {};
}

bool roleFromName(const QString& name, Role* out) {
    for (Role r : {Role::System, Role::User, Role::Assistant}) {
        if (roleName(r) == name) {
            *out = r;
            return true;
        }
    }
    return false;
}

QString stateName(Message::State state) {
    switch (state) {
        case Message::State::Complete: return QStringLiteral("complete");
        case Message::State::Streaming: return QStringLiteral("streaming");
        case Message::State::Stopped: return QStringLiteral("stopped");
        case Message::State::ContextFull: return QStringLiteral("context_full");
        case Message::State::Failed: return QStringLiteral("failed");
    }
    return {};
}

Message::State stateFromName(const QString& name) {
    for (auto s : {Message::State::Complete, Message::State::Stopped, Message::State::ContextFull,
                   Message::State::Failed}) {
        if (stateName(s) == name) return s;
    }
    // A reply still streaming when the app went away was cut there: it reloads as stopped, never as running.
    return name == stateName(Message::State::Streaming) ? Message::State::Stopped : Message::State::Complete;
}

Conversation Conversation::createNew() {
    Conversation c;
    c.id = QUuid::createUuid().toString(QUuid::WithoutBraces);
    c.created = c.updated = QDateTime::currentDateTimeUtc();
    return c;
}

QString Conversation::displayTitle() const {
    if (!title.isEmpty()) return title;
    for (const Message& m : messages) {
        if (m.role != Role::User) continue;
        QString line = m.text.section(QLatin1Char('\n'), 0, 0).trimmed();
        if (line.isEmpty() && !m.attachments.isEmpty()) line = m.attachments.first().name;
        if (line.size() > 48) line = line.left(47) + QChar(0x2026);
        if (!line.isEmpty()) return line;
    }
    return QObject::tr("New conversation");
}

namespace {

QJsonObject toJson(const Attachment& a) {
    QJsonObject o{{"kind", a.isImage() ? "image" : "document"}, {"path", a.path}, {"name", a.name}, {"tokens", a.tokens}};
    if (a.pages > 0) o["pages"] = a.pages;
    if (a.width > 0) o["width"] = a.width;
    if (a.height > 0) o["height"] = a.height;
    return o;
}

QJsonObject toJson(const ReplyStats& s) {
    return {{"time_to_first_token", s.timeToFirstToken}, {"tokens_per_second", s.tokensPerSecond},
            {"prefill_seconds", s.prefillSeconds},       {"prompt_tokens", s.promptTokens},
            {"reused_tokens", s.reusedTokens},           {"completion_tokens", s.completionTokens}};
}

}  // namespace

QJsonObject toJson(const Conversation& c) {
    QJsonArray messages;
    for (const Message& m : c.messages) {
        QJsonObject o{{"role", roleName(m.role)}, {"text", m.text}, {"state", stateName(m.state)},
                      {"created", m.created.toString(Qt::ISODateWithMs)}};
        if (!m.attachments.isEmpty()) {
            QJsonArray atts;
            for (const Attachment& a : m.attachments) atts.append(toJson(a));
            o["attachments"] = atts;
        }
        if (m.role == Role::Assistant) o["stats"] = toJson(m.stats);
        if (!m.error.isEmpty()) o["error"] = m.error;
        messages.append(o);
    }
    return {{"format", "volt-desktop-conversation"}, {"version", 1},
            {"id", c.id},                             {"title", c.title},
            {"created", c.created.toString(Qt::ISODateWithMs)},
            {"updated", c.updated.toString(Qt::ISODateWithMs)},
            {"messages", messages}};
}

bool fromJson(const QJsonObject& o, Conversation* out, QString* error) {
    if (o.value("format").toString() != QLatin1String("volt-desktop-conversation")) {
        *error = QObject::tr("not a Volt conversation file (format field missing)");
        return false;
    }
    Conversation c;
    c.id = o.value("id").toString();
    if (c.id.isEmpty()) {
        *error = QObject::tr("the conversation has no id");
        return false;
    }
    c.title = o.value("title").toString();
    c.created = QDateTime::fromString(o.value("created").toString(), Qt::ISODateWithMs);
    c.updated = QDateTime::fromString(o.value("updated").toString(), Qt::ISODateWithMs);
    const QJsonArray messages = o.value("messages").toArray();
    for (qsizetype i = 0; i < messages.size(); ++i) {
        const QJsonObject mo = messages[i].toObject();
        Message m;
        if (!roleFromName(mo.value("role").toString(), &m.role)) {
            *error = QObject::tr("message %1 has an unknown role \"%2\"").arg(i).arg(mo.value("role").toString());
            return false;
        }
        m.text = mo.value("text").toString();
        m.state = stateFromName(mo.value("state").toString());
        m.created = QDateTime::fromString(mo.value("created").toString(), Qt::ISODateWithMs);
        m.error = mo.value("error").toString();
        for (const QJsonValue& v : mo.value("attachments").toArray()) {
            const QJsonObject ao = v.toObject();
            Attachment a;
            a.kind = ao.value("kind").toString() == QLatin1String("image") ? Attachment::Kind::Image
                                                                            : Attachment::Kind::Document;
            a.path = ao.value("path").toString();
            a.name = ao.value("name").toString();
            a.tokens = ao.value("tokens").toInteger(-1);
            a.pages = ao.value("pages").toInt();
            a.width = ao.value("width").toInt();
            a.height = ao.value("height").toInt();
            m.attachments.append(a);
        }
        const QJsonObject so = mo.value("stats").toObject();
        m.stats.timeToFirstToken = so.value("time_to_first_token").toDouble(-1);
        m.stats.tokensPerSecond = so.value("tokens_per_second").toDouble();
        m.stats.prefillSeconds = so.value("prefill_seconds").toDouble();
        m.stats.promptTokens = so.value("prompt_tokens").toInteger();
        m.stats.reusedTokens = so.value("reused_tokens").toInteger();
        m.stats.completionTokens = so.value("completion_tokens").toInteger();
        c.messages.append(m);
    }
    *out = std::move(c);
    return true;
}

QString toMarkdown(const Conversation& c, const QString& systemPrompt) {
    QString md = QStringLiteral("# %1\n\n").arg(c.displayTitle());
    if (c.created.isValid()) md += QStringLiteral("_%1_\n\n").arg(c.created.toLocalTime().toString(Qt::ISODate));
    if (!systemPrompt.trimmed().isEmpty()) md += QStringLiteral("## System\n\n%1\n\n").arg(systemPrompt.trimmed());
    for (const Message& m : c.messages) {
        md += m.role == Role::User ? QStringLiteral("## User\n\n") : QStringLiteral("## Assistant\n\n");
        for (const Attachment& a : m.attachments) {
            md += (a.isImage() ? QObject::tr("> Attached image: **%1**") : QObject::tr("> Attached: **%1**")).arg(a.name);
            for (const QString& d : a.details()) md += ", " + d;
            md += QStringLiteral("\n\n");
        }
        md += m.text.trimmed();
        md += QStringLiteral("\n\n");
        if (m.state == Message::State::Stopped) md += QObject::tr("_(stopped)_\n\n");
        if (m.state == Message::State::ContextFull) md += QObject::tr("_(cut off: the context is full)_\n\n");
        if (m.state == Message::State::Failed) md += QObject::tr("_(failed: %1)_\n\n").arg(m.error);
    }
    return md;
}

}  // namespace volt::desktop
