// libFuzzer target: arbitrary bytes through four committed tokenizers (GPT-4o-regex byte-level BPE, byte-fallback
// BPE, Metaspace + NFKC BPE, SentencePiece unigram): encode, decode, streaming decode, and decode of arbitrary ids.
// Round trips must not crash; invalid UTF-8 and out-of-range ids must be Status errors.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "text/tokenizer/stream_decoder.h"
#include "text/tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static std::vector<std::unique_ptr<volt::text::Tokenizer>> tokenizers = [] {
        std::vector<std::unique_ptr<volt::text::Tokenizer>> out;
        for (const char* name : {"bpe_gpt4o", "bpe_llama_bytefallback", "bpe_metaspace_nfkc", "spm_unigram"}) {
            auto t = volt::text::load_tokenizer(std::string(VOLT_TOKENIZER_DATA) + "/" + name);
            if (!t) std::abort();  // the committed fixtures must load
            out.push_back(std::move(t).value());
        }
        return out;
    }();
    const std::string text(reinterpret_cast<const char*>(data), size);
    for (auto& t : tokenizers) {
        auto ids = t->encode(text, /*add_special=*/true);
        if (ids) {
            (void)t->decode(*ids);
            volt::text::StreamDecoder stream(*t);
            for (int32_t id : *ids) (void)stream.push(id);
            (void)stream.finish();
        }
        std::vector<int32_t> arbitrary;  // ids from the bytes, some beyond the vocabulary
        for (size_t i = 0; i + 1 < size && arbitrary.size() < 64; i += 2)
            arbitrary.push_back(static_cast<int32_t>((data[i] << 8 | data[i + 1]) % (t->id_limit() + 10)));
        (void)t->decode(arbitrary);
    }
    return 0;
}
