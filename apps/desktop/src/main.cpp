// volt-desktop: chat with MiniMax-Text-01 / MiniMax-VL-01 model directories through libvolt.
//
//   volt-desktop [--model DIR] [--device cpu|gpu:N|gpus:A,B|all] [--data-dir DIR]
#include <QApplication>
#include <QCommandLineParser>
#include <QDir>
#include <QSettings>
#include <QStandardPaths>

#include "chat_controller.h"
#include "conversation_store.h"
#include "main_window.h"
#include "volt.h"

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
    if (cli.isSet(model)) window.openModel(cli.value(model));
    return app.exec();
}
