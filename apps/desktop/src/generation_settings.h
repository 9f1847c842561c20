// What the user sets for answers (system prompt, sampling, lengths) and how it persists (QSettings).
#pragma once

#include <QSettings>
#include <QString>

namespace volt::desktop {

struct GenerationSettings {
    QString systemPrompt;
    double temperature = 0.7;  // 0: greedy
    double topP = 1.0;         // 1: off
    int topK = 0;              // 0: off
    qint64 maxTokens = 1024;   // new tokens per reply
    qint64 contextLength = 0;  // tokens a session may hold; 0: the model's maximum
    quint64 seed = 0;          // 0: a new seed for every reply (same seed + same prompt = same answer)
    // Models loaded on GPUs: the MoE expert weights as in the checkpoint ("bf16"), or quantised at load ("fp8",
    // "int8": half the expert memory; volt.h's volt_expert_weights). Takes effect at the next load; CPU loads ignore it.
    QString expertWeights = QStringLiteral("bf16");

    void load(QSettings& s);
    void save(QSettings& s) const;
    bool operator==(const GenerationSettings&) const = default;
};

}  // namespace volt::desktop
