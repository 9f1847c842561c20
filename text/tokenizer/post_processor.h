// tokenizer.json `post_processor`, applied when the caller asks for special tokens (`volt tokenize --add-special`):
// TemplateProcessing (the `single` template), RobertaProcessing/BertProcessing (cls ... sep), ByteLevel (ids
// unchanged), Sequence. Only single sequences are encoded, so pair templates are validated but not used.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sdk/status.h"

namespace volt::text {

class PostProcessor {
public:
    virtual ~PostProcessor() = default;
    virtual void process(std::vector<int32_t>& ids) const = 0;
};

Expected<std::unique_ptr<PostProcessor>> make_post_processor(const nlohmann::json& j, const std::string& where);

}  // namespace volt::text
