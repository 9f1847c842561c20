// The controller and its worker against the tiny-chat fixture on the CPU: load, send, stream, stop, regenerate,
// edit, documents, the context meter and persistence. Greedy answers are checked against the transformers
// reference (tests/data/tiny-chat/reference/chat.json), so a wrong prompt or a lost token fails here.
// Images against tiny-vl-chat (the tiny MiniMax-VL-01 with the same chat tokenizer): token cost before sending,
// the answer, persistence and reload, pasted pixels, unreadable images, text-only refusals; Regenerate and Edit
// measured by DONE.reused_tokens (only the changed turn runs).
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QtTest>

#include "chat_controller.h"

using namespace volt::desktop;

namespace {

QString dataDir() {
    const QByteArray env = qgetenv("VOLT_TEST_DATA");
    return env.isEmpty() ? QStringLiteral(VOLT_SOURCE_DIR "/tests/data") : QString::fromLocal8Bit(env);
}
QString modelDir() { return dataDir() + "/tiny-chat"; }
QString vlModelDir() { return dataDir() + "/tiny-vl-chat"; }
QString docPath(const char* name) { return dataDir() + "/documents/" + name; }
QString imagePath(const char* name) { return dataDir() + "/vision/images/" + name; }
constexpr qint64 kPhotoTokens = 2340;  // photo_640x480.jpg with tiny-vl-chat (bindings/python/tests/test_images.py)

Attachment imageFile(const char* name, qint64 tokens = -1) {
    Attachment a;
    a.kind = Attachment::Kind::Image;
    a.path = imagePath(name);
    a.name = name;
    a.tokens = tokens;
    return a;
}

// The photo as the tray hands it over once measured.
Attachment photo() {
    Attachment a = imageFile("photo_640x480.jpg", kPhotoTokens);
    a.width = 640;
    a.height = 480;
    return a;
}

QJsonObject reference() {
    QFile f(modelDir() + "/reference/chat.json");
    if (!f.open(QIODevice::ReadOnly)) return {};
    return QJsonDocument::fromJson(f.readAll()).object();
}

const QString kSystem = "You answer questions about maps.";
const QString kQuestion = "Which city is north of the river?";

GenerationSettings greedy(qint64 maxTokens) {
    GenerationSettings s;
    s.systemPrompt = kSystem;
    s.temperature = 0;
    s.maxTokens = maxTokens;
    return s;
}

}  // namespace

class TestController : public QObject {
    Q_OBJECT
    QTemporaryDir data_;
    std::unique_ptr<ConversationStore> store_;
    QString greedyText_;

    // A controller with the fixture loaded (fails the test when it does not load in time).
    std::unique_ptr<ChatController> loaded(const GenerationSettings& s, const QString& dir = modelDir()) {
        auto c = std::make_unique<ChatController>(store_.get());
        c->setSettings(s);
        QSignalSpy ok(c.get(), &ChatController::modelLoaded);
        QSignalSpy err(c.get(), &ChatController::errorOccurred);
        c->openModel(dir, {});
        [&] { QTRY_VERIFY_WITH_TIMEOUT(ok.count() == 1 || err.count() > 0, 60000); }();
        if (err.count() > 0) qWarning() << "load error:" << err.first();
        return c;
    }

    // Waits until the reply in progress ends; returns the finished row.
    static int waitReply(ChatController& c, int timeoutMs = 60000) {
        QSignalSpy done(&c, &ChatController::replyFinished);
        if (c.state() == ChatController::State::Generating) {
            if (!done.wait(timeoutMs)) return -1;
        }
        return done.isEmpty() ? c.model()->lastRow() : done.first().first().toInt();
    }

private slots:
    void initTestCase() {
        QVERIFY(data_.isValid());
        store_ = std::make_unique<ConversationStore>(data_.path());
        greedyText_ = reference().value("greedy_reply_text").toString();
        QVERIFY(!greedyText_.isEmpty());
    }

    void badModelDirectoryIsAReadableError() {
        ChatController c(store_.get());
        QSignalSpy err(&c, &ChatController::errorOccurred);
        c.openModel(data_.path() + "/missing", {});
        QCOMPARE(err.count(), 1);
        QVERIFY2(err.first().at(1).toString().contains("is not a directory"), qPrintable(err.first().at(1).toString()));

        QTemporaryDir empty;
        c.openModel(empty.path(), {});
        QCOMPARE(c.state(), ChatController::State::Loading);
        QTRY_COMPARE_WITH_TIMEOUT(err.count(), 2, 30000);
        const QString msg = err.last().at(1).toString();
        QVERIFY2(msg.contains("config.json"), qPrintable(msg));  // names what is missing
        QCOMPARE(c.state(), ChatController::State::NoModel);
        QString why;
        QVERIFY(!c.send("hello", {}, &why));
        QVERIFY(why.contains("Open a model"));

        // A truncated checkpoint: the message names the file.
        QTemporaryDir broken;
        QVERIFY(QFile::copy(modelDir() + "/config.json", broken.filePath("config.json")));
        QVERIFY(QFile::copy(modelDir() + "/tokenizer.json", broken.filePath("tokenizer.json")));
        QFile src(modelDir() + "/model.safetensors");
        QVERIFY(src.open(QIODevice::ReadOnly));
        QFile dst(broken.filePath("model.safetensors"));
        QVERIFY(dst.open(QIODevice::WriteOnly));
        dst.write(src.read(src.size() / 2));
        dst.close();
        c.openModel(broken.path(), {});
        QTRY_COMPARE_WITH_TIMEOUT(err.count(), 3, 30000);
        const QString truncated = err.last().at(1).toString();
        qInfo("truncated checkpoint: %s", qPrintable(truncated));
        QVERIFY2(truncated.contains("model.safetensors"), qPrintable(truncated));
        QCOMPARE(c.state(), ChatController::State::NoModel);
    }

    void loadReportsPhasesAndInfo() {
        ChatController c(store_.get());
        QSignalSpy progress(&c, &ChatController::loadProgress);
        QSignalSpy states(&c, &ChatController::stateChanged);
        QSignalSpy ok(&c, &ChatController::modelLoaded);
        c.openModel(modelDir(), {});
        QTRY_COMPARE_WITH_TIMEOUT(ok.count(), 1, 60000);
        QCOMPARE(c.state(), ChatController::State::Ready);
        QStringList phases;
        for (const auto& p : progress) phases << p.at(0).toString();
        QVERIFY2(phases.contains("Loading weights") && phases.contains("Loading tokenizer"), qPrintable(phases.join(",")));
        const ModelInfo info = c.modelInfo();
        QCOMPARE(info.modelType, QString("minimax_text_01"));
        QCOMPARE(info.numLayers, 4);
        QCOMPARE(info.numSoftmaxLayers, 1);
        QCOMPARE(info.vocabSize, 512);
        QCOMPARE(info.maxContext, 4096);
        QVERIFY(info.hasTokenizer);
        QCOMPARE(info.device, QString("CPU"));
        QCOMPARE(c.contextLimit(), 4096);
    }

    // Quantised expert weights are a GPU setting: a CPU load with one chosen loads as it always did (the controller
    // does not pass it on, so the library's CPU refusal never reaches the user).
    void expertWeightsSettingLeavesCpuLoadsAlone() {
        GenerationSettings s = greedy(4);
        s.expertWeights = "fp8";
        auto c = loaded(s);
        QCOMPARE(c->state(), ChatController::State::Ready);
        QCOMPARE(c->modelInfo().device, QString("CPU"));
    }

    void cancelledLoadIsQuietAndFreesTheModel() {
        ChatController c(store_.get());
        QSignalSpy err(&c, &ChatController::errorOccurred);
        QSignalSpy ok(&c, &ChatController::modelLoaded);
        QSignalSpy unloaded(c.worker(), &ModelWorker::unloaded);
        QSignalSpy failed(c.worker(), &ModelWorker::loadFailed);
        c.openModel(modelDir(), {});
        c.cancelLoad();
        QCOMPARE(c.state(), ChatController::State::NoModel);  // at once
        // The worker either aborted the load or loaded it and then freed it; the window hears of neither.
        QTRY_VERIFY_WITH_TIMEOUT(failed.count() == 1 || unloaded.count() == 1, 30000);
        if (failed.count() == 1) QVERIFY(failed.first().at(2).toBool());
        QTest::qWait(50);
        QCOMPARE(err.count(), 0);
        QCOMPARE(ok.count(), 0);
        QCOMPARE(c.state(), ChatController::State::NoModel);
        c.openModel(modelDir(), {});
        QTRY_COMPARE_WITH_TIMEOUT(ok.count(), 1, 60000);
        QCOMPARE(c.state(), ChatController::State::Ready);
    }

    void sendStreamsTheGreedyReference() {
        auto c = loaded(greedy(12));
        QSignalSpy live(c.get(), &ChatController::liveStats);
        QSignalSpy changed(c->model(), &QAbstractItemModel::dataChanged);
        QString why;
        QVERIFY2(c->send(kQuestion, {}, &why), qPrintable(why));
        QCOMPARE(c->state(), ChatController::State::Generating);
        QCOMPARE(c->model()->rowCount(), 2);
        QCOMPARE(c->model()->message(1).state, Message::State::Streaming);
        const int row = waitReply(*c);
        QCOMPARE(row, 1);
        const Message& a = c->model()->message(1);
        QCOMPARE(a.text, greedyText_);
        QCOMPARE(a.state, Message::State::Complete);
        QCOMPARE(a.stats.completionTokens, 12);
        QCOMPARE(a.stats.promptTokens, reference().value("prompt_ids").toArray().size());
        QVERIFY(a.stats.timeToFirstToken > 0);
        QVERIFY(a.stats.tokensPerSecond > 0);
        QVERIFY2(changed.count() >= 5, "the answer streamed in pieces");  // streamed, not set once at the end
        QVERIFY(live.count() >= 5);
        QCOMPARE(c->state(), ChatController::State::Ready);

        // Second turn: the prompt is exactly the reference's second turn; the worker only adds the new message, so
        // the first turn is not recomputed.
        QVERIFY(c->send("How many bridges are there?", {}, &why));
        waitReply(*c);
        const Message& b = c->model()->message(3);
        // The reference re-tokenizes the first answer's text; the session keeps the ids it generated instead. The
        // rest (end of answer, the new question, the reply prompt) must match the reference token for token.
        const QJsonArray ref2 = reference().value("second_turn_ids").toArray();
        qsizetype refAnswerEnd = 80;
        while (refAnswerEnd < ref2.size() && ref2[refAnswerEnd].toInt() != 3) ++refAnswerEnd;  // <end_of_sentence>
        QCOMPARE(b.stats.promptTokens - (80 + 12), ref2.size() - refAnswerEnd);
        // Everything the session had computed came from the cache: the first prompt and the answer's ids but the
        // last (sampled, never fed back).
        QCOMPARE(b.stats.reusedTokens, 80 + 11);
    }

    void stopTakesEffectAtOnce() {
        auto c = loaded(greedy(4000));  // greedy noise never says eos: it would run to the context's end
        QSignalSpy workerDone(c->worker(), &ModelWorker::replyFinished);
        QSignalSpy live(c.get(), &ChatController::liveStats);
        QString why;
        QVERIFY(c->send(kQuestion, {}, &why));
        QTRY_VERIFY_WITH_TIMEOUT(!live.isEmpty() && live.last().at(2).toLongLong() >= 3, 30000);
        QElapsedTimer t;
        t.start();
        c->stop();
        QVERIFY(t.elapsed() < 50);  // the GUI thread never waits for the worker
        QCOMPARE(c->state(), ChatController::State::Ready);
        const Message stopped = c->model()->message(1);
        QCOMPARE(stopped.state, Message::State::Stopped);
        QVERIFY(!stopped.text.isEmpty());
        // The engine itself stopped (it would otherwise report LENGTH/CONTEXT after ~4000 tokens), and nothing it
        // sent afterwards reached the view.
        QTRY_COMPARE_WITH_TIMEOUT(workerDone.count(), 1, 5000);
        QCOMPARE(workerDone.first().at(1).value<FinishReason>(), FinishReason::Cancelled);
        QVERIFY(workerDone.first().at(2).value<ReplyStats>().completionTokens < 4000);
        QCOMPARE(c->model()->message(1).text, stopped.text);

        // The session stays usable: the next question is answered.
        c->setSettings(greedy(12));
        QVERIFY2(c->send(kQuestion, {}, &why), qPrintable(why));
        waitReply(*c);
        QCOMPARE(c->model()->message(3).state, Message::State::Complete);
        QCOMPARE(c->model()->message(3).stats.completionTokens, 12);
    }

    void stopBeforeTheWorkerStartsCancelsTheQueuedReply() {
        auto c = loaded(greedy(4000));
        QSignalSpy workerDone(c->worker(), &ModelWorker::replyFinished);
        QString why;
        QVERIFY(c->send(kQuestion, {}, &why));
        c->stop();  // same event-loop turn: the worker has not begun
        QTRY_COMPARE_WITH_TIMEOUT(workerDone.count(), 1, 10000);
        QCOMPARE(workerDone.first().at(1).value<FinishReason>(), FinishReason::Cancelled);
        QCOMPARE(c->model()->message(1).state, Message::State::Stopped);
    }

    void regenerateReplacesTheLastAnswer() {
        auto c = loaded(greedy(12));
        QString why;
        QVERIFY(!c->regenerate(&why));  // nothing to regenerate yet
        QVERIFY(c->send(kQuestion, {}, &why));
        waitReply(*c);
        QVERIFY(c->canRegenerate());
        QVERIFY2(c->regenerate(&why), qPrintable(why));
        QCOMPARE(c->model()->rowCount(), 2);
        QCOMPARE(c->model()->message(1).state, Message::State::Streaming);
        QCOMPARE(c->model()->message(1).text, QString());
        waitReply(*c);
        QCOMPARE(c->model()->rowCount(), 2);
        QCOMPARE(c->model()->message(1).text, greedyText_);  // greedy: the same answer
    }

    void regenerateAndEditRunOnlyTheChangedTurn() {
        auto c = loaded(greedy(12));
        QString why;
        QVERIFY(c->send(kQuestion, {}, &why));
        waitReply(*c);
        QVERIFY(c->send("How many bridges are there?", {}, &why));
        waitReply(*c);
        const Message second = c->model()->message(3);
        const qint64 firstTurn = second.stats.reusedTokens;  // the first turn, computed once
        QCOMPARE(firstTurn, 80 + 11);

        // Regenerate branches from the restore point taken before the answer: the first turn is not recomputed,
        // and greedy decoding from the same state gives the same answer.
        QVERIFY2(c->regenerate(&why), qPrintable(why));
        waitReply(*c);
        const Message again = c->model()->message(3);
        qInfo("regenerate: %lld of %lld prompt tokens reused", again.stats.reusedTokens, again.stats.promptTokens);
        QCOMPARE(again.stats.reusedTokens, firstTurn);
        QCOMPARE(again.stats.promptTokens, second.stats.promptTokens);
        QCOMPARE(again.text, second.text);
        QVERIFY(again.stats.reusedTokens > 0);

        // Editing the last question: the same restore point, only the edited turn runs. Twice in a row too.
        for (const char* edit : {"How many roads are there?", "And how many rivers?"}) {
            QVERIFY2(c->editAndResend(2, edit, &why), qPrintable(why));
            waitReply(*c);
            QCOMPARE(c->model()->rowCount(), 4);
            QCOMPARE(c->model()->message(2).text, QString(edit));
            QCOMPARE(c->model()->message(3).state, Message::State::Complete);
            qInfo("edit: %lld of %lld prompt tokens reused", c->model()->message(3).stats.reusedTokens,
                  c->model()->message(3).stats.promptTokens);
            QCOMPARE(c->model()->message(3).stats.reusedTokens, firstTurn);
        }
        // The next turn continues the live session as usual (everything before it reused).
        const qint64 held = c->model()->message(3).stats.promptTokens + c->model()->message(3).stats.completionTokens - 1;
        QVERIFY(c->send("Thanks.", {}, &why));
        waitReply(*c);
        QCOMPARE(c->model()->message(5).stats.reusedTokens, held);

        // Editing an earlier question: no restore point reaches back there (one is kept, for the last turn), so
        // the session is truncated and the conversation recomputed from the edit, and the answer is the
        // reference's again.
        QVERIFY(c->editAndResend(0, kQuestion, &why));
        waitReply(*c);
        QCOMPARE(c->model()->rowCount(), 2);
        QCOMPARE(c->model()->message(1).stats.reusedTokens, 0);
        QCOMPARE(c->model()->message(1).text, greedyText_);
    }

    void stoppedAnswersRegenerateFromTheRestorePoint() {
        auto c = loaded(greedy(12));
        QString why;
        QVERIFY(c->send(kQuestion, {}, &why));
        waitReply(*c);
        c->setSettings(greedy(4000));
        QSignalSpy live(c.get(), &ChatController::liveStats);
        QVERIFY(c->send("Tell me everything.", {}, &why));
        QTRY_VERIFY_WITH_TIMEOUT(!live.isEmpty() && live.last().at(2).toLongLong() >= 3, 30000);
        c->stop();
        QCOMPARE(c->model()->message(3).state, Message::State::Stopped);
        c->setSettings(greedy(12));
        QVERIFY2(c->regenerate(&why), qPrintable(why));
        waitReply(*c);
        QCOMPARE(c->model()->message(3).state, Message::State::Complete);
        QCOMPARE(c->model()->message(3).stats.reusedTokens, 80 + 11);
    }

    void editAndResendDropsLaterMessages() {
        auto c = loaded(greedy(12));
        QString why;
        QVERIFY(c->send("first question", {}, &why));
        waitReply(*c);
        QVERIFY(c->send("second question", {}, &why));
        waitReply(*c);
        QCOMPARE(c->model()->rowCount(), 4);
        QVERIFY(!c->editAndResend(1, "x", &why));  // an answer is not editable
        QVERIFY2(c->editAndResend(0, kQuestion, &why), qPrintable(why));
        QCOMPARE(c->model()->rowCount(), 2);
        waitReply(*c);
        QCOMPARE(c->model()->message(0).text, kQuestion);
        QCOMPARE(c->model()->message(1).text, greedyText_);

        // Files attached while editing join the message (copied like any attachment) and enter the prompt.
        const qint64 before = c->model()->message(1).stats.promptTokens;
        Attachment doc{Attachment::Kind::Document, docPath("notes_crlf.txt"), "notes_crlf.txt", 9, 0};
        QVERIFY2(c->editAndResend(0, kQuestion, &why, {doc}), qPrintable(why));
        waitReply(*c);
        QCOMPARE(c->model()->message(0).attachments.size(), 1);
        QVERIFY(c->model()->message(0).attachments[0].path.startsWith(store_->directory()));
        QVERIFY(c->model()->message(1).stats.promptTokens > before + 5);
    }

    void documentsShowTheirCostAndReadableErrors() {
        auto c = loaded(greedy(4));
        QSignalSpy measured(c.get(), &ChatController::attachmentMeasured);
        c->measureAttachment(docPath("three_pages.pdf"));
        c->measureAttachment(docPath("notes_crlf.txt"));
        c->measureAttachment(docPath("encrypted.pdf"));
        c->measureAttachment(docPath("binary.bin"));
        QTRY_COMPARE_WITH_TIMEOUT(measured.count(), 4, 30000);
        const auto pdf = measured[0];
        QVERIFY2(pdf.at(3).toString().isEmpty(), qPrintable(pdf.at(3).toString()));
        QVERIFY(pdf.at(1).toLongLong() > 20);
#ifdef VOLT_DESKTOP_HAVE_QTPDF
        QCOMPARE(pdf.at(2).toInt(), 3);
#endif
        QVERIFY(measured[1].at(1).toLongLong() > 5);
        QCOMPARE(measured[1].at(2).toInt(), 0);
        const QString enc = measured[2].at(3).toString();
        QVERIFY2(enc.contains("encrypted.pdf") && enc.contains("encrypt", Qt::CaseInsensitive), qPrintable(enc));
        QCOMPARE(measured[2].at(1).toLongLong(), -1);
        QVERIFY2(measured[3].at(3).toString().contains("binary.bin"), qPrintable(measured[3].at(3).toString()));

        // Sent with a question: the document's tokens are in the prompt, and the conversation keeps a copy.
        const qint64 docTokens = pdf.at(1).toLongLong();
        Attachment a{Attachment::Kind::Document, docPath("three_pages.pdf"), "three_pages.pdf", docTokens, 3};
        QString why;
        QVERIFY2(c->send(kQuestion, {a}, &why), qPrintable(why));
        waitReply(*c);
        const Message& u = c->model()->message(0);
        QVERIFY(u.attachments[0].path.startsWith(store_->directory()));
        QVERIFY(QFile::exists(u.attachments[0].path));
        const Message& r = c->model()->message(1);
        QCOMPARE(r.state, Message::State::Complete);
        QVERIFY2(r.stats.promptTokens >= 80 + docTokens, qPrintable(QString::number(r.stats.promptTokens)));
    }

    void contextMeterCountsTheDraft() {
        auto c = loaded(greedy(100));
        QSignalSpy usage(c.get(), &ChatController::contextUsageChanged);
        c->setDraft(kQuestion, {});
        QTRY_VERIFY_WITH_TIMEOUT(!usage.isEmpty() && usage.last().at(0).toLongLong() > 0, 10000);
        QCOMPARE(usage.last().at(0).toLongLong(), 80);  // exactly the reference prompt
        QCOMPARE(usage.last().at(1).toLongLong(), 4096);
        QCOMPARE(usage.last().at(2).toLongLong(), 100);
        usage.clear();
        c->setDraft(kQuestion, {{Attachment::Kind::Document, docPath("notes_crlf.txt"), "notes_crlf.txt", -1, 0}});
        QTRY_VERIFY_WITH_TIMEOUT(!usage.isEmpty(), 10000);
        QVERIFY(usage.last().at(0).toLongLong() > 85);
    }

    void overTheLimitIsRefusedNotTruncated() {
        GenerationSettings s = greedy(12);
        s.contextLength = 64;  // the reference prompt takes 80
        auto c = loaded(s);
        QCOMPARE(c->contextLimit(), 64);
        QSignalSpy err(c.get(), &ChatController::errorOccurred);
        QString why;
        QVERIFY(c->send(kQuestion, {}, &why));
        waitReply(*c);
        const Message& a = c->model()->message(1);
        QCOMPARE(a.state, Message::State::Failed);
        QVERIFY2(a.error.contains("80 tokens") && a.error.contains("holds 64"), qPrintable(a.error));
        QCOMPARE(err.count(), 1);
        QVERIFY(a.text.isEmpty());

        // A reply that reaches the end of the context says so.
        s.contextLength = 90;
        s.maxTokens = 100;
        c->setSettings(s);
        QVERIFY(c->editAndResend(0, kQuestion, &why));
        waitReply(*c);
        QCOMPARE(c->model()->message(1).state, Message::State::ContextFull);
    }

    void conversationsPersistAndReload() {
        QString id;
        QString text;
        {
            auto c = loaded(greedy(12));
            QSignalSpy listChanged(c.get(), &ChatController::conversationsChanged);
            QString why;
            Attachment a{Attachment::Kind::Document, docPath("notes_crlf.txt"), "notes_crlf.txt", 9, 0};
            QVERIFY(c->send(kQuestion, {a}, &why));
            waitReply(*c);
            QTRY_VERIFY(listChanged.count() >= 1);  // saves are written off the GUI thread
            id = c->model()->conversation().id;
            text = c->model()->message(1).text;
        }
        const auto list = store_->list();
        QVERIFY(std::any_of(list.begin(), list.end(), [&](const auto& s) { return s.id == id; }));

        auto c = loaded(greedy(12));
        QString err;
        QVERIFY2(c->openConversation(id, &err), qPrintable(err));
        QCOMPARE(c->model()->rowCount(), 2);
        QCOMPARE(c->model()->message(0).text, kQuestion);
        QCOMPARE(c->model()->message(0).attachments.size(), 1);
        QCOMPARE(c->model()->message(1).text, text);
        // The reloaded conversation goes on, its document re-read from the conversation's own copy.
        QString why;
        QVERIFY(c->send("How many bridges are there?", {}, &why));
        waitReply(*c);
        QCOMPARE(c->model()->message(3).state, Message::State::Complete);
        QVERIFY(c->exportMarkdown().contains("> Attached: **notes_crlf.txt**"));

        QVERIFY(c->deleteConversation(id, &err));
        QCOMPARE(c->model()->rowCount(), 0);
        QVERIFY(!c->openConversation(id, &err));
    }

    // ---- images ---------------------------------------------------------------------------------------------------

    void imageCostIsKnownBeforeSendingAndTheAnswerStreams() {
        auto c = loaded(greedy(12), vlModelDir());
        QVERIFY(c->modelInfo().visionLanguage);
        QVERIFY(c->imageRefusal("photo.jpg").isEmpty());

        // Token cost off the GUI thread, from the size alone, before anything is sent.
        QSignalSpy measured(c.get(), &ChatController::imageMeasured);
        const Attachment file = imageFile("photo_640x480.jpg");
        c->measureImage(file);
        QVERIFY(measured.isEmpty());  // it comes back from the worker
        QTRY_COMPARE_WITH_TIMEOUT(measured.count(), 1, 30000);
        QCOMPARE(measured[0].at(0).toString(), file.key());
        QCOMPARE(measured[0].at(1).toLongLong(), kPhotoTokens);
        QCOMPARE(measured[0].at(2).toInt(), 640);
        QCOMPARE(measured[0].at(3).toInt(), 480);
        QVERIFY2(measured[0].at(4).toString().isEmpty(), qPrintable(measured[0].at(4).toString()));

        // The context meter counts the image with the draft.
        QSignalSpy usage(c.get(), &ChatController::contextUsageChanged);
        c->setDraft("What is in the picture?", {photo()});
        QTRY_VERIFY_WITH_TIMEOUT(!usage.isEmpty() && usage.last().at(0).toLongLong() > 0, 30000);
        const qint64 draftTokens = usage.last().at(0).toLongLong();
        QVERIFY2(draftTokens > kPhotoTokens && draftTokens < kPhotoTokens + 200, qPrintable(QString::number(draftTokens)));

        QSignalSpy changed(c->model(), &QAbstractItemModel::dataChanged);
        QString why;
        QVERIFY2(c->send("What is in the picture?", {photo()}, &why), qPrintable(why));
        QCOMPARE(c->state(), ChatController::State::Generating);
        waitReply(*c);
        const Message u = c->model()->message(0);
        QCOMPARE(u.attachments.size(), 1);
        QVERIFY(u.attachments[0].isImage());
        QVERIFY(u.attachments[0].path.startsWith(store_->directory()));  // the conversation's own copy
        const Message a = c->model()->message(1);
        QCOMPARE(a.state, Message::State::Complete);
        QCOMPARE(a.stats.completionTokens, 12);
        QCOMPARE(a.stats.promptTokens, draftTokens);  // the meter counted exactly what ran
        qInfo("image turn: %lld prompt tokens, first token after %.2f s (prefill %.2f s)", a.stats.promptTokens, a.stats.timeToFirstToken, a.stats.prefillSeconds);
        QVERIFY(changed.count() >= 5);  // streamed

        // An image's cost shows while an answer is being written (measuring does not wait for the worker).
        c->setSettings(greedy(400));
        QVERIFY(c->send("And the colours?", {}, &why));
        measured.clear();
        c->measureImage(imageFile("drawing_1000x1000.png"));
        QTRY_COMPARE_WITH_TIMEOUT(measured.count(), 1, 30000);
        QCOMPARE(c->state(), ChatController::State::Generating);
        QVERIFY(measured[0].at(1).toLongLong() > 576);
        c->stop();
        c->setSettings(greedy(12));
        QVERIFY(c->regenerate(&why));
        waitReply(*c);

        // The next turn reused the image's tokens; Regenerate and Edit do not run the image again either.
        const qint64 firstTurn = c->model()->message(3).stats.reusedTokens;
        QVERIFY2(firstTurn > kPhotoTokens, qPrintable(QString::number(firstTurn)));
        QVERIFY(c->regenerate(&why));
        waitReply(*c);
        QCOMPARE(c->model()->message(3).stats.reusedTokens, firstTurn);
        QVERIFY(c->editAndResend(2, "And the shapes?", &why));
        waitReply(*c);
        QCOMPARE(c->model()->message(3).stats.reusedTokens, firstTurn);

        // Asking the first question again: the image is in the turn that runs again (no restore point reaches back
        // there, so it is recomputed), and it is the same image: the same greedy answer.
        QVERIFY(c->editAndResend(0, "What is in the picture?", &why));
        waitReply(*c);
        QCOMPARE(c->model()->rowCount(), 2);
        QCOMPARE(c->model()->message(1).stats.reusedTokens, 0);
        QCOMPARE(c->model()->message(1).text, a.text);
        QCOMPARE(c->model()->message(0).attachments.size(), 1);
    }

    void imageConversationsPersistAndReload() {
        QString id, answer, copy;
        {
            auto c = loaded(greedy(8), vlModelDir());
            QString why;
            QVERIFY(c->send("Describe it.", {photo()}, &why));
            waitReply(*c);
            c->flushSaves();
            id = c->model()->conversation().id;
            answer = c->model()->message(1).text;
            copy = c->model()->message(0).attachments[0].path;
        }
        QVERIFY(QFile::exists(copy));
        QFile original(imagePath("photo_640x480.jpg")), copied(copy);
        QVERIFY(original.open(QIODevice::ReadOnly) && copied.open(QIODevice::ReadOnly));
        QVERIFY(original.readAll() == copied.readAll());  // copied byte for byte: never re-encoded or downscaled

        auto c = loaded(greedy(8), vlModelDir());
        QString err;
        QVERIFY2(c->openConversation(id, &err), qPrintable(err));
        const Attachment& a = c->model()->message(0).attachments[0];
        QVERIFY(a.isImage());
        QCOMPARE(a.path, copy);
        QCOMPARE(a.tokens, kPhotoTokens);
        QCOMPARE(c->model()->message(1).text, answer);
        QString why;
        QVERIFY(c->regenerate(&why));  // the image re-enters the prompt from the conversation's copy
        waitReply(*c);
        QCOMPARE(c->model()->message(1).state, Message::State::Complete);
        QCOMPARE(c->model()->message(1).text, answer);
        QVERIFY(c->exportMarkdown().contains("> Attached image: **photo_640x480.jpg**, 640×480, 2340 tokens"));
    }

    void pastedPixelsAreMeasuredSentAndSavedAsPng() {
        auto c = loaded(greedy(6), vlModelDir());
        QImage pixels(300, 200, QImage::Format_ARGB32);
        for (int y = 0; y < pixels.height(); ++y)
            for (int x = 0; x < pixels.width(); ++x) pixels.setPixel(x, y, qRgba(x % 256, y, (x + y) % 256, 128));
        Attachment pasted;
        pasted.kind = Attachment::Kind::Image;
        pasted.name = "Pasted image.png";
        pasted.pixels = pixels;
        QSignalSpy measured(c.get(), &ChatController::imageMeasured);
        c->measureImage(pasted);
        QTRY_COMPARE_WITH_TIMEOUT(measured.count(), 1, 30000);
        QCOMPARE(measured[0].at(0).toString(), pasted.key());
        QVERIFY(pasted.key().startsWith("clipboard:"));
        const qint64 tokens = measured[0].at(1).toLongLong();
        QVERIFY2(tokens > 576, qPrintable(measured[0].at(4).toString()));
        QCOMPARE(measured[0].at(2).toInt(), 300);

        QString why;
        pasted.tokens = tokens;
        QVERIFY2(c->send("What is this?", {pasted}, &why), qPrintable(why));
        waitReply(*c);
        QCOMPARE(c->model()->message(1).state, Message::State::Complete);
        c->flushSaves();
        const QString file = c->model()->message(0).attachments[0].path;
        QVERIFY(file.startsWith(store_->directory()) && file.endsWith(".png"));
        const QImage saved(file);
        QCOMPARE(saved.size(), pixels.size());
        QCOMPARE(saved.convertToFormat(QImage::Format_RGB888), toRgb888(pixels));  // what was measured and sent

        // Reloaded, it comes from the PNG: the same image to the model (the same answer from the same prompt).
        const QString answer = c->model()->message(1).text;
        QString err;
        QVERIFY(c->openConversation(c->model()->conversation().id, &err));
        QVERIFY(c->model()->message(0).attachments[0].pixels.isNull());
        QVERIFY(c->regenerate(&why));
        waitReply(*c);
        QCOMPARE(c->model()->message(1).text, answer);
    }

    void badImagesAreReadableErrors() {
        QTemporaryDir tmp;
        const QString cut = tmp.filePath("cut.jpg");
        {
            QFile src(imagePath("photo_640x480.jpg"));
            QVERIFY(src.open(QIODevice::ReadOnly));
            QFile dst(cut);
            QVERIFY(dst.open(QIODevice::WriteOnly));
            dst.write(src.read(300));
        }
        const QString fake = tmp.filePath("notes.png");
        {
            QFile f(fake);
            QVERIFY(f.open(QIODevice::WriteOnly));
            f.write("this is not a picture\n");
        }
        auto c = loaded(greedy(6), vlModelDir());
        QSignalSpy measured(c.get(), &ChatController::imageMeasured);
        Attachment a = imageFile("photo_640x480.jpg");
        for (const QString& path : {cut, fake, tmp.filePath("missing.png")}) {
            a.path = path;
            a.name = QFileInfo(path).fileName();
            c->measureImage(a);
        }
        QTRY_COMPARE_WITH_TIMEOUT(measured.count(), 3, 30000);
        for (int i = 0; i < 3; ++i) {
            const QString err = measured[i].at(4).toString();
            qInfo("bad image %d: %s", i, qPrintable(err));
            QVERIFY2(!err.isEmpty() && err.contains(QFileInfo(measured[i].at(0).toString()).fileName()), qPrintable(err));
            QCOMPARE(measured[i].at(1).toLongLong(), -1);
        }
        QVERIFY2(measured[0].at(4).toString().contains("corrupt", Qt::CaseInsensitive) ||
                     measured[0].at(4).toString().contains("truncated", Qt::CaseInsensitive),
                 qPrintable(measured[0].at(4).toString()));

        // Sent anyway (the tray would not let it through): the answer fails with the reason, nothing crashes, and
        // the conversation goes on.
        QSignalSpy err(c.get(), &ChatController::errorOccurred);
        a.path = cut;
        a.name = "cut.jpg";
        QString why;
        QVERIFY(c->send("What is this?", {a}, &why));
        waitReply(*c);
        QCOMPARE(c->model()->message(1).state, Message::State::Failed);
        QVERIFY2(c->model()->message(1).error.contains("cut.jpg"), qPrintable(c->model()->message(1).error));
        QCOMPARE(err.count(), 1);
        c->newConversation();
        QVERIFY(c->send("Hello?", {photo()}, &why));
        waitReply(*c);
        QCOMPARE(c->model()->message(1).state, Message::State::Complete);

        // Larger than the context: refused with the numbers, never downscaled.
        GenerationSettings small = greedy(6);
        small.contextLength = 1000;
        c->setSettings(small);
        measured.clear();
        c->measureImage(imageFile("photo_640x480.jpg"));
        QTRY_COMPARE_WITH_TIMEOUT(measured.count(), 1, 30000);
        const QString big = measured[0].at(4).toString();
        QVERIFY2(big.contains("2340 tokens") && big.contains("1000") && big.contains("never downscales"), qPrintable(big));
    }

    void textOnlyModelsRefuseImages() {
        auto c = loaded(greedy(6));
        QVERIFY(!c->modelInfo().visionLanguage);
        const QString why = c->imageRefusal("photo_640x480.jpg");
        QVERIFY2(why.contains("photo_640x480.jpg") && why.contains("tiny-chat") && why.contains("does not take images"),
                 qPrintable(why));
        QSignalSpy measured(c.get(), &ChatController::imageMeasured);
        c->measureImage(imageFile("photo_640x480.jpg"));
        QCOMPARE(measured.count(), 1);
        QVERIFY(measured[0].at(4).toString().contains("does not take images"));
        QString whyNot;
        QVERIFY(!c->send("What is this?", {imageFile("photo_640x480.jpg")}, &whyNot));
        QVERIFY2(whyNot.contains("does not take images"), qPrintable(whyNot));
        QCOMPARE(c->model()->rowCount(), 0);  // nothing was sent
        // The worker says the same if asked directly (e.g. a request queued before a text-only model loaded).
        QSignalSpy direct(c->worker(), &ModelWorker::imageMeasured);
        QMetaObject::invokeMethod(c->worker(), [w = c->worker()] { w->measureImage(imageFile("photo_640x480.jpg"), 0); });
        QTRY_COMPARE_WITH_TIMEOUT(direct.count(), 1, 10000);
        QVERIFY(direct[0].at(4).toString().contains("text-only"));
    }
};

QTEST_GUILESS_MAIN(TestController)
#include "test_controller.moc"
