#include "text/tokenizer/tokenizer.h"

#include "text/tokenizer/hf_tokenizer.h"
#include "text/tokenizer/sentencepiece_tokenizer.h"

namespace volt::text {

Expected<std::unique_ptr<Tokenizer>> load_tokenizer(const std::filesystem::path& path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::path file = path;
    if (fs::is_directory(path, ec)) {
        if (fs::exists(path / "tokenizer.json", ec)) file = path / "tokenizer.json";
        else if (fs::exists(path / "tokenizer.model", ec)) file = path / "tokenizer.model";
        else return not_found(path.string(), ": no tokenizer.json or tokenizer.model in this directory");
    } else if (!fs::exists(path, ec)) {
        return not_found(path.string(), ": no such file or directory");
    }
    if (file.extension() == ".model") {
        VOLT_ASSIGN_OR_RETURN(auto t, SentencePieceTokenizer::from_file(file));
        return std::unique_ptr<Tokenizer>(std::move(t));
    }
    VOLT_ASSIGN_OR_RETURN(auto t, HfTokenizer::from_file(file));
    return std::unique_ptr<Tokenizer>(std::move(t));
}

}  // namespace volt::text
