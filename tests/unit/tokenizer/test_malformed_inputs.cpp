// Hostile or broken inputs never crash, hang or throw: structurally mutated tokenizer.json files, absurd ids, deeply
// nested and randomly mutated chat templates. Each either works or returns a Status.
#include <gtest/gtest.h>

#include <fstream>
#include <random>

#include "tests/unit/tokenizer/fixture.h"
#include "text/tokenizer/chat_template.h"
#include "text/tokenizer/hf_tokenizer.h"
#include "text/tokenizer/utf8.h"

namespace volt::text {
namespace {

nlohmann::json load_json(const char* name) {
    std::ifstream in(test::tokenizer_data_dir() / name / "tokenizer.json");
    return nlohmann::json::parse(in);
}

// Replaces one random node (never the vocab/merges bulk, to keep iterations cheap) with a value of another type.
void mutate(nlohmann::json& j, std::mt19937& rng) {
    std::vector<nlohmann::json*> nodes;
    std::function<void(nlohmann::json&, int)> walk = [&](nlohmann::json& n, int depth) {
        nodes.push_back(&n);
        if (depth > 6) return;
        if (n.is_object()) {
            for (auto it = n.begin(); it != n.end(); ++it)
                if (it.key() != "vocab" && it.key() != "merges") walk(it.value(), depth + 1);
        } else if (n.is_array() && n.size() < 64) {
            for (auto& e : n) walk(e, depth + 1);
        }
    };
    walk(j, 0);
    nlohmann::json* target = nodes[rng() % nodes.size()];
    switch (rng() % 9) {
        case 0: *target = nullptr; break;
        case 1: *target = -1; break;
        case 2: *target = 3.5; break;
        case 3: *target = "\xE2\x96"; break;  // truncated UTF-8 in a JSON string value
        case 4: *target = nlohmann::json::array(); break;
        case 5: *target = nlohmann::json::object(); break;
        case 6: *target = true; break;
        case 7: *target = std::string(1, char('A' + rng() % 26)); break;
        default: *target = 4294967296LL; break;
    }
}

TEST(MalformedInputs, MutatedTokenizerJsonNeverCrashes) {
    std::mt19937 rng(1234);
    const char* names[] = {"bpe_gpt4o", "bpe_llama_bytefallback", "bpe_metaspace_nfkc", "split_next_regex"};
    const std::string probes[] = {"", "Hello <image> world", "中文 😀\r\n\t 123", "[MASK] hello_world <think>"};
    int loaded = 0, rejected = 0;
    for (const char* name : names) {
        const nlohmann::json base = load_json(name);
        for (int i = 0; i < 80; ++i) {
            nlohmann::json j = base;
            for (int k = 0; k < 1 + int(rng() % 3); ++k) mutate(j, rng);
            auto tok = HfTokenizer::from_json(j, "mutated/tokenizer.json");
            if (!tok.has_value()) {
                ++rejected;
                EXPECT_NE(tok.status().message().find("mutated/tokenizer.json"), std::string::npos) << tok.status().message();
                continue;
            }
            ++loaded;
            for (const auto& p : probes) {
                auto ids = (*tok)->encode(p, true);
                if (!ids) continue;
                auto text = (*tok)->decode(*ids);
                if (text) {
                    EXPECT_TRUE(utf8_is_valid(*text));
                }
            }
        }
    }
    EXPECT_GT(rejected, 50);  // the mutations do break things...
    EXPECT_GT(loaded, 10);    // ...and some leave a usable tokenizer
}

TEST(MalformedInputs, AbsurdIdsAreRejectedNotAllocated) {
    auto j = load_json("bpe_gpt4o");
    j["model"]["vocab"]["zzz-huge"] = 2000000000;
    auto t = HfTokenizer::from_json(j, "huge/tokenizer.json");
    ASSERT_FALSE(t.has_value());
    EXPECT_NE(t.status().message().find("model.vocab"), std::string::npos) << t.status().message();
    j = load_json("bpe_gpt4o");
    j["added_tokens"][0]["id"] = 2000000000;
    t = HfTokenizer::from_json(j, "huge/tokenizer.json");
    ASSERT_FALSE(t.has_value());
    EXPECT_NE(t.status().message().find("added_tokens"), std::string::npos) << t.status().message();
}

TEST(MalformedInputs, DeeplyNestedTemplatesAreErrors) {
    auto expect_error = [](const std::string& src) {
        auto t = ChatTemplate::from_string(src, "deep");
        ASSERT_FALSE(t.has_value());
        EXPECT_NE(t.status().message().find("nested too deeply"), std::string::npos) << t.status().message();
    };
    expect_error("{{ " + std::string(50000, '(') + "1" + std::string(50000, ')') + " }}");
    expect_error("{{ " + std::string(50000, '[') + " }}");
    std::string nots;
    for (int i = 0; i < 20000; ++i) nots += "not ";
    expect_error("{{ " + nots + "x }}");
    std::string ifs;
    for (int i = 0; i < 5000; ++i) ifs += "{% if x %}";
    expect_error(ifs);
}

TEST(MalformedInputs, MutatedTemplatesNeverCrash) {
    std::ifstream in(test::tokenizer_data_dir() / "chat_templates.json");
    auto f = nlohmann::ordered_json::parse(in);
    std::mt19937 rng(99);
    const std::string snippets[] = {"{%", "%}", "{{", "}}", "{#", "'", "\"", "(", ")", "|", ".", "-", "endfor", "if"};
    int parsed = 0, failed = 0;
    for (const auto& c : f.at("cases")) {
        const std::string base = f.at("templates").at(c.at("template").get<std::string>()).get<std::string>();
        for (int i = 0; i < 40; ++i) {
            std::string src = base;
            for (int k = 0; k < 1 + int(rng() % 3); ++k) {
                size_t at = rng() % (src.size() + 1);
                if (rng() % 2) src.insert(at, snippets[rng() % std::size(snippets)]);
                else src.erase(at, 1 + rng() % 8);
            }
            auto t = ChatTemplate::from_string(src, "mutated");
            if (!t) {
                ++failed;
                continue;
            }
            ++parsed;
            ChatOptions o;
            o.tools = c.at("tools");
            auto out = t->render(c.at("messages"), o);
            if (out) {
                EXPECT_TRUE(utf8_is_valid(*out));
            }
        }
    }
    EXPECT_GT(failed, 0);
    EXPECT_GT(parsed, 0);
}

}  // namespace
}  // namespace volt::text
