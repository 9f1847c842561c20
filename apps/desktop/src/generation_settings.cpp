#include "generation_settings.h"

namespace volt::desktop {

void GenerationSettings::load(QSettings& s) {
    const GenerationSettings d;
    s.beginGroup(QStringLiteral("generation"));
    systemPrompt = s.value("system_prompt", d.systemPrompt).toString();
    temperature = std::clamp(s.value("temperature", d.temperature).toDouble(), 0.0, 2.0);
    topP = std::clamp(s.value("top_p", d.topP).toDouble(), 0.0, 1.0);
    topK = std::max(0, s.value("top_k", d.topK).toInt());
    maxTokens = std::max<qint64>(1, s.value("max_tokens", d.maxTokens).toLongLong());
    contextLength = std::max<qint64>(0, s.value("context_length", d.contextLength).toLongLong());
    seed = s.value("seed", d.seed).toULongLong();
    expertWeights = s.value("expert_weights", d.expertWeights).toString();
    if (expertWeights != QLatin1String("fp8") && expertWeights != QLatin1String("int8"))
        expertWeights = d.expertWeights;  // anything else, e.g. from a hand-edited file: as loaded
    s.endGroup();
}

void GenerationSettings::save(QSettings& s) const {
    s.beginGroup(QStringLiteral("generation"));
    s.setValue("system_prompt", systemPrompt);
    s.setValue("temperature", temperature);
    s.setValue("top_p", topP);
    s.setValue("top_k", topK);
    s.setValue("max_tokens", maxTokens);
    s.setValue("context_length", contextLength);
    s.setValue("seed", seed);
    s.setValue("expert_weights", expertWeights);
    s.endGroup();
}

}  // namespace volt::desktop
