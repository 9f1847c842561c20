#include "main_window.h"

#include <QAction>
#include <QApplication>
#include <QClipboard>
#include <QCloseEvent>
#include <QCheckBox>
#include <QComboBox>
#include <QDialogButtonBox>
#include <QDockWidget>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QLabel>
#include <QListWidget>
#include <QLocale>
#include <QMenuBar>
#include <QMessageBox>
#include <QMimeData>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QSaveFile>
#include <QSettings>
#include <QSplitter>
#include <QStatusBar>
#include <QStyle>
#include <QToolBar>
#include <QToolButton>
#include <QVBoxLayout>
#include <QtConcurrent/QtConcurrentRun>

#include "attachment_tray.h"
#include "chat_view.h"
#include "composer.h"
#include "context_meter.h"
#include "document_viewer.h"
#include "image_viewer.h"
#include "log_bridge.h"
#include "settings_dialog.h"
#include "volt.h"

namespace volt::desktop {

namespace {

constexpr int kMaxRecent = 8;
const QString kDocumentPatterns = QStringLiteral("*.pdf *.txt *.md *.markdown *.rst *.csv *.json *.log");

QString humanCount(qint64 n) {
    if (n >= 1000000000) return QString::number(n / 1e9, 'f', 1) + QStringLiteral("B");
    if (n >= 1000000) return QString::number(n / 1e6, 'f', 1) + QStringLiteral("M");
    if (n >= 1000) return QString::number(n / 1e3, 'f', 1) + QStringLiteral("K");
    return QString::number(n);
}

}  // namespace

MainWindow::MainWindow(ChatController* controller, QSettings* settings, QWidget* parent)
    : QMainWindow(parent), controller_(controller), settings_(settings), log_(new LogBridge(this)) {
    setAcceptDrops(true);
    buildUi();
    buildMenus();

    GenerationSettings gs;
    gs.load(*settings_);
    controller_->setSettings(gs);

    connect(controller_, &ChatController::stateChanged, this, &MainWindow::onStateChanged);
    connect(controller_, &ChatController::modelLoaded, this, &MainWindow::onModelLoaded);
    connect(controller_, &ChatController::loadProgress, this, [this](const QString& phase, double fraction) {
        loadPhase_->setText(phase);
        loadBar_->setValue(int(fraction * 100));
    });
    connect(controller_, &ChatController::errorOccurred, this, &MainWindow::showBanner);
    connect(controller_, &ChatController::contextUsageChanged, meter_, &ContextMeter::setUsage);
    connect(controller_, &ChatController::liveStats, this, [this](double ttft, double tps, qint64 tokens) {
        if (ttft < 0 && tokens == 0) {
            liveStats_->setText(tr("reading the prompt…"));
            return;
        }
        QStringList parts;
        if (ttft >= 0) parts << tr("first token %1 s").arg(ttft, 0, 'f', 2);
        if (tps > 0) parts << tr("%1 tokens/s").arg(tps, 0, 'f', 1);
        parts << countText(tokens, tr("token"), tr("tokens"));
        liveStats_->setText(parts.join(QStringLiteral(" · ")));
    });
    connect(controller_, &ChatController::conversationsChanged, this, &MainWindow::refreshConversationList);
    connect(controller_, &ChatController::conversationSwitched, this, [this] {
        cancelEdit();
        refreshConversationList();
        updateTitle();
        settings_->setValue("last_conversation", controller_->model()->conversation().id);
    });
    connect(controller_, &ChatController::conversationsChanged, this, [this] {
        if (!controller_->model()->conversation().messages.isEmpty())
            settings_->setValue("last_conversation", controller_->model()->conversation().id);
    });
    connect(controller_, &ChatController::replyFinished, this, [this] { updateTitle(); });
    connect(log_, &LogBridge::message, this, [this](int level, const QString& text) {
        static const char* names[] = {"debug", "info", "warning", "error"};
        logView_->appendPlainText(QStringLiteral("[%1] %2").arg(QLatin1String(names[std::clamp(level, 0, 3)]), text));
    });

    fillDevices();
    connect(&gpuWatcher_, &QFutureWatcher<QList<GpuStatus>>::finished, this, [this] {
        const QList<GpuStatus> gpus = gpuWatcher_.result();
        QStringList lines;
        for (const GpuStatus& g : gpus) {
            const int item = device_->findData(QStringLiteral("gpu:%1").arg(g.index));
            if (item >= 0) device_->setItemText(item, GpuProbe::describe(g));
            if (g.known) lines << GpuProbe::describe(g);
        }
        gpuLabel_->setText(lines.isEmpty() ? QString() : lines.join(QStringLiteral("  |  ")));
    });
    gpuTimer_.setInterval(5000);
    connect(&gpuTimer_, &QTimer::timeout, this, &MainWindow::pollGpus);
    if (gpuCount_ > 0) {
        pollGpus();
        gpuTimer_.start();
    }

    // The app opens where the user left off (a conversation that was deleted or cannot be read: a new one).
    if (const QString last = settings_->value("last_conversation").toString(); !last.isEmpty()) {
        QString ignored;
        controller_->openConversation(last, &ignored);
    }
    refreshConversationList();
    rebuildRecentMenu();
    onStateChanged();
    updateTitle();
    if (!restoreGeometry(settings_->value("window/geometry").toByteArray())) resize(1180, 780);
}

MainWindow::~MainWindow() { gpuWatcher_.waitForFinished(); }

// ---- layout ----------------------------------------------------------------------------------------------------------

void MainWindow::buildUi() {
    // Model bar.
    auto* bar = addToolBar(tr("Model"));
    bar->setObjectName(QStringLiteral("modelbar"));
    bar->setMovable(false);
    openButton_ = new QToolButton(this);
    openButton_->setText(tr("Open model…"));
    openButton_->setIcon(style()->standardIcon(QStyle::SP_DirOpenIcon));
    openButton_->setToolButtonStyle(Qt::ToolButtonTextBesideIcon);
    openButton_->setPopupMode(QToolButton::MenuButtonPopup);
    connect(openButton_, &QToolButton::clicked, this, &MainWindow::chooseModelDirectory);
    bar->addWidget(openButton_);
    bar->addWidget(new QLabel(tr("  Device "), this));
    device_ = new QComboBox(this);
    device_->setSizeAdjustPolicy(QComboBox::AdjustToContents);
    bar->addWidget(device_);
    modelLabel_ = new QLabel(tr("  No model loaded"), this);
    modelLabel_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    bar->addWidget(modelLabel_);

    // Left: conversations.
    auto* left = new QWidget(this);
    auto* lv = new QVBoxLayout(left);
    lv->setContentsMargins(6, 6, 0, 6);
    auto* newChat = new QPushButton(tr("New conversation"), left);
    connect(newChat, &QPushButton::clicked, this, [this] { controller_->newConversation(); });
    conversations_ = new QListWidget(left);
    conversations_->setContextMenuPolicy(Qt::ActionsContextMenu);
    auto* del = new QAction(tr("Delete conversation"), conversations_);
    del->setShortcut(QKeySequence::Delete);
    del->setShortcutContext(Qt::WidgetShortcut);
    connect(del, &QAction::triggered, this, [this] {
        QListWidgetItem* item = conversations_->currentItem();
        if (!item) return;
        const auto answer = QMessageBox::question(this, tr("Delete conversation"),
                                                  tr("Delete \"%1\" and its attachments?").arg(item->text()));
        if (answer != QMessageBox::Yes) return;
        QString err;
        if (!controller_->deleteConversation(item->data(Qt::UserRole).toString(), &err))
            showBanner(tr("The conversation was not deleted"), err);
    });
    conversations_->addAction(del);
    connect(conversations_, &QListWidget::itemActivated, this, [this](QListWidgetItem* item) {
        const QString id = item->data(Qt::UserRole).toString();
        if (id == controller_->model()->conversation().id) return;
        QString err;
        if (!controller_->openConversation(id, &err)) showBanner(tr("The conversation did not open"), err);
    });
    connect(conversations_, &QListWidget::itemClicked, conversations_, &QListWidget::itemActivated);
    lv->addWidget(newChat);
    lv->addWidget(conversations_, 1);

    // Right: chat.
    auto* right = new QWidget(this);
    auto* rv = new QVBoxLayout(right);
    rv->setContentsMargins(0, 6, 6, 6);
    banner_ = new QFrame(right);
    banner_->setObjectName(QStringLiteral("banner"));
    banner_->setStyleSheet(QStringLiteral("QFrame#banner { background: #fdecea; border: 1px solid #f5c2c0; border-radius: 6px; }"));
    auto* bh = new QHBoxLayout(banner_);
    bannerLabel_ = new QLabel(banner_);
    bannerLabel_->setWordWrap(true);
    bannerLabel_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    auto* closeBanner = new QToolButton(banner_);
    closeBanner->setText(QStringLiteral("✕"));
    closeBanner->setAutoRaise(true);
    closeBanner->setToolTip(tr("Dismiss"));
    connect(closeBanner, &QToolButton::clicked, this, &MainWindow::hideBanner);
    bh->addWidget(bannerLabel_, 1);
    bh->addWidget(closeBanner, 0, Qt::AlignTop);
    banner_->hide();
    rv->addWidget(banner_);

    chatView_ = new ChatView(controller_->model(), right);
    rv->addWidget(chatView_, 1);
    connect(chatView_, &ChatView::copyRequested, this, &MainWindow::copyMessage);
    connect(chatView_, &ChatView::editRequested, this, &MainWindow::startEdit);
    connect(chatView_, &ChatView::regenerateRequested, this, [this] {
        QString why;
        if (!controller_->regenerate(&why)) showBanner(tr("Cannot regenerate"), why);
    });
    connect(chatView_, &ChatView::attachmentActivated, this, &MainWindow::openAttachment);

    editBar_ = new QFrame(right);
    editBar_->setStyleSheet(QStringLiteral("QFrame { background: #fff8e1; border-radius: 4px; }"));
    auto* eh = new QHBoxLayout(editBar_);
    eh->setContentsMargins(8, 2, 2, 2);
    eh->addWidget(new QLabel(tr("Editing your message: Send replaces it and the answers after it (its attachments stay; "
                                "files attached now are added)."), editBar_), 1);
    auto* cancelEditButton = new QToolButton(editBar_);
    cancelEditButton->setText(tr("Cancel edit"));
    connect(cancelEditButton, &QToolButton::clicked, this, &MainWindow::cancelEdit);
    eh->addWidget(cancelEditButton);
    editBar_->hide();
    rv->addWidget(editBar_);

    tray_ = new AttachmentTray(controller_, right);
    connect(tray_, &AttachmentTray::refused, this, [this](const QString& why) { showBanner(tr("Not attached"), why); });
    connect(tray_, &AttachmentTray::changed, this, &MainWindow::pushDraft);
    connect(tray_, &AttachmentTray::openRequested, this, &MainWindow::openAttachment);
    rv->addWidget(tray_);

    auto* meterRow = new QHBoxLayout;
    meter_ = new ContextMeter(right);
    liveStats_ = new QLabel(right);
    liveStats_->setAlignment(Qt::AlignRight | Qt::AlignVCenter);
    meterRow->addWidget(meter_, 1);
    meterRow->addWidget(liveStats_);
    rv->addLayout(meterRow);

    auto* composeRow = new QHBoxLayout;
    attach_ = new QToolButton(right);
    attach_->setIcon(style()->standardIcon(QStyle::SP_FileDialogNewFolder));
    attach_->setText(tr("Attach…"));
    attach_->setToolButtonStyle(Qt::ToolButtonTextBesideIcon);
    attach_->setToolTip(tr("Attach images, PDF, text or Markdown files (or drop them on the window, or paste them; "
                           "a screenshot on the clipboard pastes as an image)"));
    attach_->setAccessibleName(tr("Attach files"));
    connect(attach_, &QToolButton::clicked, this, &MainWindow::chooseAttachments);
    composer_ = new Composer(right);
    composer_->setMaximumHeight(composer_->sizeHint().height() * 2);
    connect(composer_, &Composer::submitted, this, &MainWindow::onSendOrStop);
    connect(composer_, &Composer::textChanged, this, &MainWindow::pushDraft);
    connect(composer_, &Composer::filesPasted, tray_, &AttachmentTray::addFiles);
    connect(composer_, &Composer::imageDataPasted, tray_, &AttachmentTray::addImageData);
    send_ = new QPushButton(tr("Send"), right);
    send_->setDefault(true);
    send_->setMinimumWidth(80);
    connect(send_, &QPushButton::clicked, this, &MainWindow::onSendOrStop);
    composeRow->addWidget(attach_, 0, Qt::AlignBottom);
    composeRow->addWidget(composer_, 1);
    composeRow->addWidget(send_, 0, Qt::AlignBottom);
    rv->addLayout(composeRow);

    auto* split = new QSplitter(this);
    split->addWidget(left);
    split->addWidget(right);
    split->setStretchFactor(1, 1);
    split->setSizes({230, 900});
    setCentralWidget(split);

    // Status bar: load progress (while loading) and GPU memory.
    loadPhase_ = new QLabel(this);
    loadBar_ = new QProgressBar(this);
    loadBar_->setRange(0, 100);
    loadBar_->setFixedWidth(220);
    cancelLoad_ = new QPushButton(tr("Cancel"), this);
    connect(cancelLoad_, &QPushButton::clicked, controller_, &ChatController::cancelLoad);
    statusBar()->addWidget(loadPhase_);
    statusBar()->addWidget(loadBar_);
    statusBar()->addWidget(cancelLoad_);
    gpuLabel_ = new QLabel(this);
    statusBar()->addPermanentWidget(gpuLabel_);

    // Log panel (Volt's messages: document warnings, loading details).
    auto* dock = new QDockWidget(tr("Log"), this);
    dock->setObjectName(QStringLiteral("log"));
    logView_ = new QPlainTextEdit(dock);
    logView_->setReadOnly(true);
    logView_->setMaximumBlockCount(5000);
    dock->setWidget(logView_);
    addDockWidget(Qt::BottomDockWidgetArea, dock);
    dock->hide();
    logView_->setProperty("dock", QVariant::fromValue(static_cast<QObject*>(dock)));
}

void MainWindow::buildMenus() {
    QMenu* file = menuBar()->addMenu(tr("&File"));
    file->addAction(tr("&Open model…"), QKeySequence::Open, this, &MainWindow::chooseModelDirectory);
    recentMenu_ = file->addMenu(tr("Recent models"));
    openButton_->setMenu(recentMenu_);
    file->addSeparator();
    file->addAction(tr("&New conversation"), QKeySequence::New, this, [this] { controller_->newConversation(); });
    file->addAction(tr("&Attach files…"), QKeySequence(tr("Ctrl+Shift+A")), this, &MainWindow::chooseAttachments);
    file->addAction(tr("&Export conversation as Markdown…"), QKeySequence(tr("Ctrl+E")), this,
                    &MainWindow::exportConversation);
    file->addAction(tr("&Copy conversation as Markdown"), QKeySequence(tr("Ctrl+Shift+C")), this,
                    [this] { QApplication::clipboard()->setText(controller_->exportMarkdown()); });
    file->addSeparator();
    file->addAction(tr("&Quit"), QKeySequence::Quit, this, &QWidget::close);

    QMenu* chat = menuBar()->addMenu(tr("&Chat"));
    stopAction_ = chat->addAction(tr("&Stop"), QKeySequence(Qt::Key_Escape), controller_, &ChatController::stop);
    regenerateAction_ = chat->addAction(tr("&Regenerate"), QKeySequence(tr("Ctrl+R")), this, [this] {
        QString why;
        if (!controller_->regenerate(&why)) showBanner(tr("Cannot regenerate"), why);
    });
    chat->addSeparator();
    chat->addAction(tr("S&ettings…"), QKeySequence::Preferences, this, &MainWindow::openSettings);

    QMenu* view = menuBar()->addMenu(tr("&View"));
    if (auto* dock = findChild<QDockWidget*>(QStringLiteral("log"))) view->addAction(dock->toggleViewAction());
}

// ---- state -----------------------------------------------------------------------------------------------------------

void MainWindow::onStateChanged() {
    using S = ChatController::State;
    const S s = controller_->state();
    const bool loading = s == S::Loading;
    const bool generating = s == S::Generating;
    loadPhase_->setVisible(loading);
    loadBar_->setVisible(loading);
    cancelLoad_->setVisible(loading);
    send_->setText(generating ? tr("Stop") : tr("Send"));
    send_->setToolTip(generating ? tr("Stop the answer (Esc)") : tr("Send (Enter)"));
    send_->setEnabled(s == S::Ready || generating);
    stopAction_->setEnabled(generating);
    regenerateAction_->setEnabled(s == S::Ready);
    device_->setEnabled(!loading && !generating);
    chatView_->setBusy(generating || loading);
    if (s == S::NoModel) {
        modelLabel_->setText(tr("  No model loaded"));
        meter_->setUsage(-1, 0, 0);
    }
    if (loading) modelLabel_->setText(tr("  Loading %1…").arg(QFileInfo(loadingDir_).fileName()));
}

void MainWindow::onModelLoaded(const ModelInfo& info) {
    const QLocale loc;
    QString text = QStringLiteral("  <b>%1</b> · %2").arg(QFileInfo(info.path).fileName().toHtmlEscaped(), info.modelType);
    text += info.visionLanguage ? tr(" · vision-language") : tr(" · text only");
    text += tr(" · %1 layers (%2 softmax) · %3 params, %4 active · context %5 · %6 · loaded in %7 s")
                .arg(info.numLayers)
                .arg(info.numSoftmaxLayers)
                .arg(humanCount(info.totalParams), humanCount(info.activeParams), loc.toString(info.maxContext),
                     info.device)
                .arg(info.loadSeconds, 0, 'f', 1);
    modelLabel_->setText(text);
    modelLabel_->setToolTip(info.path);
    addRecent(info.path);
    hideBanner();
    tray_->remeasure();
    pushDraft();
}

void MainWindow::showBanner(const QString& title, const QString& message) {
    bannerLabel_->setText(QStringLiteral("<b>%1</b><br>%2").arg(title.toHtmlEscaped(),
                                                              message.toHtmlEscaped().replace('\n', "<br>")));
    banner_->show();
    logView_->appendPlainText(QStringLiteral("[app] %1: %2").arg(title, message));
}

void MainWindow::hideBanner() { banner_->hide(); }

QString MainWindow::bannerText() const { return banner_->isVisible() ? bannerLabel_->text() : QString(); }
QString MainWindow::modelText() const { return modelLabel_->text(); }

void MainWindow::updateTitle() {
    setWindowTitle(tr("%1 — Volt").arg(controller_->model()->conversation().displayTitle()));
}

// ---- chat ------------------------------------------------------------------------------------------------------------

void MainWindow::pushDraft() {
    if (editingRow_ >= 0) return;  // the meter keeps showing the conversation while a message is edited
    controller_->setDraft(composer_->toPlainText(), tray_->attachments());
}

void MainWindow::onSendOrStop() {
    if (controller_->state() == ChatController::State::Generating) {
        controller_->stop();
        return;
    }
    if (const QString why = tray_->blockingReason(); !why.isEmpty()) {
        showBanner(tr("Not sent"), why);
        return;
    }
    if (meter_->level() == ContextMeter::Level::Over && editingRow_ < 0) {
        showBanner(tr("Not sent"), meter_->warning());
        return;
    }
    QString why;
    const QString text = composer_->toPlainText();
    const bool ok = editingRow_ >= 0 ? controller_->editAndResend(editingRow_, text, &why, tray_->attachments())
                                     : controller_->send(text, tray_->attachments(), &why);
    if (!ok) {
        showBanner(tr("Not sent"), why);
        return;
    }
    hideBanner();
    cancelEdit();
    composer_->clear();
    tray_->clear();
    updateTitle();
}

void MainWindow::startEdit(int row) {
    if (row < 0 || row > controller_->model()->lastRow()) return;
    editingRow_ = row;
    editBar_->show();
    composer_->setPlainText(controller_->model()->message(row).text);
    composer_->setFocus();
    composer_->moveCursor(QTextCursor::End);
}

void MainWindow::cancelEdit() {
    if (editingRow_ < 0) return;
    editingRow_ = -1;
    editBar_->hide();
    composer_->clear();
}

void MainWindow::copyMessage(int row) {
    if (row < 0 || row > controller_->model()->lastRow()) return;
    QApplication::clipboard()->setText(controller_->model()->message(row).text);
    statusBar()->showMessage(tr("Copied"), 2000);
}

void MainWindow::exportConversation() {
    const Conversation& c = controller_->model()->conversation();
    if (c.messages.isEmpty()) {
        showBanner(tr("Nothing to export"), tr("This conversation has no messages yet."));
        return;
    }
    QString name = c.displayTitle();
    name.replace(QRegularExpression(QStringLiteral("[^\\w\\- ]")), QStringLiteral("_"));
    const QString path = QFileDialog::getSaveFileName(this, tr("Export conversation"), name + ".md",
                                                      tr("Markdown (*.md)"));
    if (path.isEmpty()) return;
    QSaveFile f(path);
    if (!f.open(QIODevice::WriteOnly) || f.write(controller_->exportMarkdown().toUtf8()) < 0 || !f.commit()) {
        showBanner(tr("Not exported"), tr("Cannot write %1: %2").arg(path, f.errorString()));
        return;
    }
    statusBar()->showMessage(tr("Exported to %1").arg(path), 4000);
}

void MainWindow::openSettings() {
    SettingsDialog d(controller_->settings(), controller_->modelInfo().maxContext, this);
    if (d.exec() != QDialog::Accepted) return;
    const GenerationSettings s = d.settings();
    s.save(*settings_);
    controller_->setSettings(s);
}

void MainWindow::openAttachment(const Attachment& a) {
    if (a.pixels.isNull() && !QFileInfo::exists(a.path)) {
        showBanner(tr("Cannot open %1").arg(a.name), tr("%1 no longer exists.").arg(a.path));
        return;
    }
    QDialog* viewer = a.isImage() ? static_cast<QDialog*>(new ImageViewer(a, this))
                                  : static_cast<QDialog*>(new DocumentViewer(a.path, a.name, this));
    viewer->show();
}

void MainWindow::chooseAttachments() {
    const QStringList files = QFileDialog::getOpenFileNames(
        this, tr("Attach files"), settings_->value("last_attach_dir").toString(),
        tr("Images and documents (%1 %2);;Images (%1);;Documents (%2);;All files (*)")
            .arg(QStringLiteral("*.") + AttachmentTray::imageSuffixes().join(QStringLiteral(" *.")), kDocumentPatterns));
    if (files.isEmpty()) return;
    settings_->setValue("last_attach_dir", QFileInfo(files.first()).absolutePath());
    tray_->addFiles(files);
}

void MainWindow::dragEnterEvent(QDragEnterEvent* event) {
    if (event->mimeData()->hasUrls() || event->mimeData()->hasImage()) event->acceptProposedAction();
}

void MainWindow::dropEvent(QDropEvent* event) {
    QStringList paths;
    for (const QUrl& u : event->mimeData()->urls())
        if (u.isLocalFile()) paths << u.toLocalFile();
    // A dropped model directory opens the model; files and image data become attachments.
    if (paths.size() == 1 && QFileInfo(paths.first()).isDir()) {
        openModel(paths.first());
    } else {
        tray_->addMime(event->mimeData());
    }
    event->acceptProposedAction();
}

// ---- models and devices ------------------------------------------------------------------------------------------

void MainWindow::chooseModelDirectory() {
    const QString dir = QFileDialog::getExistingDirectory(this, tr("Open a model directory"),
                                                          settings_->value("last_model_parent").toString());
    if (dir.isEmpty()) return;
    settings_->setValue("last_model_parent", QFileInfo(dir).absolutePath());
    openModel(dir);
}

void MainWindow::openModel(const QString& dir) {
    loadingDir_ = dir;
    hideBanner();
    controller_->openModel(dir, deviceChoice());
    onStateChanged();
}

void MainWindow::addRecent(const QString& dir) {
    QStringList recent = settings_->value("recent_models").toStringList();
    recent.removeAll(dir);
    recent.prepend(dir);
    while (recent.size() > kMaxRecent) recent.removeLast();
    settings_->setValue("recent_models", recent);
    rebuildRecentMenu();
}

void MainWindow::rebuildRecentMenu() {
    recentMenu_->clear();
    const QStringList recent = settings_->value("recent_models").toStringList();
    for (const QString& dir : recent) {
        QAction* a = recentMenu_->addAction(dir, this, [this, dir] { openModel(dir); });
        a->setEnabled(QFileInfo(dir).isDir());
    }
    if (recent.isEmpty()) {
        recentMenu_->addAction(tr("(none yet)"))->setEnabled(false);
        return;
    }
    recentMenu_->addSeparator();
    recentMenu_->addAction(tr("Clear list"), this, [this] {
        settings_->remove("recent_models");
        rebuildRecentMenu();
    });
}

void MainWindow::fillDevices() {
    gpuCount_ = std::max(0, int(volt_cuda_device_count()));
    device_->clear();
    device_->addItem(tr("CPU"), QStringLiteral("cpu"));
    for (int i = 0; i < gpuCount_; ++i) device_->addItem(tr("GPU %1").arg(i), QStringLiteral("gpu:%1").arg(i));
    if (gpuCount_ > 1) {
        device_->addItem(tr("All %1 GPUs").arg(gpuCount_), QStringLiteral("all"));
        device_->addItem(tr("Choose GPUs…"), QStringLiteral("choose"));
    }
    device_->setToolTip(gpuCount_ == 0 ? tr("No GPU: this Volt build has no CUDA, or no GPU was found. Models run on "
                                            "the CPU.")
                                       : tr("Where the model runs. Changing it reloads the model."));
    const QString fallback = gpuCount_ > 0 ? QStringLiteral("gpu:0") : QStringLiteral("cpu");
    const QString saved = settings_->value("device", fallback).toString();
    if (!selectDevice(saved)) {
        selectDevice(fallback);
        showBanner(tr("Device changed"), tr("The device used last time (%1) is not available; models now load on %2.")
                                             .arg(saved, device_->currentText()));
    }
    lastDeviceIndex_ = device_->currentIndex();
    connect(device_, &QComboBox::activated, this, [this](int index) {
        if (device_->itemData(index).toString() == QLatin1String("choose") && !chooseGpus()) {
            device_->setCurrentIndex(lastDeviceIndex_);  // cancelled: keep what was there
            return;
        }
        if (device_->currentIndex() == lastDeviceIndex_) return;
        lastDeviceIndex_ = device_->currentIndex();
        settings_->setValue("device", device_->currentData().toString());
        if (controller_->hasModel()) openModel(controller_->modelInfo().path);  // takes effect now, not next time
    });
}

bool MainWindow::chooseGpus() {
    QDialog d(this);
    d.setWindowTitle(tr("Choose GPUs"));
    auto* v = new QVBoxLayout(&d);
    v->addWidget(new QLabel(tr("Run the model on these GPUs (the first checked is the main one):"), &d));
    const DeviceChoice current = deviceChoice();
    QList<QCheckBox*> boxes;
    for (int i = 0; i < gpuCount_; ++i) {
        const int item = device_->findData(QStringLiteral("gpu:%1").arg(i));
        auto* box = new QCheckBox(item >= 0 ? device_->itemText(item) : tr("GPU %1").arg(i), &d);
        box->setChecked(current.gpuIds.contains(i));
        boxes << box;
        v->addWidget(box);
    }
    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, &d);
    connect(buttons, &QDialogButtonBox::accepted, &d, &QDialog::accept);
    connect(buttons, &QDialogButtonBox::rejected, &d, &QDialog::reject);
    v->addWidget(buttons);
    if (d.exec() != QDialog::Accepted) return false;
    QList<int> ids;
    for (int i = 0; i < boxes.size(); ++i)
        if (boxes[i]->isChecked()) ids << i;
    if (ids.isEmpty()) return false;
    return selectDevice(DeviceChoice::keyFor(ids));
}

bool MainWindow::selectDevice(const QString& key) {
    bool ok = false;
    const DeviceChoice choice = DeviceChoice::fromKey(key, gpuCount_, &ok);
    if (!ok) return false;
    int i = device_->findData(key);
    if (i < 0 && key.startsWith(QLatin1String("gpus:"))) {  // a chosen set: its own entry, before "Choose GPUs…"
        QStringList ids;
        for (int id : choice.gpuIds) ids << QString::number(id);
        i = device_->count() - 1;
        device_->insertItem(i, tr("GPUs %1").arg(ids.join(QStringLiteral(", "))), key);
    }
    if (i < 0) return false;
    device_->setCurrentIndex(i);
    lastDeviceIndex_ = i;
    return true;
}

DeviceChoice MainWindow::deviceChoice() const {
    return DeviceChoice::fromKey(device_->currentData().toString(), gpuCount_);
}

void MainWindow::pollGpus() {
    if (gpuWatcher_.isRunning()) return;
    gpuWatcher_.setFuture(QtConcurrent::run(&GpuProbe::query, gpuCount_));
}

// ---- conversations -----------------------------------------------------------------------------------------------

void MainWindow::refreshConversationList() {
    const QString current = controller_->model()->conversation().id;
    QStringList warnings;
    const auto list = controller_->store()->list(&warnings);
    QSignalBlocker block(conversations_);
    conversations_->clear();
    for (const ConversationSummary& s : list) {
        auto* item = new QListWidgetItem(s.title, conversations_);
        item->setData(Qt::UserRole, s.id);
        item->setToolTip(s.updated.toLocalTime().toString(QLocale().dateTimeFormat(QLocale::ShortFormat)));
        if (s.id == current) conversations_->setCurrentItem(item);
    }
    for (const QString& w : warnings) logView_->appendPlainText(QStringLiteral("[app] skipped %1").arg(w));
}

void MainWindow::closeEvent(QCloseEvent* event) {
    controller_->stop();
    settings_->setValue("window/geometry", saveGeometry());
    QMainWindow::closeEvent(event);
}

}  // namespace volt::desktop
