// The only class that calls volt.h for model work. It lives on its own QThread (the controller owns that thread),
// so loading, document reading, token counting and generation never block the GUI. It owns the volt_model and its
// one volt_session; requests arrive as queued calls and results leave as signals (queued back to the GUI thread).
//
// The session is an executor, not the record: every reply request carries the whole conversation. When what the
// session already holds is a prefix of it (the usual next turn), only the new messages are added, and the engine
// reuses every cached token, the previous reply's exact ids included. Otherwise (regenerate, edit, another
// conversation) the worker clears the session's messages and re-adds them all (volt.h has no "remove message");
// the engine then recomputes the prompt, since a recurrent (lightning) cache cannot be rolled back.
// Token counting and document measuring use a second, scratch session that never runs the model, so typing in
// the composer never disturbs the reply session's cache.
#pragma once

#include <QList>
#include <QMetaType>
#include <QMutex>
#include <QObject>
#include <QString>
#include <QStringList>

#include <atomic>

#include "conversation.h"
#include "generation_settings.h"

struct volt_model;
struct volt_session;
struct volt_event;

namespace volt::desktop {

struct LoadRequest {
    quint64 id = 0;
    QString path;
    bool cuda = false;
    QList<int> gpuIds;      // CUDA devices (empty: device 0)
    qint64 contextLength = 0;
};

struct ModelInfo {
    QString path;
    QString modelType;
    bool visionLanguage = false;
    bool hasTokenizer = false;
    qint64 vocabSize = 0;
    qint64 hiddenSize = 0;
    qint64 numLayers = 0;
    qint64 numSoftmaxLayers = 0;
    qint64 maxContext = 0;
    qint64 totalParams = 0;
    qint64 activeParams = 0;
    QString device;         // "CPU" or "CUDA: GPU 0, 1"
    double loadSeconds = 0;
};

// One message as the session must see it: documents are file paths the worker attaches before the text.
struct WireMessage {
    Role role = Role::User;
    QString text;
    QStringList documents;
    bool operator==(const WireMessage&) const = default;
};

struct ReplyRequest {
    quint64 id = 0;
    QList<WireMessage> messages;
    GenerationSettings settings;
};

enum class FinishReason { Length, Stop, ContextFull, Cancelled };

class ModelWorker : public QObject {
    Q_OBJECT
public:
    explicit ModelWorker(QObject* parent = nullptr);
    ~ModelWorker() override;  // destroys the session, then the model

    // ---- any thread (the GUI calls these directly, so a Stop never waits behind the work it stops) ----
    // Stops reply `replyId` (and any earlier one) at its next token, or before it starts if it is still queued.
    void requestStop(quint64 replyId);
    // Aborts load `loadId` (and any earlier one) at its next progress report.
    void abortLoad(quint64 loadId);

    // ---- worker thread (invoke queued) ----
    void load(const LoadRequest& request);
    void unload();
    void reply(const ReplyRequest& request);
    // Reads a document as the session would and reports its token cost and pages.
    void measureDocument(const QString& path);
    // Tokens `messages` take with the reply prompt. Requests older than the newest one are skipped (typing sends
    // many; only the last matters).
    void countTokens(quint64 requestId, const QList<WireMessage>& messages, qint64 contextLength);
    quint64 latestCountRequest() const { return latestCount_.load(); }
    void noteCountRequest(quint64 id) { latestCount_.store(id); }

    static QString phaseName(int phase);

signals:
    void loadProgress(quint64 loadId, int phase, double fraction);
    void loaded(quint64 loadId, const volt::desktop::ModelInfo& info);
    void loadFailed(quint64 loadId, const QString& message, bool cancelled);
    void unloaded();
    void replyToken(quint64 replyId, const QString& text, double elapsedSeconds, qint64 tokens);
    void replyFinished(quint64 replyId, volt::desktop::FinishReason reason, const volt::desktop::ReplyStats& stats);
    void replyFailed(quint64 replyId, const QString& message);
    void documentMeasured(const QString& path, qint64 tokens, int pages, const QString& error);
    void tokensCounted(quint64 requestId, qint64 tokens, const QString& error);

private:
    static int32_t onProgress(void* self, int32_t phase, float fraction);
    static int32_t onEvent(void* self, const ::volt_event* event);
    bool ensureSession(qint64 contextLength, QString* error);
    static bool addMessages(volt_session* session, const QList<WireMessage>& messages, qsizetype from, QString* error);
    bool syncReplySession(const QList<WireMessage>& messages, QString* error);
    bool fillScratch(const QList<WireMessage>& messages, QString* error);
    void destroyAll();
    static QString lastError(const char* what, int32_t status);

    volt_model* model_ = nullptr;
    volt_session* session_ = nullptr;  // replies; created, destroyed and cancelled under sessionMutex_
    volt_session* scratch_ = nullptr;  // counting and measuring (worker thread only)
    QList<WireMessage> sessionMessages_;  // what session_ holds now, in order
    QMutex sessionMutex_;
    qint64 sessionContext_ = -1;
    qint64 modelMaxContext_ = 0;

    std::atomic<quint64> stopUpTo_{0};       // replies with id <= this stop
    std::atomic<quint64> abortLoadUpTo_{0};  // loads with id <= this abort
    std::atomic<quint64> latestCount_{0};

    // State of the load or reply in progress (worker thread only).
    quint64 currentLoad_ = 0;
    int lastPhase_ = -1;
    double lastFraction_ = -1;
    struct ReplyRun;
};

}  // namespace volt::desktop

Q_DECLARE_METATYPE(volt::desktop::ModelInfo)
Q_DECLARE_METATYPE(volt::desktop::ReplyStats)
Q_DECLARE_METATYPE(volt::desktop::FinishReason)
