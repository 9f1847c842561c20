#include "chat_controller.h"

#include <QFileInfo>

namespace volt::desktop {

DeviceChoice DeviceChoice::fromKey(const QString& key, int gpuCount, bool* ok) {
    DeviceChoice d;
    bool good = true;
    if (key == QLatin1String("all")) {
        for (int i = 0; i < gpuCount; ++i) d.gpuIds << i;
    } else if (key.startsWith(QLatin1String("gpu:")) || key.startsWith(QLatin1String("gpus:"))) {
        for (const QString& part : key.section(QLatin1Char(':'), 1).split(QLatin1Char(','), Qt::SkipEmptyParts)) {
            bool num = false;
            const int id = part.trimmed().toInt(&num);
            if (!num || id < 0 || id >= gpuCount || d.gpuIds.contains(id)) {
                good = false;
                break;
            }
            d.gpuIds << id;
        }
    } else if (key != QLatin1String("cpu")) {
        good = false;
    }
    if (!good) d.gpuIds.clear();
    d.cuda = !d.gpuIds.isEmpty();
    if (ok) *ok = good && (key == QLatin1String("cpu") || d.cuda);
    return d;
}

QString DeviceChoice::keyFor(const QList<int>& gpuIds) {
    if (gpuIds.isEmpty()) return QStringLiteral("cpu");
    if (gpuIds.size() == 1) return QStringLiteral("gpu:%1").arg(gpuIds.first());
    QStringList parts;
    for (int id : gpuIds) parts << QString::number(id);
    return QStringLiteral("gpus:") + parts.join(QLatin1Char(','));
}

ChatController::ChatController(ConversationStore* store, QObject* parent)
    : QObject(parent), store_(store), worker_(new ModelWorker) {
    thread_.setObjectName(QStringLiteral("volt-model-worker"));
    worker_->moveToThread(&thread_);
    connect(worker_, &ModelWorker::loadProgress, this, [this](quint64 id, int phase, double fraction) {
        if (id == activeLoad_) emit loadProgress(ModelWorker::phaseName(phase), fraction);
    });
    connect(worker_, &ModelWorker::loaded, this, &ChatController::onLoaded);
    connect(worker_, &ModelWorker::loadFailed, this, &ChatController::onLoadFailed);
    connect(worker_, &ModelWorker::replyToken, this, &ChatController::onToken);
    connect(worker_, &ModelWorker::replyFinished, this, &ChatController::onReplyFinished);
    connect(worker_, &ModelWorker::replyFailed, this, &ChatController::onReplyFailed);
    connect(worker_, &ModelWorker::documentMeasured, this, &ChatController::attachmentMeasured);
    connect(worker_, &ModelWorker::imageMeasured, this, &ChatController::imageMeasured);
    connect(worker_, &ModelWorker::tokensCounted, this, &ChatController::onTokensCounted);
    thread_.start();

    savePool_.setMaxThreadCount(1);
    savePool_.setObjectName(QStringLiteral("volt-conversation-saver"));
    measurePool_.setMaxThreadCount(1);  // one decode at a time: the machine's other cores run the model
    measurePool_.setObjectName(QStringLiteral("volt-image-measure"));
    countTimer_.setSingleShot(true);
    countTimer_.setInterval(250);  // typing: count once the user pauses
    connect(&countTimer_, &QTimer::timeout, this, &ChatController::runCount);

    model_.setConversation(Conversation::createNew());
}

ChatController::~ChatController() {
    // Stop whatever runs so the worker returns soon, then end its thread; it frees the session and model after.
    if (activeReply_) worker_->requestStop(activeReply_);
    if (activeLoad_) worker_->abortLoad(activeLoad_);
    worker_->requestStop(nextReplyId_);
    thread_.quit();
    thread_.wait();
    measurePool_.waitForDone();  // they use the worker
    delete worker_;
    savePool_.waitForDone();  // the last answer reaches the disk before the app goes
}

void ChatController::setState(State s) {
    if (s == state_) return;
    state_ = s;
    emit stateChanged(s);
}

void ChatController::setSettings(const GenerationSettings& s) {
    settings_ = s;
    scheduleCount();
}

qint64 ChatController::contextLimit() const {
    if (!hasModel()) return 0;
    return settings_.contextLength > 0 ? std::min(settings_.contextLength, info_.maxContext) : info_.maxContext;
}

// ---- model ---------------------------------------------------------------------------------------------------------

void ChatController::openModel(const QString& dir, const DeviceChoice& device) {
    if (activeReply_) stop();
    if (activeLoad_) worker_->abortLoad(activeLoad_);
    const QFileInfo fi(dir);
    if (!fi.isDir()) {
        emit errorOccurred(tr("Cannot open the model"), tr("%1 is not a directory.").arg(dir));
        return;
    }
    LoadRequest r;
    r.id = ++nextLoadId_;
    r.path = fi.absoluteFilePath();
    r.cuda = device.cuda;
    r.gpuIds = device.gpuIds;
    r.contextLength = settings_.contextLength;
    if (device.cuda) r.expertWeights = settings_.expertWeights;  // the CPU runs the experts as loaded
    activeLoad_ = r.id;
    info_ = {};
    setState(State::Loading);
    emit loadProgress(ModelWorker::phaseName(0), 0);
    QMetaObject::invokeMethod(worker_, [w = worker_, r] { w->load(r); }, Qt::QueuedConnection);
}

void ChatController::cancelLoad() {
    if (!activeLoad_) return;
    // Like Stop, Cancel takes effect in the window at once: the worker aborts at its next progress report, and a
    // load that finished anyway is freed by the unload queued behind it.
    worker_->abortLoad(activeLoad_);
    activeLoad_ = 0;
    info_ = {};
    setState(State::NoModel);
    QMetaObject::invokeMethod(worker_, [w = worker_] { w->unload(); }, Qt::QueuedConnection);
}

void ChatController::onLoaded(quint64 loadId, const ModelInfo& info) {
    if (loadId != activeLoad_) return;  // a newer load replaced it (the worker frees it on that load)
    activeLoad_ = 0;
    info_ = info;
    setState(State::Ready);
    emit modelLoaded(info);
    scheduleCount();
}

void ChatController::onLoadFailed(quint64 loadId, const QString& message, bool cancelled) {
    if (loadId != activeLoad_) return;
    activeLoad_ = 0;
    info_ = {};
    setState(State::NoModel);
    if (!cancelled) emit errorOccurred(tr("The model did not load"), message);
}

// ---- chat ----------------------------------------------------------------------------------------------------------

QList<WireMessage> ChatController::wire(int upToRow) const {
    QList<WireMessage> out;
    if (!settings_.systemPrompt.trimmed().isEmpty()) out.append({Role::System, settings_.systemPrompt, {}});
    const auto& msgs = model_.conversation().messages;
    for (int i = 0; i < upToRow && i < msgs.size(); ++i) {
        const Message& m = msgs[i];
        // A failed reply never reached the model's context; a stopped one did, as far as it went.
        if (m.role == Role::Assistant && (m.state == Message::State::Failed || m.text.isEmpty())) continue;
        out.append(WireMessage{m.role, m.text, m.attachments});
    }
    return out;
}

void ChatController::startReply() {
    Message reply;
    reply.role = Role::Assistant;
    reply.state = Message::State::Streaming;
    activeRow_ = model_.append(reply);
    ReplyRequest r;
    r.id = ++nextReplyId_;
    r.messages = wire(activeRow_);
    r.settings = settings_;
    activeReply_ = r.id;
    liveFirstToken_ = -1;
    liveElapsed_ = 0;
    liveTokens_ = 0;
    setState(State::Generating);
    save();
    emit liveStats(-1, 0, 0);
    QMetaObject::invokeMethod(worker_, [w = worker_, r] { w->reply(r); }, Qt::QueuedConnection);
}

bool ChatController::send(const QString& text, const QList<Attachment>& attachments, QString* whyNot) {
    if (state_ != State::Ready) {
        *whyNot = state_ == State::Generating ? tr("An answer is still being written: stop it or wait.")
                  : state_ == State::Loading  ? tr("The model is still loading.")
                                              : tr("Open a model first.");
        return false;
    }
    if (text.trimmed().isEmpty() && attachments.isEmpty()) {
        *whyNot = tr("Type a message or attach a file.");
        return false;
    }
    if (refuseImages(attachments, whyNot)) return false;
    Message m;
    m.role = Role::User;
    m.text = text;
    m.attachments = attachments;
    if (!importAll(&m.attachments, whyNot)) return false;
    model_.append(m);
    startReply();
    return true;
}

QString ChatController::imageRefusal(const QString& name) const {
    if (!hasModel() || info_.visionLanguage) return {};
    return textOnlyRefusal(name, QFileInfo(info_.path).fileName());
}

bool ChatController::refuseImages(const QList<Attachment>& attachments, QString* whyNot) const {
    for (const Attachment& a : attachments) {
        if (!a.isImage()) continue;
        if (const QString why = imageRefusal(a.name); !why.isEmpty()) {
            *whyNot = why;
            return true;
        }
    }
    return false;
}

bool ChatController::importAll(QList<Attachment>* attachments, QString* whyNot) {
    // The conversation keeps its own copy of each file: it must re-enter the prompt on every later turn and after
    // a restart, whatever happens to the original.
    const QString id = model_.conversation().id;
    for (Attachment& a : *attachments) {
        if (!a.path.isEmpty()) {
            const QString copy = store_->importAttachment(id, a.path, whyNot);
            if (copy.isEmpty()) return false;
            a.path = copy;
            continue;
        }
        // Pasted pixels: their file is reserved now and written as PNG in the background (in order, before the
        // conversation that names it); the message keeps the pixels, so the worker never waits for the file.
        const QString file = store_->reserveAttachment(id, a.name, whyNot);
        if (file.isEmpty()) return false;
        a.path = file;
        const QImage pixels = a.pixels;
        savePool_.start([this, file, pixels] {
            if (toRgb888(pixels).save(file, "PNG")) return;
            const QString err = tr("cannot write %1").arg(file);
            QMetaObject::invokeMethod(this, [this, err] { emit errorOccurred(tr("The pasted image was not saved"), err); },
                                      Qt::QueuedConnection);
        });
    }
    return true;
}

void ChatController::stop() {
    if (!activeReply_) return;
    worker_->requestStop(activeReply_);
    ReplyStats live;
    live.timeToFirstToken = liveFirstToken_;
    live.completionTokens = liveTokens_;
    if (liveFirstToken_ >= 0 && liveElapsed_ > liveFirstToken_ && liveTokens_ > 1)
        live.tokensPerSecond = (liveTokens_ - 1) / (liveElapsed_ - liveFirstToken_);
    // The view stops now; what the worker sends for this reply from here on is ignored.
    finishActive(Message::State::Stopped, live, {});
}

void ChatController::finishActive(Message::State state, const ReplyStats& stats, const QString& err) {
    const int row = activeRow_;
    model_.finish(row, state, stats, err);
    activeReply_ = 0;
    activeRow_ = -1;
    setState(info_.maxContext > 0 ? State::Ready : State::NoModel);
    save();
    emit replyFinished(row);
    scheduleCount();
}

bool ChatController::canRegenerate() const {
    return state_ == State::Ready && !model_.conversation().messages.isEmpty() &&
           model_.conversation().messages.last().role == Role::Assistant;
}

bool ChatController::regenerate(QString* whyNot) {
    if (!canRegenerate()) {
        *whyNot = state_ != State::Ready ? tr("Wait for the model to be ready.") : tr("There is no answer to regenerate.");
        return false;
    }
    model_.truncate(model_.lastRow());
    startReply();
    return true;
}

bool ChatController::editAndResend(int row, const QString& text, QString* whyNot, const QList<Attachment>& added) {
    if (state_ != State::Ready) {
        *whyNot = tr("Wait for the model to be ready.");
        return false;
    }
    if (row < 0 || row > model_.lastRow() || model_.message(row).role != Role::User) {
        *whyNot = tr("Only your own messages can be edited.");
        return false;
    }
    if (text.trimmed().isEmpty() && model_.message(row).attachments.isEmpty() && added.isEmpty()) {
        *whyNot = tr("The edited message is empty.");
        return false;
    }
    if (refuseImages(added, whyNot)) return false;
    QList<Attachment> more = added;
    if (!importAll(&more, whyNot)) return false;
    model_.truncate(row + 1);
    model_.setText(row, text);
    if (!more.isEmpty()) model_.setAttachments(row, model_.message(row).attachments + more);
    startReply();
    return true;
}

void ChatController::onToken(quint64 replyId, const QString& text, double elapsed, qint64 tokens) {
    if (replyId != activeReply_) return;
    if (liveFirstToken_ < 0) liveFirstToken_ = elapsed;
    liveElapsed_ = elapsed;
    liveTokens_ = tokens;
    model_.appendText(activeRow_, text);
    const double tps = tokens > 1 && elapsed > liveFirstToken_ ? (tokens - 1) / (elapsed - liveFirstToken_) : 0.0;
    emit liveStats(liveFirstToken_, tps, tokens);
}

void ChatController::onReplyFinished(quint64 replyId, FinishReason reason, const ReplyStats& stats) {
    if (replyId != activeReply_) return;
    const Message::State st = reason == FinishReason::Cancelled     ? Message::State::Stopped
                              : reason == FinishReason::ContextFull ? Message::State::ContextFull
                                                                    : Message::State::Complete;
    emit liveStats(stats.timeToFirstToken, stats.tokensPerSecond, stats.completionTokens);
    finishActive(st, stats, {});
}

void ChatController::onReplyFailed(quint64 replyId, const QString& message) {
    if (replyId != activeReply_) return;
    finishActive(Message::State::Failed, {}, message);
    emit errorOccurred(tr("The answer failed"), message);
}

// ---- attachments and the context meter -----------------------------------------------------------------------------

void ChatController::measureAttachment(const QString& path) {
    if (!hasModel()) {
        emit attachmentMeasured(path, -1, 0, {});  // counted once a model is loaded
        return;
    }
    QMetaObject::invokeMethod(worker_, [w = worker_, path] { w->measureDocument(path); }, Qt::QueuedConnection);
}

void ChatController::measureImage(const Attachment& image) {
    if (!hasModel()) {
        emit imageMeasured(image.key(), -1, 0, 0, {});  // counted once a model is loaded
        return;
    }
    if (const QString why = imageRefusal(image.name); !why.isEmpty()) {
        emit imageMeasured(image.key(), -1, 0, 0, why);
        return;
    }
    const qint64 limit = contextLimit();
    measurePool_.start([w = worker_, image, limit] { w->measureImage(image, limit); });
}

void ChatController::setDraft(const QString& text, const QList<Attachment>& attachments) {
    draftText_ = text;
    draftAttachments_ = attachments;
    scheduleCount();
}

void ChatController::scheduleCount() {
    if (hasModel()) countTimer_.start();
}

void ChatController::runCount() {
    if (!hasModel()) return;
    QList<WireMessage> msgs = wire(int(model_.conversation().messages.size()));
    if (!draftText_.isEmpty() || !draftAttachments_.isEmpty())
        msgs.append(WireMessage{Role::User, draftText_, draftAttachments_});
    if (msgs.isEmpty() || msgs.last().role != Role::User) {
        // Nothing to answer yet: the meter shows what the conversation holds (no reply prompt to render).
        if (msgs.isEmpty()) {
            contextUsed_ = 0;
            emit contextUsageChanged(0, contextLimit(), settings_.maxTokens);
            return;
        }
        msgs.append(WireMessage{Role::User, QString(), {}});
    }
    const quint64 id = ++nextCountId_;
    worker_->noteCountRequest(id);
    const qint64 ctx = settings_.contextLength;
    QMetaObject::invokeMethod(worker_, [w = worker_, id, msgs, ctx] { w->countTokens(id, msgs, ctx); },
                              Qt::QueuedConnection);
}

void ChatController::onTokensCounted(quint64 requestId, qint64 tokens, const QString& err) {
    if (requestId != nextCountId_) return;
    if (!err.isEmpty()) {
        // A draft attachment that cannot be read is reported by its own measurement; the meter just goes unknown.
        contextUsed_ = -1;
        emit contextUsageChanged(-1, contextLimit(), settings_.maxTokens);
        return;
    }
    contextUsed_ = tokens;
    emit contextUsageChanged(tokens, contextLimit(), settings_.maxTokens);
}

// ---- conversations -------------------------------------------------------------------------------------------------

void ChatController::save() {
    const Conversation c = model_.conversation();  // a snapshot: the model goes on changing while it is written
    if (c.messages.isEmpty()) return;                // an untouched "new conversation" is not worth a file
    ConversationStore* store = store_;
    savePool_.start([this, store, c] {
        QString err;
        const bool ok = store->save(c, &err);
        // Back on the GUI thread; the destructor waits for this pool, so `this` is alive when this is posted.
        QMetaObject::invokeMethod(this, [this, ok, err] {
            if (!ok) emit errorOccurred(tr("The conversation was not saved"), err);
            emit conversationsChanged();
        }, Qt::QueuedConnection);
    });
}

void ChatController::flushSaves() { savePool_.waitForDone(); }

void ChatController::newConversation() {
    if (activeReply_) stop();
    model_.setConversation(Conversation::createNew());
    emit conversationSwitched();
    scheduleCount();
}

bool ChatController::openConversation(const QString& id, QString* err) {
    flushSaves();  // it may be the conversation just left, still being written
    Conversation c;
    if (!store_->load(id, &c, err)) return false;
    if (activeReply_) stop();
    model_.setConversation(c);
    emit conversationSwitched();
    scheduleCount();
    return true;
}

bool ChatController::deleteConversation(const QString& id, QString* err) {
    const bool current = id == model_.conversation().id;
    if (current && activeReply_) stop();
    flushSaves();  // else a pending save would write the file back after it was deleted
    if (!store_->remove(id, err)) return false;
    if (current) {
        model_.setConversation(Conversation::createNew());
        emit conversationSwitched();
        scheduleCount();
    }
    emit conversationsChanged();
    return true;
}

QString ChatController::exportMarkdown() const { return toMarkdown(model_.conversation(), settings_.systemPrompt); }

}  // namespace volt::desktop
