// Edits GenerationSettings: system prompt, temperature, top-p, top-k, max new tokens, context length, seed.
#pragma once

#include <QComboBox>
#include <QDialog>

#include "generation_settings.h"

class QDoubleSpinBox;
class QPlainTextEdit;
class QSpinBox;
class QLineEdit;

namespace volt::desktop {

class SettingsDialog : public QDialog {
    Q_OBJECT
public:
    // modelMaxContext: the loaded model's limit (0: none loaded), to bound and explain the context length.
    SettingsDialog(const GenerationSettings& s, qint64 modelMaxContext, QWidget* parent = nullptr);
    GenerationSettings settings() const;

private:
    QPlainTextEdit* system_;
    QDoubleSpinBox* temperature_;
    QDoubleSpinBox* topP_;
    QSpinBox* topK_;
    QSpinBox* maxTokens_;
    QSpinBox* context_;
    QLineEdit* seed_;
    QComboBox* experts_;
    GenerationSettings initial_;
};

}  // namespace volt::desktop
