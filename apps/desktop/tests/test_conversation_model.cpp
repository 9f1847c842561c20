// The conversation model, its JSON form, the Markdown export and the on-disk store (no model needed).
#include <QJsonArray>
#include <QJsonDocument>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QtTest>

#include "conversation_model.h"
#include "chat_controller.h"
#include "conversation_store.h"

using namespace volt::desktop;

class TestConversationModel : public QObject {
    Q_OBJECT

    static Conversation sample() {
        Conversation c = Conversation::createNew();
        Message u;
        u.role = Role::User;
        u.text = "Which city is **north** of the river?";
        u.attachments.append({Attachment::Kind::Document, "/tmp/x/map.pdf", "map.pdf", 321, 3});
        Attachment photo;
        photo.kind = Attachment::Kind::Image;
        photo.path = "/tmp/x/harbour.jpg";
        photo.name = "harbour.jpg";
        photo.tokens = 2340;
        photo.width = 640;
        photo.height = 480;
        u.attachments.append(photo);
        Message a;
        a.role = Role::Assistant;
        a.text = "Belmont.\n\n| City | Pop |\n|---|---|\n| Belmont | 12400 |\n";
        a.state = Message::State::Stopped;
        a.stats.timeToFirstToken = 0.25;
        a.stats.tokensPerSecond = 41.5;
        a.stats.completionTokens = 12;
        c.messages = {u, a};
        return c;
    }

private slots:
    void streamingChangesOnlyTheRow() {
        ConversationModel m;
        QSignalSpy inserted(&m, &QAbstractItemModel::rowsInserted);
        QSignalSpy changed(&m, &QAbstractItemModel::dataChanged);
        Message u;
        u.text = "hi";
        QCOMPARE(m.append(u), 0);
        Message a;
        a.role = Role::Assistant;
        a.state = Message::State::Streaming;
        const int row = m.append(a);
        QCOMPARE(row, 1);
        QCOMPARE(inserted.count(), 2);
        m.appendText(row, "Hel");
        m.appendText(row, "");  // empty pieces (held-back bytes) change nothing
        m.appendText(row, "lo");
        QCOMPARE(changed.count(), 2);
        QCOMPARE(changed.last().at(0).value<QModelIndex>().row(), 1);
        QCOMPARE(m.data(m.index(row), ConversationModel::TextRole).toString(), QString("Hello"));
        QCOMPARE(m.data(m.index(row), ConversationModel::StateRole).toInt(), int(Message::State::Streaming));
        ReplyStats s;
        s.timeToFirstToken = 0.5;
        s.tokensPerSecond = 20;
        s.completionTokens = 2;
        m.finish(row, Message::State::Complete, s);
        const QString stats = m.data(m.index(row), ConversationModel::StatsTextRole).toString();
        QVERIFY2(stats.contains("0.50 s to first token") && stats.contains("20.0 tokens/s"), qPrintable(stats));
        QVERIFY(m.data(m.index(0), ConversationModel::StatsTextRole).toString().isEmpty());  // user rows: none
    }

    void truncateRemovesTail() {
        ConversationModel m;
        m.setConversation(sample());
        QSignalSpy removed(&m, &QAbstractItemModel::rowsRemoved);
        m.truncate(1);
        QCOMPARE(m.rowCount(), 1);
        QCOMPARE(removed.count(), 1);
        m.truncate(5);  // nothing to remove
        QCOMPARE(removed.count(), 1);
        QCOMPARE(m.data(m.index(0), ConversationModel::AttachmentsTextRole).toString(),
                 QString("map.pdf · 3 pages · 321 tokens\nharbour.jpg · 640×480 · 2340 tokens"));
    }

    void jsonRoundTrip() {
        const Conversation c = sample();
        const QByteArray bytes = QJsonDocument(toJson(c)).toJson();
        Conversation back;
        QString error;
        QVERIFY2(fromJson(QJsonDocument::fromJson(bytes).object(), &back, &error), qPrintable(error));
        QCOMPARE(back.id, c.id);
        QCOMPARE(back.messages.size(), 2);
        QCOMPARE(back.messages[0].text, c.messages[0].text);
        QCOMPARE(back.messages[0].attachments.size(), 2);
        QCOMPARE(back.messages[0].attachments[0].tokens, 321);
        QCOMPARE(back.messages[0].attachments[0].pages, 3);
        QVERIFY(!back.messages[0].attachments[0].isImage());
        const Attachment& img = back.messages[0].attachments[1];
        QVERIFY(img.isImage());
        QCOMPARE(img.path, QString("/tmp/x/harbour.jpg"));
        QCOMPARE(img.tokens, 2340);
        QCOMPARE(img.width, 640);
        QCOMPARE(img.height, 480);
        QCOMPARE(back.messages[1].state, Message::State::Stopped);
        QCOMPARE(back.messages[1].stats.completionTokens, 12);
        QCOMPARE(back.messages[1].stats.tokensPerSecond, 41.5);
    }

    void jsonRejectsForeignFiles() {
        Conversation back;
        QString error;
        QVERIFY(!fromJson(QJsonObject{{"id", "x"}}, &back, &error));
        QVERIFY(error.contains("format"));
        QJsonObject o = toJson(sample());
        QJsonArray msgs = o["messages"].toArray();
        QJsonObject m0 = msgs[0].toObject();
        m0["role"] = "robot";
        msgs[0] = m0;
        o["messages"] = msgs;
        QVERIFY(!fromJson(o, &back, &error));
        QVERIFY2(error.contains("robot"), qPrintable(error));
    }

    void streamingStateReloadsAsStopped() {
        QCOMPARE(stateFromName("streaming"), Message::State::Stopped);
    }

    void markdownExport() {
        const QString md = toMarkdown(sample(), "Be brief.");
        QVERIFY(md.startsWith("# Which city is **north** of the river?"));
        QVERIFY(md.contains("## System\n\nBe brief."));
        QVERIFY(md.contains("## User\n\n> Attached: **map.pdf**, 3 pages, 321 tokens"));
        QVERIFY(md.contains("> Attached image: **harbour.jpg**, 640×480, 2340 tokens"));
        QVERIFY(md.contains("| Belmont | 12400 |"));
        QVERIFY(md.contains("_(stopped)_"));
        QVERIFY(md.indexOf("## User") < md.indexOf("## Assistant"));
    }

    void pastedPixelsBecomeRgbWithoutBlending() {
        // Alpha is dropped the way MiniMax-VL-01's processor (PIL convert("RGB")) drops it: each pixel keeps its
        // own colour, even fully transparent ones; nothing is blended onto black or white.
        QImage argb(2, 1, QImage::Format_ARGB32);
        argb.setPixel(0, 0, qRgba(200, 100, 50, 0));
        argb.setPixel(1, 0, qRgba(10, 20, 30, 128));
        const QImage rgb = toRgb888(argb);
        QCOMPARE(rgb.format(), QImage::Format_RGB888);
        QCOMPARE(rgb.pixel(0, 0), qRgb(200, 100, 50));
        QCOMPARE(rgb.pixel(1, 0), qRgb(10, 20, 30));
        QImage pre = QImage(2, 1, QImage::Format_ARGB32_Premultiplied);
        pre.setPixel(0, 0, qRgba(100, 50, 25, 128));  // straight (200, 100, 50) at half opacity
        QVERIFY(qAbs(qRed(toRgb888(pre).pixel(0, 0)) - 199) <= 2);
        QImage grey(3, 2, QImage::Format_Grayscale8);
        grey.fill(77);
        QCOMPARE(toRgb888(grey).pixel(2, 1), qRgb(77, 77, 77));

        Attachment a;
        a.kind = Attachment::Kind::Image;
        a.name = "Pasted image.png";
        a.pixels = argb;
        QVERIFY(a.key().startsWith("clipboard:"));
        a.path = "/data/c/Pasted image.png";  // once written, the file names it
        QCOMPARE(a.key(), a.path);
    }

    void deviceKeys() {
        bool ok = false;
        DeviceChoice d = DeviceChoice::fromKey("cpu", 4, &ok);
        QVERIFY(ok && !d.cuda && d.gpuIds.isEmpty());
        d = DeviceChoice::fromKey("gpu:2", 4, &ok);
        QVERIFY(ok && d.cuda);
        QCOMPARE(d.gpuIds, QList<int>{2});
        d = DeviceChoice::fromKey("gpus:3,1", 4, &ok);  // the user's order is kept (the first is the main GPU)
        QVERIFY(ok);
        QCOMPARE(d.gpuIds, (QList<int>{3, 1}));
        d = DeviceChoice::fromKey("all", 2, &ok);
        QCOMPARE(d.gpuIds, (QList<int>{0, 1}));
        for (const char* bad : {"gpu:4", "gpus:0,0", "gpus:x", "all", "tpu"}) {
            d = DeviceChoice::fromKey(bad, QByteArray(bad) == "all" ? 0 : 4, &ok);
            QVERIFY2(!ok && !d.cuda, bad);  // refused: the window says so rather than run elsewhere silently
        }
        QCOMPARE(DeviceChoice::keyFor({}), QString("cpu"));
        QCOMPARE(DeviceChoice::keyFor({1}), QString("gpu:1"));
        QCOMPARE(DeviceChoice::keyFor({0, 2}), QString("gpus:0,2"));
    }

    void storeSavesListsLoadsAndDeletes() {
        QTemporaryDir dir;
        ConversationStore store(dir.path());
        QTemporaryDir src;
        const QString original = src.filePath("notes.txt");
        {
            QFile f(original);
            QVERIFY(f.open(QIODevice::WriteOnly));
            f.write("hello");
        }
        Conversation c = sample();
        QString error;
        const QString copy = store.importAttachment(c.id, original, &error);
        QVERIFY2(!copy.isEmpty(), qPrintable(error));
        QVERIFY(copy.startsWith(store.directory()));
        const QString copy2 = store.importAttachment(c.id, original, &error);  // same name: a second file
        QVERIFY(copy2 != copy && QFile::exists(copy2));
        QCOMPARE(store.importAttachment(c.id, copy, &error), copy);  // already inside: kept as is
        const QString png = store.reserveAttachment(c.id, "Pasted image.png", &error);
        const QString png2 = store.reserveAttachment(c.id, "Pasted image.png", &error);
        QVERIFY2(png.endsWith("/Pasted image.png") && png2.endsWith("/Pasted image (2).png"), qPrintable(png2));
        QVERIFY(QFile::exists(png) && QFileInfo(png).size() == 0);  // reserved: no other attachment takes the name
        c.messages[0].attachments[0].path = copy;
        QVERIFY2(store.save(c, &error), qPrintable(error));

        Conversation older = Conversation::createNew();
        older.updated = QDateTime::currentDateTimeUtc().addDays(-1);
        older.messages = {sample().messages[0]};
        older.messages[0].text = "older question";
        QVERIFY(store.save(older, &error));
        {
            QFile junk(QDir(store.directory()).filePath("junk.json"));
            QVERIFY(junk.open(QIODevice::WriteOnly));
            junk.write("{not json");
        }
        QStringList warnings;
        const auto list = store.list(&warnings);
        QCOMPARE(list.size(), 2);
        QCOMPARE(list[0].id, c.id);  // newest first
        QCOMPARE(list[1].title, QString("older question"));
        QCOMPARE(warnings.size(), 1);

        older.messages[0].text = "older question, edited";  // list() sees changes behind its cache
        QVERIFY(store.save(older, &error));
        QCOMPARE(store.list()[1].title, QString("older question, edited"));

        Conversation back;
        QVERIFY2(store.load(c.id, &back, &error), qPrintable(error));
        QCOMPARE(back.messages[0].attachments[0].path, copy);
        QVERIFY(store.remove(c.id, &error));
        QVERIFY(!QFile::exists(copy));
        QVERIFY(!store.load(c.id, &back, &error));
        QVERIFY(!store.load("../../etc/passwd", &back, &error));  // ids never name paths outside the store
        QVERIFY(error.contains("invalid"));
    }
};

QTEST_GUILESS_MAIN(TestConversationModel)
#include "test_conversation_model.moc"
