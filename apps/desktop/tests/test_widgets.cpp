// The view classes without a model: the context meter's levels, Markdown rendering (code, tables), the composer's
// keys and pasted files and images, the chat view's handling of a streaming model and its per-message actions,
// image thumbnails in messages, the image viewer's zoom and pan, the tray's refusals and pasted images. (The tray's
// measuring and the whole window run against the fixture models in test_smoke.)
#include <QAbstractButton>
#include <QGraphicsView>
#include <QScrollBar>
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
#include "image_viewer.h"
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
        img.setImageData(QImage(4, 3, QImage::Format_RGB32));
        c.insertFromMimeData(&img);
        QCOMPARE(image.count(), 1);
        QCOMPARE(image.first().first().value<QImage>().size(), QSize(4, 3));  // the pixels go to the tray
        QVERIFY(c.toPlainText().endsWith("ab\nc"));
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
        s.expertWeights = "int8";
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
        ini.setValue("generation/expert_weights", "fp4");  // not a choice: as loaded
        back.load(ini);
        QCOMPARE(back.temperature, 2.0);
        QCOMPARE(back.maxTokens, 1);
        QCOMPARE(back.expertWeights, QString("bf16"));
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
        QVERIFY(QImage(30, 20, QImage::Format_RGB32).save(data.filePath("map.PNG")));
        QCOMPARE(tray.addFiles({data.filePath("notes.txt"), data.filePath("map.PNG"), data.path(),
                                data.filePath("gone.png")}), 2);
        QCOMPARE(refused.count(), 1);
        const QString why = refused.first().first().toString();
        QVERIFY2(why.contains(data.path() + ": not a file") && why.contains("gone.png: not a file"), qPrintable(why));
        QCOMPARE(tray.addFiles({data.filePath("notes.txt")}), 0);  // already there
        QCOMPARE(tray.attachments().size(), 2);
        QCOMPARE(tray.attachments()[0].tokens, -1);
        QVERIFY(!tray.attachments()[0].isImage());
        QVERIFY(tray.attachments()[1].isImage());  // by its extension, whatever its case
        QVERIFY(tray.blockingReason().isEmpty());  // no model: nothing to wait for (Send says "open a model")
        bool waitingForModel = false;
        for (auto* b : tray.findChildren<QToolButton*>())
            waitingForModel |= b->text().startsWith("map.PNG") && b->text().contains("once a model is loaded");
        QVERIFY(waitingForModel);
        QCOMPARE(changed.count(), 1);
        tray.clear();
        QVERIFY(tray.isEmpty());
    }

    void trayTakesPastedAndDroppedImageData() {
        QTemporaryDir data;
        ConversationStore store(data.path());
        ChatController controller(&store);
        AttachmentTray tray(&controller);
        QSignalSpy refused(&tray, &AttachmentTray::refused);
        QImage shot(64, 48, QImage::Format_ARGB32);
        shot.fill(Qt::blue);
        QVERIFY(tray.addImageData(shot));
        QMimeData mime;  // dragged out of a browser: image data without a file
        mime.setImageData(QImage(10, 10, QImage::Format_RGB32));
        QVERIFY(tray.addMime(&mime));
        QVERIFY(!tray.addImageData(QImage()));
        QCOMPARE(refused.count(), 1);
        const auto list = tray.attachments();
        QCOMPARE(list.size(), 2);
        QCOMPARE(list[0].name, QString("Pasted image.png"));
        QCOMPARE(list[1].name, QString("Pasted image 2.png"));
        QVERIFY(list[0].isImage() && list[0].path.isEmpty() && list[0].pixels.size() == QSize(64, 48));
        QCOMPARE(list[0].describe(), QString("Pasted image.png · 64×48"));
        QVERIFY(list[0].key() != list[1].key());
        QMimeData plain;
        plain.setText("just text");
        QVERIFY(!tray.addMime(&plain));
    }

    void messagesShowImageThumbnails() {
        QTemporaryDir data;
        const QString path = data.filePath("harbour.png");
        QImage picture(800, 400, QImage::Format_RGB32);
        picture.fill(Qt::darkGreen);
        QVERIFY(picture.save(path));
        Message m;
        m.text = "What is in the picture?";
        Attachment a;
        a.kind = Attachment::Kind::Image;
        a.path = path;
        a.name = "harbour.png";
        a.tokens = 1234;
        a.width = 800;
        a.height = 400;
        m.attachments = {a};
        MessageWidget w;
        w.setMessage(m, false, false);
        QToolButton* thumb = nullptr;
        for (auto* b : w.findChildren<QToolButton*>())
            if (b->text().startsWith("harbour.png")) thumb = b;
        QVERIFY(thumb);
        QCOMPARE(thumb->text(), QString("harbour.png · 800×400 · 1234 tokens"));
        QCOMPARE(thumb->toolButtonStyle(), Qt::ToolButtonTextUnderIcon);
        // Made off the GUI thread, then shown: the picture's own pixels (green), at thumbnail size.
        QTRY_VERIFY_WITH_TIMEOUT(!thumb->icon().availableSizes().isEmpty() &&
                                     thumb->icon().pixmap(QSize(160, 160)).toImage().pixelColor(10, 10) == QColor(Qt::darkGreen),
                                 10000);
        QCOMPARE(thumb->icon().availableSizes().first(), QSize(320, 160));
        QSignalSpy open(&w, &MessageWidget::attachmentActivated);
        thumb->click();
        QCOMPARE(open.count(), 1);
        QCOMPARE(open.first().first().value<Attachment>().path, path);
    }

    void imageViewerZoomsAndPans() {
        QTemporaryDir data;
        const QString path = data.filePath("map.png");
        QImage map(2400, 1600, QImage::Format_RGB32);
        map.fill(Qt::white);
        for (int x = 0; x < map.width(); x += 100)
            for (int y = 0; y < map.height(); ++y) map.setPixel(x, y, qRgb(0, 0, 0));
        QVERIFY(map.save(path));
        Attachment a;
        a.kind = Attachment::Kind::Image;
        a.path = path;
        a.name = "map.png";
        a.tokens = 4000;
        ImageViewer v(a);
        v.resize(800, 600);
        v.show();
        QVERIFY(QTest::qWaitForWindowExposed(&v));
        QTRY_VERIFY_WITH_TIMEOUT(v.isLoaded(), 10000);  // decoded off the GUI thread
        QVERIFY(v.fitting());
        QVERIFY2(v.zoom() < 0.4 && v.zoom() > 0.2, qPrintable(QString::number(v.zoom())));
        QVERIFY2(v.statusText().contains("2400×1600") && v.statusText().contains("4000 tokens") &&
                     v.statusText().contains("(fit)"), qPrintable(v.statusText()));
        const double fit = v.zoom();
        v.zoomBy(1.25);
        QVERIFY(!v.fitting());
        QCOMPARE(v.zoom(), fit * 1.25);
        QTest::keyClick(&v, Qt::Key_Minus);
        QVERIFY(qAbs(v.zoom() - fit) < 1e-9);
        v.actualSize();
        QCOMPARE(v.zoom(), 1.0);
        QVERIFY(v.statusText().contains("100%"));

        // Wheel: zooms (around the pointer) instead of scrolling.
        QWidget* port = v.view()->viewport();
        const QPointF at(port->width() / 2.0, port->height() / 2.0);
        QWheelEvent wheel(at, port->mapToGlobal(at), {}, {0, 120}, Qt::NoButton, Qt::NoModifier, Qt::NoScrollPhase, false);
        QCoreApplication::sendEvent(port, &wheel);
        QCOMPARE(v.zoom(), 1.25);

        // Drag: pans.
        QScrollBar* hbar = v.view()->horizontalScrollBar();
        QScrollBar* vbar = v.view()->verticalScrollBar();
        QVERIFY(hbar->maximum() > 0 && vbar->maximum() > 0);
        const int h0 = hbar->value(), v0 = vbar->value();
        const QPoint from = at.toPoint();
        QTest::mousePress(port, Qt::LeftButton, {}, from);
        for (int step = 1; step <= 5; ++step) {
            QMouseEvent move(QEvent::MouseMove, from + QPoint(20 * step, 10 * step), port->mapToGlobal(from + QPoint(20 * step, 10 * step)),
                             Qt::NoButton, Qt::LeftButton, Qt::NoModifier);
            QCoreApplication::sendEvent(port, &move);
        }
        QTest::mouseRelease(port, Qt::LeftButton, {}, from + QPoint(100, 50));
        QCOMPARE(hbar->value(), h0 - 100);  // the image follows the pointer
        QCOMPARE(vbar->value(), v0 - 50);

        QTest::keyClick(&v, Qt::Key_0);  // fit again, and it keeps fitting as the window resizes
        QVERIFY(v.fitting());
        v.resize(1200, 900);
        QTRY_VERIFY(v.zoom() > fit);

        // A file that cannot be read: a message, no crash.
        const QString junk = data.filePath("junk.png");
        QFile f(junk);
        QVERIFY(f.open(QIODevice::WriteOnly));
        f.write("not a png");
        f.close();
        a.path = junk;
        a.name = "junk.png";
        ImageViewer bad(a);
        QTRY_VERIFY_WITH_TIMEOUT(bad.isLoaded(), 10000);
        QVERIFY2(bad.statusText().startsWith("Cannot show the image") && bad.statusText().contains("junk.png"),
                 qPrintable(bad.statusText()));
        bad.zoomBy(2);  // nothing to zoom: harmless
    }
};

QTEST_MAIN(TestWidgets)
#include "test_widgets.moc"
