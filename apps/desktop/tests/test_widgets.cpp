// The view classes without a model: the context meter's levels, Markdown rendering (code, tables), the composer's
// keys and pasted files, the chat view's handling of a streaming model and its per-message actions, the tray's
// refusals. (The tray's measuring and the whole window run against the fixture model in test_smoke.)
#include <QAbstractButton>
#include <QLabel>
#include <QMimeData>
#include <QSettings>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTextBlock>
#include <QTextTable>
#include <QToolButton>
#include <QtTest>

#include "attachment_tray.h"
#include "chat_controller.h"
#include "chat_view.h"
#include "composer.h"
#include "context_meter.h"
#include "conversation_model.h"
#include "markdown_view.h"
#include "message_widget.h"
#include "settings_dialog.h"

using namespace volt::desktop;

namespace {

QStringList visibleButtons(QWidget* w) {
    QStringList out;
    for (auto* b : w->findChildren<QToolButton*>())
        if (b->isVisibleTo(w)) out << b->text();
    return out;
}

struct OpenComposer : Composer {
    using Composer::insertFromMimeData;  // what paste and drop call
};

}  // namespace

class TestWidgets : public QObject {
    Q_OBJECT
private slots:
    void contextMeterWarnsBeforeTheLimit() {
        ContextMeter m;
        m.setUsage(-1, 4096, 100);
        QCOMPARE(m.level(), ContextMeter::Level::Unknown);
        m.setUsage(1000, 4096, 1024);
        QCOMPARE(m.level(), ContextMeter::Level::Ok);
        QVERIFY(m.warning().isEmpty());
        m.setUsage(3500, 4096, 1024);  // the prompt fits, a full-length answer would not
        QCOMPARE(m.level(), ContextMeter::Level::Tight);
        QVERIFY2(m.warning().contains("596 tokens are left"), qPrintable(m.warning()));
        m.setUsage(4096, 4096, 1024);
        QCOMPARE(m.level(), ContextMeter::Level::Over);
        QVERIFY(m.warning().contains("Too long"));
        m.setUsage(2'000'000, 1'000'000'000, 0);  // per-mille scale: no int overflow on million-token contexts
        QCOMPARE(m.level(), ContextMeter::Level::Ok);
    }

    void markdownRendersCodeAndTables() {
        MarkdownView v;
        v.resize(500, 10);
        v.show();
        v.setMarkdownText("Intro **bold**\n\n```cpp\nint main() {}\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n");
        QTextDocument* doc = v.document();
        bool shadedCode = false;
        for (QTextBlock b = doc->begin(); b.isValid(); b = b.next())
            if (b.text() == "int main() {}") shadedCode = b.blockFormat().background().style() != Qt::NoBrush;
        QVERIFY(shadedCode);
        QTextTable* table = nullptr;
        for (QTextFrame* f : doc->rootFrame()->childFrames())
            if (auto* t = qobject_cast<QTextTable*>(f)) table = t;
        QVERIFY(table);
        QCOMPARE(table->rows(), 2);
        // "Copy code block" takes the whole block from any of its lines, and nothing outside code.
        MarkdownView code;
        code.setMarkdownText("Run:\n\n```sh\ncmake --preset default\nmake test\n```\n\nDone.");
        const int second = code.document()->find("make test").selectionStart();
        QCOMPARE(code.codeBlockAt(second), QString("cmake --preset default\nmake test"));
        QCOMPARE(code.codeBlockAt(code.document()->find("Done").selectionStart()), QString());
        QCOMPARE(table->format().border(), 1.0);
        const int oneLine = [&] {
            MarkdownView one;
            one.resize(500, 10);
            one.show();
            one.setMarkdownText("x");
            return one.height();
        }();
        QVERIFY2(v.height() > 3 * oneLine, qPrintable(QString("%1 vs one line %2").arg(v.height()).arg(oneLine)));
    }

    void composerKeysAndPastes() {
        OpenComposer c;
        QSignalSpy submitted(&c, &Composer::submitted);
        QSignalSpy files(&c, &Composer::filesPasted);
        QSignalSpy image(&c, &Composer::imageDataPasted);
        QTest::keyClicks(&c, "ab");
        QTest::keyClick(&c, Qt::Key_Return, Qt::ShiftModifier);
        QTest::keyClicks(&c, "c");
        QCOMPARE(c.toPlainText(), QString("ab\nc"));
        QCOMPARE(submitted.count(), 0);
        QTest::keyClick(&c, Qt::Key_Return);
        QCOMPARE(submitted.count(), 1);
        QCOMPARE(c.toPlainText(), QString("ab\nc"));  // sending is the window's job, Enter adds no newline

        QMimeData urls;
        urls.setUrls({QUrl::fromLocalFile("/tmp/a.pdf")});
        c.insertFromMimeData(&urls);
        QCOMPARE(files.count(), 1);
        QCOMPARE(files.first().first().toStringList(), QStringList{"/tmp/a.pdf"});
        QMimeData img;
        img.setImageData(QImage(4, 4, QImage::Format_RGB32));
        c.insertFromMimeData(&img);
        QCOMPARE(image.count(), 1);
        QMimeData text;
        text.setText(" pasted");
        c.insertFromMimeData(&text);
        QVERIFY(c.toPlainText().endsWith(" pasted"));
    }

    void chatViewFollowsTheModel() {
        ConversationModel model;
        ChatView view(&model);
        view.resize(600, 400);
        Message u;
        u.text = "question";
        model.append(u);
        Message a;
        a.role = Role::Assistant;
        a.state = Message::State::Streaming;
        const int row = model.append(a);
        QCOMPARE(view.count(), 2);
        view.setBusy(true);
        // While streaming: no Regenerate; text pieces are coalesced and shown within the render interval.
        QVERIFY(!visibleButtons(view.messageWidget(row)).contains("Regenerate"));
        model.appendText(row, "Hello ");
        model.appendText(row, "**world**");
        QTRY_COMPARE(view.messageWidget(row)->text(), QString("Hello **world**"));
        model.finish(row, Message::State::Complete, {});
        view.setBusy(false);
        QVERIFY(visibleButtons(view.messageWidget(row)).contains("Regenerate"));
        QVERIFY(visibleButtons(view.messageWidget(0)).contains("Edit"));
        QVERIFY(!visibleButtons(view.messageWidget(row)).contains("Edit"));

        QSignalSpy edit(&view, &ChatView::editRequested);
        QSignalSpy regen(&view, &ChatView::regenerateRequested);
        for (auto* b : view.messageWidget(0)->findChildren<QToolButton*>())
            if (b->text() == "Edit") b->click();
        for (auto* b : view.messageWidget(row)->findChildren<QToolButton*>())
            if (b->text() == "Regenerate") b->click();
        QCOMPARE(edit.count(), 1);
        QCOMPARE(edit.first().first().toInt(), 0);
        QCOMPARE(regen.count(), 1);

        // A new answer row takes over Regenerate; truncation removes widgets.
        Message a2;
        a2.role = Role::Assistant;
        model.append(a2);
        QVERIFY(!visibleButtons(view.messageWidget(row)).contains("Regenerate"));
        model.truncate(1);
        QCOMPARE(view.count(), 1);
        model.setConversation(Conversation::createNew());
        QCOMPARE(view.count(), 0);
    }

    void failedAnswersShowTheirReason() {
        MessageWidget w;
        Message m;
        m.role = Role::Assistant;
        m.state = Message::State::Failed;
        m.error = "The conversation takes 80 tokens but the context holds 64.";
        w.setMessage(m, true, false);
        bool shown = false;
        for (auto* l : w.findChildren<QLabel*>())
            if (l->text() == m.error) shown = l->isVisibleTo(&w);
        QVERIFY(shown);
    }

    void settingsRoundTrip() {
        GenerationSettings s;
        s.systemPrompt = "Answer in French.";
        s.temperature = 0.35;
        s.topP = 0.9;
        s.topK = 40;
        s.maxTokens = 777;
        s.contextLength = 2048;
        s.seed = 12345678901234ull;
        SettingsDialog d(s, 4096);
        QCOMPARE(d.settings(), s);  // the dialog shows and returns every field unchanged

        QTemporaryDir dir;
        {
            QSettings ini(dir.filePath("s.ini"), QSettings::IniFormat);
            s.save(ini);
        }
        QSettings ini(dir.filePath("s.ini"), QSettings::IniFormat);
        GenerationSettings back;
        back.load(ini);
        QCOMPARE(back, s);
        ini.setValue("generation/temperature", 9.0);  // out of range from a hand-edited file: clamped
        ini.setValue("generation/max_tokens", -5);
        back.load(ini);
        QCOMPARE(back.temperature, 2.0);
        QCOMPARE(back.maxTokens, 1);
    }

    void trayRefusesWhatCannotBeAttached() {
        QTemporaryDir data;
        ConversationStore store(data.path());
        ChatController controller(&store);  // no model: files wait to be measured
        AttachmentTray tray(&controller);
        QSignalSpy refused(&tray, &AttachmentTray::refused);
        QSignalSpy changed(&tray, &AttachmentTray::changed);
        QFile txt(data.filePath("notes.txt"));
        QVERIFY(txt.open(QIODevice::WriteOnly));
        txt.write("hello");
        txt.close();
        QCOMPARE(tray.addFiles({data.filePath("notes.txt"), data.filePath("map.PNG"), data.path()}), 1);
        QCOMPARE(refused.count(), 1);
        const QString why = refused.first().first().toString();
        QVERIFY2(why.contains("map.PNG: image input is not available") && why.contains("not a file"), qPrintable(why));
        QCOMPARE(tray.addFiles({data.filePath("notes.txt")}), 0);  // already there
        QCOMPARE(tray.attachments().size(), 1);
        QCOMPARE(tray.attachments()[0].tokens, -1);
        QVERIFY(tray.blockingReason().isEmpty());  // no model: nothing to wait for (Send says "open a model")
        QCOMPARE(changed.count(), 1);
        tray.clear();
        QVERIFY(tray.isEmpty());
    }
};

QTEST_MAIN(TestWidgets)
#include "test_widgets.moc"
