// The list model of one conversation's messages, for the chat view. The controller owns the edits (append, stream,
// truncate); views only read. Streaming appends change one row's text, so views repaint that row only.
#pragma once

#include <QAbstractListModel>

#include "conversation.h"

namespace volt::desktop {

class ConversationModel : public QAbstractListModel {
    Q_OBJECT
public:
    enum Roles {
        RoleRole = Qt::UserRole + 1,  // Role as int
        TextRole,                     // Markdown text
        StateRole,                    // Message::State as int
        ErrorRole,
        StatsTextRole,                // "1.2 s to first token · 35.0 tokens/s · 120 tokens" (assistant)
        AttachmentsTextRole,          // one line per attachment: name, pages, tokens
    };

    explicit ConversationModel(QObject* parent = nullptr);

    int rowCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QHash<int, QByteArray> roleNames() const override;

    const Conversation& conversation() const { return conv_; }
    const Message& message(int row) const { return conv_.messages.at(row); }
    int lastRow() const { return int(conv_.messages.size()) - 1; }

    void setConversation(const Conversation& c);
    int append(const Message& m);                     // returns the new row
    void appendText(int row, const QString& text);    // streaming
    void setText(int row, const QString& text);
    void setAttachments(int row, const QList<Attachment>& attachments);
    void finish(int row, Message::State state, const ReplyStats& stats, const QString& error = {});
    void setState(int row, Message::State state, const QString& error = {});
    void truncate(int rows);                          // keep the first `rows` messages
    void touch();                                     // the conversation changed now (updated time)

    static QString statsText(const Message& m);
    static QString attachmentsText(const Message& m);

private:
    void rowChanged(int row, const QList<int>& roles);
    Conversation conv_;
};

}  // namespace volt::desktop
