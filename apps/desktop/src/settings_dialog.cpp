#include "settings_dialog.h"

#include <algorithm>

#include <QComboBox>
#include <QDialogButtonBox>
#include <QDoubleSpinBox>
#include <QFormLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QRegularExpressionValidator>
#include <QSpinBox>

namespace volt::desktop {

SettingsDialog::SettingsDialog(const GenerationSettings& s, qint64 modelMaxContext, QWidget* parent)
    : QDialog(parent), initial_(s) {
    setWindowTitle(tr("Settings"));
    auto* form = new QFormLayout(this);

    system_ = new QPlainTextEdit(s.systemPrompt, this);
    system_->setPlaceholderText(tr("Optional instructions that shape every answer"));
    system_->setMinimumHeight(90);
    form->addRow(tr("System prompt"), system_);

    temperature_ = new QDoubleSpinBox(this);
    temperature_->setRange(0, 2);
    temperature_->setSingleStep(0.05);
    temperature_->setDecimals(2);
    temperature_->setValue(s.temperature);
    temperature_->setToolTip(tr("0 always picks the most likely token (greedy); higher values vary more"));
    form->addRow(tr("Temperature"), temperature_);

    topP_ = new QDoubleSpinBox(this);
    topP_->setRange(0.01, 1);
    topP_->setSingleStep(0.05);
    topP_->setDecimals(2);
    topP_->setValue(std::max(0.01, s.topP));
    topP_->setToolTip(tr("Sample from the smallest set of tokens whose probability adds up to this (1: off)"));
    form->addRow(tr("Top-p"), topP_);

    topK_ = new QSpinBox(this);
    topK_->setRange(0, 1000);
    topK_->setValue(s.topK);
    topK_->setSpecialValueText(tr("off"));
    form->addRow(tr("Top-k"), topK_);

    maxTokens_ = new QSpinBox(this);
    maxTokens_->setRange(1, 1 << 20);
    maxTokens_->setValue(int(std::min<qint64>(s.maxTokens, 1 << 20)));
    maxTokens_->setToolTip(tr("The most tokens one answer may have"));
    form->addRow(tr("Max new tokens"), maxTokens_);

    context_ = new QSpinBox(this);
    const int ctxMax = modelMaxContext > 0 ? int(std::min<qint64>(modelMaxContext, INT_MAX)) : INT_MAX;
    context_->setRange(0, ctxMax);
    context_->setSpecialValueText(modelMaxContext > 0 ? tr("model maximum (%1)").arg(modelMaxContext) : tr("model maximum"));
    context_->setValue(int(std::min<qint64>(s.contextLength, ctxMax)));
    context_->setToolTip(tr("Tokens one conversation may hold (prompt, attachments and answers). Lower values use "
                            "less memory for long conversations."));
    form->addRow(tr("Context length"), context_);

    seed_ = new QLineEdit(s.seed ? QString::number(s.seed) : QString(), this);
    seed_->setPlaceholderText(tr("random"));
    seed_->setValidator(new QRegularExpressionValidator(QRegularExpression(QStringLiteral("[0-9]{0,19}")), seed_));
    seed_->setToolTip(tr("The same seed, prompt and settings give the same answer"));
    form->addRow(tr("Seed"), seed_);

    experts_ = new QComboBox(this);
    experts_->addItem(tr("As in the checkpoint (bf16)"), QStringLiteral("bf16"));
    experts_->addItem(tr("FP8, quantised at load"), QStringLiteral("fp8"));
    experts_->addItem(tr("int8, quantised at load"), QStringLiteral("int8"));
    experts_->setCurrentIndex(std::max(0, experts_->findData(s.expertWeights)));
    experts_->setToolTip(tr("GPU models only, from the next load: FP8 or int8 expert weights take half the memory of "
                            "bf16 ones (int8 stays closer to bf16; FP8 prefills faster on Hopper GPUs)"));
    form->addRow(tr("Expert weights (GPU)"), experts_);

    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel | QDialogButtonBox::RestoreDefaults, this);
    connect(buttons, &QDialogButtonBox::accepted, this, &QDialog::accept);
    connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
    connect(buttons->button(QDialogButtonBox::RestoreDefaults), &QPushButton::clicked, this, [this] {
        const GenerationSettings d;
        temperature_->setValue(d.temperature);
        topP_->setValue(d.topP);
        topK_->setValue(d.topK);
        maxTokens_->setValue(int(d.maxTokens));
        context_->setValue(int(d.contextLength));
        seed_->clear();
        experts_->setCurrentIndex(experts_->findData(d.expertWeights));
    });
    form->addRow(buttons);
}

GenerationSettings SettingsDialog::settings() const {
    GenerationSettings s;
    s.systemPrompt = system_->toPlainText();
    s.temperature = temperature_->value();
    s.topP = topP_->value();
    s.topK = topK_->value();
    s.maxTokens = maxTokens_->value();
    s.contextLength = context_->value();
    s.seed = seed_->text().toULongLong();
    s.expertWeights = experts_->currentData().toString();
    return s;
}

}  // namespace volt::desktop
