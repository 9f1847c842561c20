// libFuzzer target: chat templates (model-supplied Jinja) parsed and rendered with a conversation that has images,
// a tool call and tools. Any template must give a rendering or a Status: no crash, hang or unbounded allocation.
#include <cstddef>
#include <cstdint>
#include <string>

#include "text/tokenizer/chat_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto t = volt::text::ChatTemplate::from_string(std::string(reinterpret_cast<const char*>(data), size), "fuzz");
    if (!t) return 0;
    static const auto messages = nlohmann::ordered_json::parse(R"([
        {"role": "system", "content": "sys"},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "hi"}]},
        {"role": "assistant", "content": "ok", "tool_calls": [{"function": {"name": "f", "arguments": {"a": 1}}}]}])");
    volt::text::ChatOptions options;
    options.tools = nlohmann::ordered_json::parse(R"([{"type": "function", "function": {"name": "f"}}])");
    (void)t->render(messages, options);
    return 0;
}
