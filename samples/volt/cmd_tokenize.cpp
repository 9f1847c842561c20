// volt tokenize   --model DIR (--text TEXT | --text-file F) [--add-special] --out IDS.json
// volt detokenize --model DIR --ids-file IDS.json [--skip-special]
// A directory holding only tokenizer files (tokenizer.json or tokenizer.model) is a valid --model.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "samples/volt/cli.h"
#include "sdk/file_io.h"
#include "text/tokenizer/tokenizer.h"

namespace volt::cli {
namespace {


Expected<std::vector<int32_t>> read_ids(const std::string& path) {
    VOLT_ASSIGN_OR_RETURN(std::string text, read_file(path));
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_array()) return invalid_argument(path, ": expected a JSON array of token ids");
    std::vector<int32_t> ids;
    ids.reserve(j.size());
    for (size_t i = 0; i < j.size(); ++i) {
        if (!j[i].is_number_integer() || j[i].get<int64_t>() < INT32_MIN || j[i].get<int64_t>() > INT32_MAX)
            return invalid_argument(path, ": element ", i, ": expected an integer token id, got ",
                                    j[i].dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
        ids.push_back(j[i].get<int32_t>());
    }
    return ids;
}

}  // namespace

CommandRunner add_tokenize_command(CLI::App& app) {
    struct Options {
        std::string model, text, text_file, out;
        bool add_special = false;
    };
    auto opt = std::make_shared<Options>();
    CLI::App* cmd = app.add_subcommand("tokenize", "Text to token ids (JSON array)");
    cmd->add_option("--model", opt->model, "Model directory, or a tokenizer.json / tokenizer.model file")->required();
    auto* text = cmd->add_option("--text", opt->text, "Text to tokenize (UTF-8)");
    auto* file = cmd->add_option("--text-file", opt->text_file, "File whose bytes (UTF-8) are tokenized");
    text->excludes(file);
    cmd->add_flag("--add-special", opt->add_special, "Add the model's special tokens (post-processor, e.g. BOS)");
    cmd->add_option("--out", opt->out, "Where to write the ids as a JSON array ('-' for stdout)")->required();
    return [opt, text, file]() -> int {
        if (text->count() == 0 && file->count() == 0) {
            std::fprintf(stderr, "volt tokenize: one of --text or --text-file is required\n");
            return kExitUsage;
        }
        std::string input = opt->text;
        if (file->count()) {
            auto content = read_file(opt->text_file);
            if (!content) return report_error(content.status());
            input = std::move(*content);
        }
        auto tok = text::load_tokenizer(opt->model);
        if (!tok) return report_error(tok.status());
        auto ids = (*tok)->encode(input, opt->add_special);
        if (!ids) {
            const std::string source = file->count() ? opt->text_file : std::string("--text");
            return report_error(ids.status().with_context(source));
        }
        const std::string json = nlohmann::json(*ids).dump() + "\n";
        if (opt->out == "-") {
            std::fwrite(json.data(), 1, json.size(), stdout);
            return kExitOk;
        }
        std::ofstream out(opt->out, std::ios::binary);
        if (!out || !(out << json) || !out.flush()) return report_error(invalid_argument(opt->out, ": cannot write"));
        return kExitOk;
    };
}

CommandRunner add_detokenize_command(CLI::App& app) {
    struct Options {
        std::string model, ids_file;
        bool skip_special = false;
    };
    auto opt = std::make_shared<Options>();
    CLI::App* cmd = app.add_subcommand("detokenize", "Token ids (JSON array) to text, printed to stdout");
    cmd->add_option("--model", opt->model, "Model directory, or a tokenizer.json / tokenizer.model file")->required();
    cmd->add_option("--ids-file", opt->ids_file, "JSON array of token ids")->required();
    cmd->add_flag("--skip-special", opt->skip_special, "Leave special tokens out of the text");
    return [opt]() -> int {
        auto ids = read_ids(opt->ids_file);
        if (!ids) return report_error(ids.status());
        auto tok = text::load_tokenizer(opt->model);
        if (!tok) return report_error(tok.status());
        auto decoded = (*tok)->decode(*ids, opt->skip_special);
        if (!decoded) return report_error(decoded.status().with_context(opt->ids_file));
        // Exactly the decoded text: no newline is added, so output can be compared byte for byte.
        std::fwrite(decoded->data(), 1, decoded->size(), stdout);
        return kExitOk;
    };
}

}  // namespace volt::cli
