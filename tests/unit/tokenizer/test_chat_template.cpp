// Chat templates rendered exactly as transformers renders them (fixture: tools/make_tokenizer_fixture.py), and
// templates outside the supported subset failing with a message that names the line.
#include <gtest/gtest.h>

#include <fstream>

#include "tests/unit/tokenizer/fixture.h"
#include "text/tokenizer/chat_template.h"
#include "text/tokenizer/tokenizer.h"

namespace volt::text {
namespace {

const nlohmann::ordered_json& chat_fixture() {
    static const nlohmann::ordered_json j = [] {
        std::ifstream in(test::tokenizer_data_dir() / "chat_templates.json");
        return nlohmann::ordered_json::parse(in);
    }();
    return j;
}

TEST(ChatTemplate, MiniMaxTemplatesMatchTransformers) {
    const auto& f = chat_fixture();
    size_t n = 0;
    for (const auto& c : f.at("cases")) {
        const std::string name = c.at("template").get<std::string>();
        auto tmpl = ChatTemplate::from_string(f.at("templates").at(name).get<std::string>(), name);
        ASSERT_TRUE(tmpl.has_value()) << tmpl.status().to_string();
        ChatOptions options;
        options.add_generation_prompt = c.at("add_generation_prompt").get<bool>();
        options.tools = c.at("tools");
        auto out = tmpl->render(c.at("messages"), options);
        ASSERT_TRUE(out.has_value()) << name << ": " << out.status().to_string();
        EXPECT_EQ(*out, c.at("rendered").get<std::string>()) << name << " with " << c.at("messages").dump();
        ++n;
    }
    EXPECT_GE(n, 12u);
}

TEST(ChatTemplate, JinjaConstructsMatchJinja2) {
    size_t k = 0;
    for (const auto& c : chat_fixture().at("constructs")) {
        const std::string src = c.at("template").get<std::string>();
        auto tmpl = ChatTemplate::from_string(src, str_cat("construct[", k++, "]"));
        EXPECT_TRUE(tmpl.has_value()) << tmpl.status().to_string() << "\n" << src;
        if (!tmpl.has_value()) continue;
        ChatOptions options;
        options.extra = c.at("variables");
        const auto& vars = c.at("variables");
        auto out = tmpl->render(vars.contains("messages") ? vars.at("messages") : nlohmann::ordered_json::array(), options);
        EXPECT_TRUE(out.has_value()) << out.status().to_string() << "\n" << src;
        if (!out.has_value()) continue;
        EXPECT_EQ(*out, c.at("rendered").get<std::string>()) << src;
    }
    EXPECT_GE(k, 30u);
}

// The rendered VL-01 prompt tokenizes with <image> and the role markers as single special tokens.
TEST(ChatTemplate, ModelDirectoryTemplateAndTokenizerAgree) {
    const auto dir = test::tokenizer_data_dir() / "bpe_gpt4o";
    auto tmpl = ChatTemplate::from_model_dir(dir);
    ASSERT_TRUE(tmpl.has_value()) << tmpl.status().to_string();
    auto tok = load_tokenizer(dir);
    ASSERT_TRUE(tok.has_value());
    nlohmann::ordered_json messages = nlohmann::ordered_json::array(
        {ChatTemplate::message("system", "Be brief."), ChatTemplate::message("user", "What is this?", 2)});
    auto prompt = tmpl->render(messages, {});
    ASSERT_TRUE(prompt.has_value()) << prompt.status().to_string();
    auto ids = (*tok)->encode(*prompt);
    ASSERT_TRUE(ids.has_value());
    auto count = [&](const char* token) {
        auto id = (*tok)->token_to_id(token);
        return id ? std::count(ids->begin(), ids->end(), *id) : -1;
    };
    EXPECT_EQ(count("<image>"), 2);
    EXPECT_EQ(count("<beginning_of_sentence>"), 3);  // system, user, generation prompt
    EXPECT_EQ(count("<end_of_sentence>"), 2);
    auto back = (*tok)->decode(*ids);
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, *prompt);
}

void expect_parse_error(const std::string& src, const std::vector<std::string>& needles) {
    auto t = ChatTemplate::from_string(src, "tmpl");
    ASSERT_FALSE(t.has_value()) << src;
    for (const auto& n : needles) EXPECT_NE(t.status().message().find(n), std::string::npos) << t.status().message();
}

void expect_render_error(const std::string& src, const std::vector<std::string>& needles,
                         const nlohmann::ordered_json& vars = nlohmann::ordered_json::object()) {
    auto t = ChatTemplate::from_string(src, "tmpl");
    ASSERT_TRUE(t.has_value()) << t.status().to_string();
    ChatOptions o;
    o.extra = vars;
    auto out = t->render(nlohmann::ordered_json::array(), o);
    ASSERT_FALSE(out.has_value()) << src << " rendered " << *out;
    for (const auto& n : needles) EXPECT_NE(out.status().message().find(n), std::string::npos) << out.status().message();
}

TEST(ChatTemplate, UnsupportedConstructsAreErrors) {
    expect_parse_error("ok\n{% include 'other.jinja' %}", {"tmpl", "line 2", "include"});
    expect_parse_error("{% extends 'base' %}", {"extends"});
    expect_parse_error("{% filter upper %}x{% endfilter %}", {"filter"});
    expect_parse_error("{% for x in y recursive %}{% endfor %}", {"recursive"});
    expect_parse_error("{% if x %}never closed", {"endif"});
    expect_parse_error("{% endfor %}", {"endfor"});
    expect_parse_error("{{ 'unterminated }}", {"unclosed"});
    expect_parse_error("{{ a ? b }}", {"unexpected character"});
    expect_parse_error("{# no end", {"comment"});
    expect_parse_error("{% if %}{% endif %}", {"line 1"});
}

TEST(ChatTemplate, RuntimeErrorsNameTheProblem) {
    expect_render_error("{{ x | frobnicate }}", {"unknown filter 'frobnicate'"});
    expect_render_error("{{ x is fancy }}", {"unknown test 'fancy'"});
    expect_render_error("\n{{ raise_exception('roles must alternate') }}", {"line 2", "roles must alternate"});
    expect_render_error("{{ missing.attr }}", {"'missing' is undefined"});
    expect_render_error("{{ 'a' + 1 }}", {"unsupported operand"});
    expect_render_error("{{ undefined_fn() }}", {"undefined_fn"});
    expect_render_error("{% set x.y = 1 %}", {"namespace"}, {{"x", {{"y", 0}}}});
    // A namespace holding itself would be a reference cycle (leaked memory): refused.
    expect_render_error("{% set ns = namespace(a=1) %}{% set ns.self = [1, {'k': ns}] %}", {"contains 'ns' itself"});
    expect_render_error("{% set a = namespace() %}{% set b = namespace(x=a) %}{% set a.y = b %}", {"contains 'a' itself"});
    expect_render_error("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}", {"recursed"});
    expect_render_error("{{ 1 // 0 }}", {"division by zero"});
    // 64-bit integers: overflow is an error, never undefined behaviour or a wrapped number.
    expect_render_error("{{ 9223372036854775807 + 1 }}", {"integer overflow"});
    expect_render_error("{{ 3 ** 1010 }}", {"integer overflow"});
    expect_render_error("{{ (-9223372036854775807 - 1) // -1 }}", {"integer overflow"});
    expect_render_error("{{ 'ab' * 100000000 }}", {"64 MiB"});
    expect_render_error("{{ range(0, 9223372036854775807) | length }}", {"range()"});
    expect_render_error("{{ 'x' | indent(100000000) }}", {"indent"});
}

TEST(ChatTemplate, HugeRepeatCountsOfEmptySequencesFinish) {
    auto t = ChatTemplate::from_string("[{{ '' * 9223372036854775807 }}{{ ([] * 9223372036854775807) | length }}]", "tmpl");
    ASSERT_TRUE(t.has_value());
    ChatOptions o;
    auto out = t->render(nlohmann::ordered_json::array(), o);
    ASSERT_TRUE(out.has_value()) << out.status().to_string();
    EXPECT_EQ(out->size(), 3u);  // "[" + "" + "0" + "]"
}

TEST(ChatTemplate, MissingTemplateInModelDirectory) {
    auto t = ChatTemplate::from_model_dir(test::tokenizer_data_dir() / "bpe_gpt2");
    ASSERT_FALSE(t.has_value());
    EXPECT_EQ(t.status().code(), StatusCode::kNotFound);
    EXPECT_NE(t.status().message().find("tokenizer_config.json"), std::string::npos);
}

}  // namespace
}  // namespace volt::text
