// volt-desktop: chat with MiniMax-Text-01 / MiniMax-VL-01 model directories through libvolt.
//
//   volt-desktop [--model DIR] [--device cpu|gpu:N|gpus:A,B|all] [--data-dir DIR]
//
// Without --model the app opens the model used last, or else the demo model bundled with Volt.
#include <QApplication>
#include <QCommandLineParser>
#include <QDir>
#include <QFileInfo>
#include <QSettings>
#include <QStandardPaths>

#include "chat_controller.h"
#include "conversation_store.h"
#include "main_window.h"
#include "volt.h"

namespace {

bool isModelDir(const QString& dir) { return !dir.isEmpty() && QFileInfo::exists(dir + QStringLiteral("/config.json")); }

// The demo model shipped with Volt (models/volt-demo-vl: a tiny MiniMax-VL-01 trained on synthetic maps and
// documents, so that a new user has a model that answers without downloading the real one). Looked for in
// $VOLT_DEMO_MODEL, then next to an installed app (<prefix>/share/volt/models/volt-demo-vl), then in the source
// tree above a build directory (<source>/build/bin/volt-desktop).
QString bundledDemoModel() {
    if (qEnvironmentVariableIsSet("VOLT_DEMO_MODEL")) {
        const QString dir = qEnvironmentVariable("VOLT_DEMO_MODEL");
        return isModelDir(dir) ? dir : QString();
    }
    QDir dir(QCoreApplication::applicationDirPath());
    for (int up = 0; up < 4; ++up) {
        for (const char* rel : {"share/volt/models/volt-demo-vl", "models/volt-demo-vl"}) {
            const QString candidate = QDir::cleanPath(dir.absoluteFilePath(QString::fromLatin1(rel)));
            if (isModelDir(candidate)) return candidate;
        }
        if (!dir.cdUp()) break;
    }
    return {};
}

}  // namespace

int main(int argc, char** argv) {
    // NVML (free memory) numbers GPUs by PCI bus; make CUDA (Volt) agree unless the user chose otherwise.
    if (qEnvironmentVariableIsEmpty("CUDA_DEVICE_ORDER")) qputenv("CUDA_DEVICE_ORDER", "PCI_BUS_ID");
    QApplication app(argc, argv);
    QApplication::setOrganizationName(QStringLiteral("Volt"));
    QApplication::setApplicationName(QStringLiteral("volt-desktop"));
    QApplication::setApplicationVersion(QString::fromUtf8(volt_version()));

    QCommandLineParser cli;
    cli.setApplicationDescription(QStringLiteral("Chat with MiniMax-01 models through Volt"));
    cli.addHelpOption();
    cli.addVersionOption();
    QCommandLineOption model(QStringLiteral("model"), QStringLiteral("Model directory to open at start."),
                             QStringLiteral("DIR"));
    QCommandLineOption device(QStringLiteral("device"), QStringLiteral("cpu, gpu:N, gpus:A,B (a set; the first is the main GPU) or all."), QStringLiteral("DEVICE"));
    QCommandLineOption dataDir(QStringLiteral("data-dir"),
                               QStringLiteral("Where conversations are kept (default: the app data directory)."),
                               QStringLiteral("DIR"));
    cli.addOptions({model, device, dataDir});
    cli.process(app);

    const QString root = cli.isSet(dataDir) ? cli.value(dataDir)
                                            : QStandardPaths::writableLocation(QStandardPaths::AppDataLocation);
    QDir().mkpath(root);
    volt::desktop::ConversationStore store(root);
    QSettings settings;
    volt::desktop::ChatController controller(&store);
    volt::desktop::MainWindow window(&controller, &settings);
    if (cli.isSet(device) && !window.selectDevice(cli.value(device)))
        qWarning("volt-desktop: device \"%s\" is not available here (cpu, gpu:N, gpus:A,B, all; %d GPUs found)",
                 qPrintable(cli.value(device)), int(volt_cuda_device_count()));
    window.show();
    if (cli.isSet(model)) {
        window.openModel(cli.value(model));
    } else {
        // Where the user left off (the most recent model that still exists), else the bundled demo model.
        QString start;
        for (const QString& dir : settings.value("recent_models").toStringList())
            if (isModelDir(dir)) {
                start = dir;
                break;
            }
        if (start.isEmpty()) start = bundledDemoModel();
        if (!start.isEmpty()) window.openModel(start);
    }
    return app.exec();
}
