// The window: model bar (open, recent, device), conversation list, chat view, composer with its attachment tray
// and context meter, status bar (load progress by phase, live speed, GPU memory). It holds no model state of its
// own: it forwards user actions to the ChatController and shows what the controller reports.
#pragma once

#include <QFutureWatcher>
#include <QMainWindow>
#include <QTimer>

#include "chat_controller.h"
#include "gpu_probe.h"

class QComboBox;
class QFrame;
class QLabel;
class QListWidget;
class QMenu;
class QPlainTextEdit;
class QProgressBar;
class QPushButton;
class QSettings;
class QToolButton;

namespace volt::desktop {

class AttachmentTray;
class ChatView;
class Composer;
class ContextMeter;
class LogBridge;

class MainWindow : public QMainWindow {
    Q_OBJECT
public:
    MainWindow(ChatController* controller, QSettings* settings, QWidget* parent = nullptr);
    ~MainWindow() override;

    // Loads a model directory on the device chosen in the picker (menu, recent list, command line).
    void openModel(const QString& dir);
    // Chooses the device picker entry: "cpu", "gpu:N" or "all".
    bool selectDevice(const QString& key);

    // For tests and automation.
    ChatView* chatView() const { return chatView_; }
    Composer* composer() const { return composer_; }
    AttachmentTray* tray() const { return tray_; }
    QPushButton* sendButton() const { return send_; }
    ContextMeter* contextMeter() const { return meter_; }
    QString bannerText() const;
    QString modelText() const;

protected:
    void closeEvent(QCloseEvent* event) override;
    void dragEnterEvent(QDragEnterEvent* event) override;
    void dropEvent(QDropEvent* event) override;

private:
    void buildUi();
    void buildMenus();
    void showBanner(const QString& title, const QString& message);
    void hideBanner();
    void onStateChanged();
    void onModelLoaded(const ModelInfo& info);
    void onSendOrStop();
    void pushDraft();
    void startEdit(int row);
    void cancelEdit();
    void copyMessage(int row);
    void exportConversation();
    void openSettings();
    void openAttachment(const Attachment& attachment);  // the image viewer or the document viewer
    void chooseModelDirectory();
    void chooseAttachments();
    void refreshConversationList();
    void addRecent(const QString& dir);
    void rebuildRecentMenu();
    void fillDevices();
    void pollGpus();
    bool chooseGpus();  // the "Choose GPUs…" dialog; false when cancelled
    DeviceChoice deviceChoice() const;
    void updateTitle();

    ChatController* controller_;
    QSettings* settings_;
    LogBridge* log_;

    QComboBox* device_;
    QLabel* modelLabel_;
    QToolButton* openButton_;
    QFrame* banner_;
    QLabel* bannerLabel_;
    QListWidget* conversations_;
    ChatView* chatView_;
    QFrame* editBar_;
    AttachmentTray* tray_;
    ContextMeter* meter_;
    QLabel* liveStats_;
    Composer* composer_;
    QToolButton* attach_;
    QPushButton* send_;
    QProgressBar* loadBar_;
    QLabel* loadPhase_;
    QPushButton* cancelLoad_;
    QLabel* gpuLabel_;
    QPlainTextEdit* logView_;
    QMenu* recentMenu_;
    QAction* regenerateAction_;
    QAction* stopAction_;

    int editingRow_ = -1;
    int gpuCount_ = 0;
    int lastDeviceIndex_ = 0;
    QString loadingDir_;
    QTimer gpuTimer_;
    QFutureWatcher<QList<GpuStatus>> gpuWatcher_;
};

}  // namespace volt::desktop
