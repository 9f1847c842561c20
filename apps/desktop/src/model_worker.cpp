#include "model_worker.h"

#include <QElapsedTimer>
#include <QFileInfo>
#include <QMutexLocker>
#include <QReadLocker>
#include <QWriteLocker>
#include <QRandomGenerator>

#include <vector>

#include "volt.h"

#ifdef VOLT_DESKTOP_HAVE_QTPDF
#include <QPdfDocument>
#endif

namespace volt::desktop {

namespace {

// Decoded images kept for reuse (RGB bytes); the least recently used go first beyond this.
constexpr qint64 kImageCacheBytes = qint64(512) << 20;

bool sameAttachments(const QList<Attachment>& a, const QList<Attachment>& b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                      [](const Attachment& x, const Attachment& y) { return x.kind == y.kind && x.key() == y.key(); });
}

// The Qt code that runs on this thread between engine calls can leave the upper halves of the YMM registers dirty
// (AVX code without a VZEROUPPER after it); libvolt's CPU kernels are built for baseline x86-64 (SSE encodings),
// and every SSE instruction then pays the AVX-SSE transition penalty. Measured: the first image turn on
// tiny-vl-chat took 3.8 s instead of 0.5 s (the same request from a plain C program: 0.5 s). Clearing the state
// before handing the thread to the engine costs one instruction.
void cleanAvxState() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    static const bool avx = __builtin_cpu_supports("avx");
    if (avx) __asm__ volatile("vzeroupper" ::: "memory");
#endif
}

// How many leading messages two conversations share.
qsizetype commonPrefix(const QList<WireMessage>& a, const QList<WireMessage>& b) {
    qsizetype n = 0;
    while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
    return n;
}

}  // namespace

QString textOnlyRefusal(const QString& imageName, const QString& modelName) {
    return ModelWorker::tr("%1: %2 is a text-only model and does not take images. Open a MiniMax-VL-01 model to ask "
                           "about images.").arg(imageName, modelName);
}

bool WireMessage::operator==(const WireMessage& other) const {
    return role == other.role && text == other.text && sameAttachments(attachments, other.attachments);
}

// What one volt_session_reply call accumulates from its events (worker thread only).
struct ModelWorker::ReplyRun {
    ModelWorker* worker = nullptr;
    quint64 id = 0;
    QElapsedTimer clock;
    qint64 tokens = 0;
    double firstToken = -1;
    bool done = false;
    FinishReason reason = FinishReason::Stop;
    ReplyStats stats;
    QString text;  // what streamed: the reply the session appended to its messages
    QString streamError;
};

ModelWorker::ModelWorker(QObject* parent) : QObject(parent) {
    qRegisterMetaType<ModelInfo>();
    qRegisterMetaType<ReplyStats>();
    qRegisterMetaType<FinishReason>();
}

ModelWorker::~ModelWorker() {
    destroyAll();
    clearImages();
}

QString ModelWorker::phaseName(int phase) {
    switch (phase) {
        case VOLT_LOAD_CONFIG: return tr("Reading configuration");
        case VOLT_LOAD_WEIGHTS: return tr("Loading weights");
        case VOLT_LOAD_TOKENIZER: return tr("Loading tokenizer");
        case VOLT_LOAD_DONE: return tr("Ready");
        default: return tr("Loading");
    }
}

QString ModelWorker::lastError(const char* what, int32_t status) {
    // volt_last_error_message names the file or field; the status adds the kind of failure (e.g. out of memory).
    QString msg = QString::fromUtf8(volt_last_error_message());
    if (msg.isEmpty()) msg = QString::fromUtf8(what);
    switch (status) {
        case VOLT_RESOURCE_EXHAUSTED: return tr("Out of memory or over a limit: %1").arg(msg);
        case VOLT_NOT_FOUND: return tr("Not found: %1").arg(msg);
        case VOLT_DATA_LOSS: return tr("The file is corrupt or truncated: %1").arg(msg);
        case VOLT_UNIMPLEMENTED: return tr("Not supported by this build: %1").arg(msg);
        case VOLT_INTERNAL: return tr("Internal error in Volt (please report it): %1").arg(msg);
        default: return msg;
    }
}

void ModelWorker::requestStop(quint64 replyId) {
    quint64 cur = stopUpTo_.load();
    while (cur < replyId && !stopUpTo_.compare_exchange_weak(cur, replyId)) {
    }
    // volt_session_cancel is "any thread"; the mutex only keeps the session alive while it is called.
    QMutexLocker lock(&sessionMutex_);
    if (session_) volt_session_cancel(session_);
}

void ModelWorker::abortLoad(quint64 loadId) {
    quint64 cur = abortLoadUpTo_.load();
    while (cur < loadId && !abortLoadUpTo_.compare_exchange_weak(cur, loadId)) {
    }
}

int32_t ModelWorker::onProgress(void* self, int32_t phase, float fraction) {
    auto* w = static_cast<ModelWorker*>(self);
    // Weight loading reports per tensor; forwarding every report would flood the GUI's event queue.
    if (phase != w->lastPhase_ || fraction - w->lastFraction_ >= 0.005 || fraction >= 1.0f) {
        w->lastPhase_ = phase;
        w->lastFraction_ = fraction;
        emit w->loadProgress(w->currentLoad_, phase, fraction);
    }
    return w->abortLoadUpTo_.load() >= w->currentLoad_ ? 1 : 0;
}

void ModelWorker::destroyAll() {
    setSession(nullptr);  // sessions before their model (volt.h)
    dropRestorePoint();
    volt_session_destroy(scratch_);
    scratch_ = nullptr;
    sessionContext_ = -1;
    {
        QWriteLocker lock(&modelLock_);  // an image measurement may be using it on a pool thread
        volt_model_destroy(model_);
        model_ = nullptr;
        visionLanguage_ = false;
        modelName_.clear();
    }
    clearImages();  // images outlive models, but a new model is a good moment to give their memory back
}

void ModelWorker::setSession(volt_session* session) {
    volt_session* old = nullptr;
    {
        QMutexLocker lock(&sessionMutex_);  // requestStop may be cancelling the old one right now
        old = session_;
        session_ = session;
    }
    volt_session_destroy(old);
    sessionMessages_.clear();
}

void ModelWorker::dropRestorePoint() {
    volt_session_destroy(restore_);
    restore_ = nullptr;
    restoreMessages_.clear();
}

void ModelWorker::clearImages() {
    QMutexLocker lock(&imagesMutex_);
    images_.clear();
    imageBytes_ = 0;
}

std::shared_ptr<volt_image> ModelWorker::decodedImage(const Attachment& a, QString* error) {
    const QString key = a.key();
    {
        QMutexLocker lock(&imagesMutex_);
        if (auto it = images_.find(key); it != images_.end()) {
            it->used = ++imageClock_;
            return it->image;
        }
    }
    volt_image* image = nullptr;
    volt_status s = VOLT_OK;
    if (!a.pixels.isNull()) {
        // Pasted pixels: exactly what the conversation writes as PNG (toRgb888), handed over without re-encoding.
        const QImage rgb = toRgb888(a.pixels);
        if (rgb.isNull()) {
            *error = tr("%1: not enough memory to convert the pasted image (%2×%3)")
                         .arg(a.name).arg(a.pixels.width()).arg(a.pixels.height());
            return {};
        }
        s = volt_image_from_rgb(rgb.constBits(), rgb.width(), rgb.height(), size_t(rgb.bytesPerLine()), &image);
    } else {
        const QByteArray path = a.path.toUtf8();
        s = volt_image_load_file(path.constData(), &image);
    }
    if (s != VOLT_OK) {
        *error = lastError(a.pixels.isNull() ? "volt_image_load_file" : "volt_image_from_rgb", s);
        if (!a.pixels.isNull() && !error->contains(a.name)) *error = a.name + QStringLiteral(": ") + *error;
        return {};
    }
    std::shared_ptr<volt_image> shared(image, &volt_image_destroy);
    int32_t w = 0, h = 0;
    volt_image_size(image, &w, &h);
    const qint64 bytes = qint64(w) * h * 3;
    QMutexLocker lock(&imagesMutex_);
    if (auto it = images_.find(key); it != images_.end()) return it->image;  // decoded meanwhile on another thread
    images_.insert(key, {shared, bytes, ++imageClock_});
    imageBytes_ += bytes;
    while (imageBytes_ > kImageCacheBytes && images_.size() > 1) {
        auto oldest = images_.end();
        for (auto it = images_.begin(); it != images_.end(); ++it)
            if (it.key() != key && (oldest == images_.end() || it->used < oldest->used)) oldest = it;
        imageBytes_ -= oldest->bytes;
        images_.erase(oldest);
    }
    return shared;
}

void ModelWorker::unload() {
    const bool had = model_ != nullptr;
    destroyAll();
    if (had) emit unloaded();
}

void ModelWorker::load(const LoadRequest& r) {
    cleanAvxState();
    destroyAll();  // free the old model first: two large models rarely fit side by side
    currentLoad_ = r.id;
    lastPhase_ = -1;
    lastFraction_ = -1;
    if (abortLoadUpTo_.load() >= r.id) {
        emit loadFailed(r.id, tr("Loading was cancelled."), true);
        return;
    }
    QElapsedTimer clock;
    clock.start();
    const QByteArray path = r.path.toUtf8();
    std::vector<int32_t> gpus(r.gpuIds.begin(), r.gpuIds.end());
    volt_model_params p;
    volt_model_params_init(&p);
    p.path = path.constData();
    p.device = r.cuda ? VOLT_DEVICE_CUDA : VOLT_DEVICE_CPU;
    p.gpu_ids = gpus.empty() ? nullptr : gpus.data();
    p.num_gpus = int32_t(gpus.size());
    p.expert_weights = r.expertWeights == QLatin1String("fp8")    ? VOLT_EXPERT_WEIGHTS_FP8
                       : r.expertWeights == QLatin1String("int8") ? VOLT_EXPERT_WEIGHTS_INT8
                                                                  : VOLT_EXPERT_WEIGHTS_BF16;
    p.progress = &ModelWorker::onProgress;
    p.progress_user_data = this;
    volt_model* model = nullptr;
    const volt_status s = volt_model_load(&p, &model);
    if (s != VOLT_OK) {
        emit loadFailed(r.id, s == VOLT_CANCELLED ? tr("Loading was cancelled.") : lastError("volt_model_load", s),
                        s == VOLT_CANCELLED);
        return;
    }
    {
        QWriteLocker lock(&modelLock_);
        model_ = model;
    }

    volt_model_info vi;
    volt_model_info_init(&vi);
    if (const volt_status is = volt_model_get_info(model_, &vi); is != VOLT_OK) {
        const QString msg = lastError("volt_model_get_info", is);
        destroyAll();
        emit loadFailed(r.id, msg, false);
        return;
    }
    ModelInfo info;
    info.path = r.path;
    info.modelType = QString::fromUtf8(vi.model_type ? vi.model_type : "");
    info.visionLanguage = vi.is_vision_language != 0;
    info.hasTokenizer = vi.has_tokenizer != 0;
    info.vocabSize = vi.vocab_size;
    info.hiddenSize = vi.hidden_size;
    info.numLayers = vi.num_layers;
    info.numSoftmaxLayers = vi.num_softmax_layers;
    info.maxContext = vi.max_context;
    info.totalParams = vi.total_params;
    info.activeParams = vi.active_params;
    modelMaxContext_ = vi.max_context;
    {
        QWriteLocker lock(&modelLock_);
        visionLanguage_ = info.visionLanguage;
        modelName_ = QFileInfo(r.path).fileName();
    }
    if (!r.cuda) {
        info.device = tr("CPU");
    } else {
        QStringList ids;
        for (int g : r.gpuIds) ids << QString::number(g);
        info.device = tr("CUDA: GPU %1").arg(ids.isEmpty() ? QStringLiteral("0") : ids.join(QStringLiteral(", ")));
        if (p.expert_weights != VOLT_EXPERT_WEIGHTS_BF16)
            info.device += tr(", %1 experts").arg(r.expertWeights == QLatin1String("fp8") ? tr("FP8") : tr("int8"));
    }
    if (!info.hasTokenizer) {
        destroyAll();
        emit loadFailed(r.id, tr("%1 has no tokenizer.json: the model loads, but chat needs its tokenizer.").arg(r.path),
                        false);
        return;
    }
    QString error;
    if (!ensureSession(r.contextLength, &error)) {
        destroyAll();
        emit loadFailed(r.id, error, false);
        return;
    }
    info.loadSeconds = clock.elapsed() / 1000.0;
    emit loaded(r.id, info);
}

bool ModelWorker::ensureSession(qint64 contextLength, QString* error) {
    if (!model_) {
        *error = tr("No model is loaded.");
        return false;
    }
    const qint64 want = contextLength > 0 ? std::min(contextLength, modelMaxContext_) : 0;
    if (!scratch_) {
        volt_session_params scratchParams;
        volt_session_params_init(&scratchParams);
        if (const volt_status st = volt_session_create(model_, &scratchParams, &scratch_); st != VOLT_OK) {
            *error = lastError("volt_session_create", st);
            return false;
        }
    }
    if (session_ && want == sessionContext_) return true;
    volt_session_params sp;
    volt_session_params_init(&sp);
    sp.max_context = want;
    volt_session* s = nullptr;
    setSession(nullptr);
    dropRestorePoint();  // it has the old context size
    if (const volt_status st = volt_session_create(model_, &sp, &s); st != VOLT_OK) {
        *error = lastError("volt_session_create", st);
        sessionContext_ = -1;
        return false;
    }
    setSession(s);
    sessionContext_ = want;
    return true;
}

bool ModelWorker::addMessages(volt_session* session, const QList<WireMessage>& messages, qsizetype from,
                              QString* error) {
    for (qsizetype i = from; i < messages.size(); ++i) {
        const WireMessage& m = messages[i];
        for (const Attachment& a : m.attachments) {
            volt_status s = VOLT_OK;
            if (a.isImage()) {
                const std::shared_ptr<volt_image> image = decodedImage(a, error);
                if (!image) return false;
                s = volt_session_attach_image(session, image.get(), nullptr);
            } else {
                const QByteArray p = a.path.toUtf8();
                s = volt_session_attach_document(session, p.constData(), nullptr);
            }
            if (s != VOLT_OK) {
                *error = lastError(a.isImage() ? "volt_session_attach_image" : "volt_session_attach_document", s);
                return false;
            }
        }
        const QByteArray t = m.text.toUtf8();
        const volt_role role = m.role == Role::System ? VOLT_ROLE_SYSTEM
                               : m.role == Role::User ? VOLT_ROLE_USER
                                                      : VOLT_ROLE_ASSISTANT;
        if (const volt_status s = volt_session_add_message(session, role, t.constData(), size_t(t.size())); s != VOLT_OK) {
            *error = lastError("volt_session_add_message", s);
            return false;
        }
    }
    return true;
}

bool ModelWorker::syncReplySession(const QList<WireMessage>& messages, QString* error) {
    const bool extends = commonPrefix(sessionMessages_, messages) == sessionMessages_.size();
    // The restore point's cache covers its messages but the last (the question it was taken after), so it serves
    // any request that keeps all of those: Regenerate (the same messages) and an edited last question.
    const bool restoreFits = restore_ && commonPrefix(restoreMessages_, messages) >= restoreMessages_.size() - 1;
    if (restoreFits && (!extends || restoreMessages_.size() - 1 > sessionMessages_.size())) {
        volt_session* branch = nullptr;
        if (volt_session_fork(restore_, &branch) == VOLT_OK) {
            setSession(branch);
            sessionMessages_ = restoreMessages_;
        } else {
            qWarning("volt-desktop: no branch from the restore point (%s); recomputing instead",
                     volt_last_error_message());
        }
    }
    // Keep what still matches (its decoded images and vision features stay) and add the rest; the engine reuses
    // cached tokens as far as the rendered conversation still extends them.
    const qsizetype keep = commonPrefix(sessionMessages_, messages);
    if (keep < sessionMessages_.size()) {
        if (keep > 0 && volt_session_truncate_messages(session_, size_t(keep)) == VOLT_OK) {
            sessionMessages_.resize(keep);
        } else {
            volt_session_clear_messages(session_);
            sessionMessages_.clear();
        }
    }
    const qsizetype from = sessionMessages_.size();
    sessionMessages_ = messages;
    if (!addMessages(session_, messages, from, error)) {
        volt_session_clear_messages(session_);
        sessionMessages_.clear();
        return false;
    }
    return true;
}

void ModelWorker::keepRestorePoint(const QList<WireMessage>& messages) {
    if (messages.isEmpty() || messages.last().role != Role::User) return;
    if (restore_ && restoreMessages_ == messages) return;  // the branch just taken from it: it stays as it is
    dropRestorePoint();  // first, so that the cache is never held three times
    volt_session* copy = nullptr;
    if (volt_session_fork(session_, &copy) != VOLT_OK) {
        qWarning("volt-desktop: no restore point for this turn (%s); Regenerate will recompute it",
                 volt_last_error_message());
        return;
    }
    restore_ = copy;
    restoreMessages_ = messages;
}

bool ModelWorker::fillScratch(const QList<WireMessage>& messages, QString* error) {
    volt_session_clear_messages(scratch_);
    if (addMessages(scratch_, messages, 0, error)) return true;
    volt_session_clear_messages(scratch_);
    return false;
}

int32_t ModelWorker::onEvent(void* user, const volt_event* e) {
    auto* run = static_cast<ReplyRun*>(user);
    ModelWorker* w = run->worker;
    switch (e->type) {
        case VOLT_EVENT_TOKEN: {
            ++run->tokens;
            const double t = run->clock.nsecsElapsed() / 1e9;
            if (run->firstToken < 0) run->firstToken = t;
            const QString piece = QString::fromUtf8(e->text, qsizetype(e->text_len));
            run->text += piece;
            emit w->replyToken(run->id, piece, t, run->tokens);
            break;
        }
        case VOLT_EVENT_DONE: {
            run->done = true;
            switch (e->finish_reason) {
                case VOLT_FINISH_LENGTH: run->reason = FinishReason::Length; break;
                case VOLT_FINISH_CONTEXT: run->reason = FinishReason::ContextFull; break;
                case VOLT_FINISH_CANCELLED: run->reason = FinishReason::Cancelled; break;
                default: run->reason = FinishReason::Stop; break;
            }
            run->stats.promptTokens = e->prompt_tokens;
            run->stats.reusedTokens = e->reused_tokens;
            run->stats.completionTokens = e->completion_tokens;
            run->stats.prefillSeconds = e->prefill_seconds;
            run->stats.tokensPerSecond = e->tokens_per_second;
            break;
        }
        case VOLT_EVENT_ERROR:
            run->streamError = QString::fromUtf8(e->text, qsizetype(e->text_len));
            break;
        default: break;
    }
    // Checked on every event as well as through volt_session_cancel: a Stop that came before volt_session_reply
    // began its run (while the conversation was being re-added) would otherwise be lost.
    const int32_t stop = w->stopUpTo_.load() >= run->id ? 1 : 0;
    cleanAvxState();  // the Qt code above ran on this thread; the engine's next step follows
    return stop;
}

void ModelWorker::reply(const ReplyRequest& r) {
    if (stopUpTo_.load() >= r.id) {  // stopped while it waited in the queue
        emit replyFinished(r.id, FinishReason::Cancelled, {});
        return;
    }
    QString error;
    if (!ensureSession(r.settings.contextLength, &error) || !syncReplySession(r.messages, &error)) {
        emit replyFailed(r.id, error);
        return;
    }
    // No silent truncation: a prompt that does not fit is refused with the numbers, before anything runs.
    int64_t promptTokens = 0;
    if (const volt_status s = volt_session_count_prompt_tokens(session_, &promptTokens); s != VOLT_OK) {
        emit replyFailed(r.id, lastError("volt_session_count_prompt_tokens", s));
        return;
    }
    const qint64 limit = sessionContext_ > 0 ? sessionContext_ : modelMaxContext_;
    if (promptTokens >= limit) {
        emit replyFailed(r.id, tr("The conversation takes %1 tokens but the context holds %2. Nothing was cut: remove "
                                  "an attachment, start a new conversation or raise the context length in Settings.")
                                   .arg(promptTokens)
                                   .arg(limit));
        return;
    }
    keepRestorePoint(r.messages);

    volt_generate_params gp;
    volt_generate_params_init(&gp);
    gp.max_new_tokens = r.settings.maxTokens;
    gp.temperature = float(r.settings.temperature);
    gp.top_p = float(r.settings.topP);
    gp.top_k = r.settings.topK;
    gp.seed = r.settings.seed != 0 ? r.settings.seed : QRandomGenerator::global()->generate64();

    ReplyRun run;
    run.worker = this;
    run.id = r.id;
    run.clock.start();
    cleanAvxState();
    const volt_status s = volt_session_reply(session_, &gp, &ModelWorker::onEvent, &run);
    run.stats.timeToFirstToken = run.firstToken;
    if (s == VOLT_OK || s == VOLT_CANCELLED) {
        sessionMessages_.append(WireMessage{Role::Assistant, run.text, {}});
        emit replyFinished(r.id, s == VOLT_CANCELLED ? FinishReason::Cancelled : run.reason, run.stats);
        return;
    }
    QString msg = lastError("volt_session_reply", s);
    if (msg.isEmpty()) msg = run.streamError;
    volt_session_clear_messages(session_);  // the failed turn leaves nothing behind (the restore point stays)
    sessionMessages_.clear();
    emit replyFailed(r.id, msg);
}

void ModelWorker::measureDocument(const QString& path) {
    int pages = 0;
#ifdef VOLT_DESKTOP_HAVE_QTPDF
    if (QFileInfo(path).suffix().compare(QLatin1String("pdf"), Qt::CaseInsensitive) == 0) {
        QPdfDocument pdf;
        if (pdf.load(path) == QPdfDocument::Error::None) pages = pdf.pageCount();
    }
#endif
    QString error;
    cleanAvxState();
    if (!scratch_) {
        emit documentMeasured(path, -1, pages, tr("Load a model to read documents."));
        return;
    }
    // The session attaches what it reads to its next message; the scratch session is cleared again at once.
    volt_session_clear_messages(scratch_);
    int64_t tokens = -1;
    const QByteArray p = path.toUtf8();
    const volt_status s = volt_session_attach_document(scratch_, p.constData(), &tokens);
    if (s != VOLT_OK) error = lastError("volt_session_attach_document", s);
    volt_session_clear_messages(scratch_);
    emit documentMeasured(path, s == VOLT_OK ? tokens : -1, pages, error);
}

void ModelWorker::measureImage(const Attachment& image, qint64 contextLimit) {
    const QString key = image.key();
    auto report = [&](qint64 tokens, int w, int h, const QString& error) { emit imageMeasured(key, tokens, w, h, error); };
    {
        QReadLocker lock(&modelLock_);
        if (!model_) return report(-1, 0, 0, tr("Load a model to count image tokens."));
        if (!visionLanguage_) return report(-1, 0, 0, textOnlyRefusal(image.name, modelName_));
    }
    QString error;
    cleanAvxState();
    const std::shared_ptr<volt_image> decoded = decodedImage(image, &error);  // the slow part: outside the lock
    if (!decoded) return report(-1, 0, 0, error);
    int32_t w = 0, h = 0;
    volt_image_size(decoded.get(), &w, &h);
    int64_t tokens = -1;
    QReadLocker lock(&modelLock_);
    if (!model_) return report(-1, w, h, tr("The model was closed."));
    if (const volt_status s = volt_model_image_tokens(model_, decoded.get(), &tokens); s != VOLT_OK)
        return report(-1, w, h, lastError("volt_model_image_tokens", s));
    // Never downscaled behind the user's back: an image that cannot fit is refused with its numbers.
    if (contextLimit > 0 && tokens >= contextLimit)
        error = tr("%1 (%2×%3) takes %4 tokens but the context holds %5. Volt never downscales images: crop or "
                   "shrink it yourself, or raise the context length in Settings.")
                    .arg(image.name).arg(w).arg(h).arg(tokens).arg(contextLimit);
    report(tokens, w, h, error);
}

void ModelWorker::countTokens(quint64 requestId, const QList<WireMessage>& messages, qint64 contextLength) {
    if (requestId < latestCount_.load()) return;  // a newer count is queued behind this one
    QString error;
    int64_t tokens = -1;
    cleanAvxState();
    Q_UNUSED(contextLength);  // the limit is the controller's to compare; counting needs no session size
    if (!scratch_) {
        error = tr("No model is loaded.");
    } else if (fillScratch(messages, &error)) {
        if (const volt_status s = volt_session_count_prompt_tokens(scratch_, &tokens); s != VOLT_OK)
            error = lastError("volt_session_count_prompt_tokens", s);
        volt_session_clear_messages(scratch_);
    }
    emit tokensCounted(requestId, error.isEmpty() ? tokens : -1, error);
}

}  // namespace volt::desktop
