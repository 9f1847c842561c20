// The controller and its worker against the tiny-chat fixture on the CPU: load, send, stream, stop, regenerate,
// edit, documents, the context meter and persistence. Greedy answers are checked against the transformers
// reference (tests/data/tiny-chat/reference/chat.json), so a wrong prompt or a lost token fails here.
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
QString docPath(const char* name) { return dataDir() + "/documents/" + name; }

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
    std::unique_ptr<ChatController> loaded(const GenerationSettings& s) {
        auto c = std::make_unique<ChatController>(store_.get());
        c->setSettings(s);
        QSignalSpy ok(c.get(), &ChatController::modelLoaded);
        QSignalSpy err(c.get(), &ChatController::errorOccurred);
        c->openModel(modelDir(), {});
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
        // (The prompt is recomputed: the session held prompt + old answer, and a lightning cache cannot rewind.)
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
};

QTEST_GUILESS_MAIN(TestController)
#include "test_controller.moc"
