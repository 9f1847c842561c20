#include "conversation_model.h"

namespace volt::desktop {

ConversationModel::ConversationModel(QObject* parent) : QAbstractListModel(parent) {}

int ConversationModel::rowCount(const QModelIndex& parent) const {
    return parent.isValid() ? 0 : int(conv_.messages.size());
}

QVariant ConversationModel::data(const QModelIndex& index, int role) const {
    if (!index.isValid() || index.row() >= conv_.messages.size()) return {};
    const Message& m = conv_.messages.at(index.row());
    switch (role) {
        case Qt::DisplayRole:
        case TextRole: return m.text;
        case RoleRole: return int(m.role);
        case StateRole: return int(m.state);
        case ErrorRole: return m.error;
        case StatsTextRole: return statsText(m);
        case AttachmentsTextRole: return attachmentsText(m);
        default: return {};
    }
}

QHash<int, QByteArray> ConversationModel::roleNames() const {
    return {{RoleRole, "role"},   {TextRole, "text"},           {StateRole, "state"},
            {ErrorRole, "error"}, {StatsTextRole, "statsText"}, {AttachmentsTextRole, "attachmentsText"}};
}

void ConversationModel::setConversation(const Conversation& c) {
    beginResetModel();
    conv_ = c;
    endResetModel();
}

int ConversationModel::append(const Message& m) {
    const int row = int(conv_.messages.size());
    beginInsertRows({}, row, row);
    conv_.messages.append(m);
    if (!conv_.messages.last().created.isValid()) conv_.messages.last().created = QDateTime::currentDateTimeUtc();
    endInsertRows();
    touch();
    return row;
}

void ConversationModel::appendText(int row, const QString& text) {
    if (row < 0 || row >= conv_.messages.size() || text.isEmpty()) return;
    conv_.messages[row].text += text;
    rowChanged(row, {TextRole, Qt::DisplayRole});
}

void ConversationModel::setText(int row, const QString& text) {
    if (row < 0 || row >= conv_.messages.size()) return;
    conv_.messages[row].text = text;
    rowChanged(row, {TextRole, Qt::DisplayRole});
    touch();
}

void ConversationModel::setAttachments(int row, const QList<Attachment>& attachments) {
    if (row < 0 || row >= conv_.messages.size()) return;
    conv_.messages[row].attachments = attachments;
    rowChanged(row, {AttachmentsTextRole, StateRole});  // StateRole: views refresh the whole message at once
    touch();
}

void ConversationModel::finish(int row, Message::State state, const ReplyStats& stats, const QString& error) {
    if (row < 0 || row >= conv_.messages.size()) return;
    conv_.messages[row].stats = stats;
    conv_.messages[row].state = state;
    conv_.messages[row].error = error;
    rowChanged(row, {StateRole, StatsTextRole, ErrorRole});
    touch();
}

void ConversationModel::setState(int row, Message::State state, const QString& error) {
    if (row < 0 || row >= conv_.messages.size()) return;
    conv_.messages[row].state = state;
    conv_.messages[row].error = error;
    rowChanged(row, {StateRole, ErrorRole, StatsTextRole});
}

void ConversationModel::truncate(int rows) {
    rows = std::max(0, rows);
    if (rows >= conv_.messages.size()) return;
    beginRemoveRows({}, rows, int(conv_.messages.size()) - 1);
    conv_.messages.resize(rows);
    endRemoveRows();
    touch();
}

void ConversationModel::touch() { conv_.updated = QDateTime::currentDateTimeUtc(); }

void ConversationModel::rowChanged(int row, const QList<int>& roles) {
    const QModelIndex i = index(row);
    emit dataChanged(i, i, roles);
}

QString ConversationModel::statsText(const Message& m) {
    if (m.role != Role::Assistant) return {};
    QStringList parts;
    const ReplyStats& s = m.stats;
    if (s.timeToFirstToken >= 0) parts << tr("%1 s to first token").arg(s.timeToFirstToken, 0, 'f', 2);
    if (s.tokensPerSecond > 0) parts << tr("%1 tokens/s").arg(s.tokensPerSecond, 0, 'f', 1);
    if (s.completionTokens > 0) parts << countText(s.completionTokens, tr("token"), tr("tokens"));
    if (s.reusedTokens > 0) parts << tr("%1 of %2 prompt tokens cached").arg(s.reusedTokens).arg(s.promptTokens);
    switch (m.state) {
        case Message::State::Stopped: parts << tr("stopped"); break;
        case Message::State::ContextFull: parts << tr("cut off: the context is full"); break;
        default: break;
    }
    return parts.join(QStringLiteral(" · "));
}

QString ConversationModel::attachmentsText(const Message& m) {
    QStringList lines;
    for (const Attachment& a : m.attachments) lines << a.describe();
    return lines.join(QLatin1Char('\n'));
}

}  // namespace volt::desktop
