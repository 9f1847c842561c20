// The only class that calls volt.h for model work. It lives on its own QThread (the controller owns that thread),
// so loading, image decoding, document reading, token counting and generation never block the GUI. It owns the
// volt_model and its sessions; requests arrive as queued calls and results leave as signals (queued back to the GUI
// thread).
//
// The session is an executor, not the record: every reply request carries the whole conversation, and the worker
// brings the session in line with it so that only what changed runs:
//  - the next turn (what the session holds is a prefix of the request): only the new message is added; the engine
//    reuses every cached token, the previous reply's exact ids included;
//  - Regenerate and editing the last question: the session branches from the RESTORE POINT, a volt_session_fork
//    taken just before the last reply ran (its user message added, the cache holding every turn before it). Only
//    that turn runs again (DONE.reused_tokens covers the rest, images included);
//  - anything else (editing an earlier question, another conversation, a changed system prompt): the session keeps
//    the messages that still match (volt_session_truncate_messages, so their decoded images and vision features
//    stay) and re-adds the rest; the engine recomputes the prompt from the first changed token, since a recurrent
//    (lightning) cache cannot be rolled back.
// Memory policy: one restore point at a time (the last turn's), replaced when the next turn starts, so the
// conversation's cache is held at most twice (the live session and that fork; forks copy only the used rows). A
// fork that fails (out of memory) is skipped: the reply still runs, a later Regenerate just recomputes more.
// Decoded images are kept in a small cache (by file path, or the pixels' key for pasted ones) so that token counts
// and later turns do not decode them again.
// Token counting and measuring use a second, scratch session that never runs the model, so typing in the composer
// never disturbs the reply session's cache.
#pragma once

#include <QHash>
#include <QList>
#include <QMetaType>
#include <QMutex>
#include <QObject>
#include <QReadWriteLock>
#include <QString>
#include <QStringList>

#include <atomic>
#include <memory>

#include "conversation.h"
#include "generation_settings.h"

struct volt_model;
struct volt_session;
struct volt_event;
struct volt_image;

namespace volt::desktop {

struct LoadRequest {
    quint64 id = 0;
    QString path;
    bool cuda = false;
    QList<int> gpuIds;      // CUDA devices (empty: device 0)
    qint64 contextLength = 0;
    QString expertWeights = QStringLiteral("bf16");  // cuda: "bf16", "fp8" or "int8" (GenerationSettings)
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

// One message as the session must see it: its images and documents are attached before the text (the engine puts
// the images first, then the documents, then the text).
struct WireMessage {
    Role role = Role::User;
    QString text;
    QList<Attachment> attachments;
    // Attachments compare by kind and key (a pasted image is the same image before and after its PNG is written).
    bool operator==(const WireMessage& other) const;
};

struct ReplyRequest {
    quint64 id = 0;
    QList<WireMessage> messages;
    GenerationSettings settings;
};

enum class FinishReason { Length, Stop, ContextFull, Cancelled };

// Why image `imageName` cannot go to the text-only model in directory `modelName`.
QString textOnlyRefusal(const QString& imageName, const QString& modelName);

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
    // ---- any thread (the controller runs it on a pool thread, so a cost shows while an answer streams) ----
    // Decodes an image (its file, or its pixels when it has them) and reports its size and token cost
    // (volt_model_image_tokens: model-shared, from the size alone), or why it cannot be used: unreadable, a
    // text-only model, larger than `contextLimit`. The decoded image is cached for the reply that sends it.
    void measureImage(const volt::desktop::Attachment& image, qint64 contextLimit);
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
    void imageMeasured(const QString& key, qint64 tokens, int width, int height, const QString& error);
    void tokensCounted(quint64 requestId, qint64 tokens, const QString& error);

private:
    static int32_t onProgress(void* self, int32_t phase, float fraction);
    static int32_t onEvent(void* self, const ::volt_event* event);
    bool ensureSession(qint64 contextLength, QString* error);
    bool addMessages(volt_session* session, const QList<WireMessage>& messages, qsizetype from, QString* error);
    bool syncReplySession(const QList<WireMessage>& messages, QString* error);
    void setSession(volt_session* session);  // replaces (and destroys) the reply session
    void keepRestorePoint(const QList<WireMessage>& messages);
    void dropRestorePoint();
    bool fillScratch(const QList<WireMessage>& messages, QString* error);
    // The decoded image (from the cache, else decoded and cached), or null with *error. Any thread.
    std::shared_ptr<volt_image> decodedImage(const Attachment& image, QString* error);
    void clearImages();
    void destroyAll();
    static QString lastError(const char* what, int32_t status);

    volt_model* model_ = nullptr;      // written on the worker thread under modelLock_ (measureImage reads it)
    QReadWriteLock modelLock_;
    volt_session* session_ = nullptr;  // replies; created, swapped, destroyed and cancelled under sessionMutex_
    volt_session* scratch_ = nullptr;  // counting and measuring (worker thread only)
    QList<WireMessage> sessionMessages_;  // what session_ holds now, in order
    volt_session* restore_ = nullptr;     // the restore point (worker thread only; see the top of this file)
    QList<WireMessage> restoreMessages_;  // what restore_ holds: the last reply's request, ending with its question
    QMutex sessionMutex_;
    qint64 sessionContext_ = -1;
    qint64 modelMaxContext_ = 0;
    bool visionLanguage_ = false;  // with model_, under modelLock_
    QString modelName_;

    struct CachedImage {
        std::shared_ptr<volt_image> image;  // shared: an image evicted while in use lives until its user is done
        qint64 bytes = 0;
        quint64 used = 0;  // for evicting the least recently used
    };
    QMutex imagesMutex_;  // the cache (decoding itself runs outside it)
    QHash<QString, CachedImage> images_;
    qint64 imageBytes_ = 0;
    quint64 imageClock_ = 0;

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
