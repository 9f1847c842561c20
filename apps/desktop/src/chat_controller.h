// The app's one controller: owns the worker thread, the conversation being shown (ConversationModel) and the rules
// that tie them (what may run when, what Stop/Regenerate/Edit do, when a conversation is saved). Lives on the GUI
// thread; everything slow goes to the ModelWorker as a queued call and comes back as a signal.
#pragma once

#include <QElapsedTimer>
#include <QObject>
#include <QThread>
#include <QThreadPool>
#include <QTimer>

#include "conversation_model.h"
#include "conversation_store.h"
#include "generation_settings.h"
#include "model_worker.h"

namespace volt::desktop {

struct DeviceChoice {
    bool cuda = false;
    QList<int> gpuIds;

    // The device picker's keys: "cpu", "gpu:N", "gpus:0,2" (a chosen set), "all" (every GPU of `gpuCount`).
    // Unknown keys, and GPUs this machine does not have, fall back to the CPU (ok false).
    static DeviceChoice fromKey(const QString& key, int gpuCount, bool* ok = nullptr);
    static QString keyFor(const QList<int>& gpuIds);  // "gpu:N" for one, "gpus:a,b" for several
};

class ChatController : public QObject {
    Q_OBJECT
public:
    enum class State { NoModel, Loading, Ready, Generating };
    Q_ENUM(State)

    explicit ChatController(ConversationStore* store, QObject* parent = nullptr);
    ~ChatController() override;

    ConversationModel* model() { return &model_; }
    ConversationStore* store() const { return store_; }
    State state() const { return state_; }
    bool hasModel() const { return state_ == State::Ready || state_ == State::Generating; }
    const ModelInfo& modelInfo() const { return info_; }
    const GenerationSettings& settings() const { return settings_; }
    void setSettings(const GenerationSettings& s);
    // Tokens a session may hold: the setting when it is lower than the model's maximum.
    qint64 contextLimit() const;

    // ---- model ----
    void openModel(const QString& dir, const DeviceChoice& device);
    void cancelLoad();

    // ---- chat (each returns false with *whyNot when it cannot start now) ----
    bool send(const QString& text, const QList<Attachment>& attachments, QString* whyNot);
    void stop();  // takes effect in the view at once; the worker stops at its next token
    bool canRegenerate() const;
    bool regenerate(QString* whyNot);
    // Replaces user message `row` and drops everything after it, then asks again. Its attachments are kept;
    // `added` ones join them.
    bool editAndResend(int row, const QString& text, QString* whyNot, const QList<Attachment>& added = {});

    // ---- attachments and the context meter ----
    void measureAttachment(const QString& path);  // a document: attachmentMeasured
    void measureImage(const Attachment& image);   // an image (file or pasted pixels): imageMeasured
    // Empty when the loaded model takes images (or none is loaded yet); else why `name` cannot be attached.
    QString imageRefusal(const QString& name) const;
    // What the user is composing; the meter counts the conversation plus this draft (debounced).
    void setDraft(const QString& text, const QList<Attachment>& attachments);
    qint64 lastContextUsed() const { return contextUsed_; }

    // ---- conversations ----
    void newConversation();
    bool openConversation(const QString& id, QString* error);
    bool deleteConversation(const QString& id, QString* error);
    QString exportMarkdown() const;
    // Waits until every save issued so far is on disk (rarely needed: before reading or deleting a file).
    void flushSaves();

    // The worker object, for tests that need to observe it directly.
    ModelWorker* worker() const { return worker_; }

signals:
    void stateChanged(volt::desktop::ChatController::State state);
    void loadProgress(const QString& phase, double fraction);
    void modelLoaded(const volt::desktop::ModelInfo& info);
    void errorOccurred(const QString& title, const QString& message);
    void attachmentMeasured(const QString& path, qint64 tokens, int pages, const QString& error);
    // key: Attachment::key(); tokens -1 with an empty error: counted once a model is loaded.
    void imageMeasured(const QString& key, qint64 tokens, int width, int height, const QString& error);
    // used: tokens of the conversation + draft with the reply prompt; limit: context; reserve: max new tokens.
    void contextUsageChanged(qint64 used, qint64 limit, qint64 reserve);
    void liveStats(double timeToFirstToken, double tokensPerSecond, qint64 tokens);
    void replyFinished(int row);
    void conversationsChanged();
    void conversationSwitched();

private:
    void setState(State s);
    bool importAll(QList<Attachment>* attachments, QString* whyNot);
    QList<WireMessage> wire(int upToRow) const;  // system prompt + messages [0, upToRow)
    bool refuseImages(const QList<Attachment>& attachments, QString* whyNot) const;
    void startReply();  // appends the streaming answer row and queues the reply
    void finishActive(Message::State state, const ReplyStats& stats, const QString& error);
    void save();
    void scheduleCount();
    void runCount();

    void onLoaded(quint64 loadId, const ModelInfo& info);
    void onLoadFailed(quint64 loadId, const QString& message, bool cancelled);
    void onToken(quint64 replyId, const QString& text, double elapsed, qint64 tokens);
    void onReplyFinished(quint64 replyId, FinishReason reason, const ReplyStats& stats);
    void onReplyFailed(quint64 replyId, const QString& message);
    void onTokensCounted(quint64 requestId, qint64 tokens, const QString& error);

    ConversationStore* store_;
    ConversationModel model_;
    GenerationSettings settings_;
    QThread thread_;
    ModelWorker* worker_;
    State state_ = State::NoModel;
    ModelInfo info_;

    quint64 nextLoadId_ = 0;
    quint64 activeLoad_ = 0;
    quint64 nextReplyId_ = 0;
    quint64 activeReply_ = 0;  // 0: none streaming into the view
    int activeRow_ = -1;
    double liveFirstToken_ = -1;
    double liveElapsed_ = 0;
    qint64 liveTokens_ = 0;

    // Saves run here, one at a time and in order (QSaveFile syncs to disk, which can stall for a while).
    QThreadPool savePool_;
    // Image measurements run here, beside the worker thread: a cost shows while an answer is being written.
    QThreadPool measurePool_;

    QString draftText_;
    QList<Attachment> draftAttachments_;
    QTimer countTimer_;
    quint64 nextCountId_ = 0;
    qint64 contextUsed_ = -1;
};

}  // namespace volt::desktop
