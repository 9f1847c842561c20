// Documents a user attaches to a question (`volt run --doc`, the C ABI, the desktop app): PDF text through
// poppler-cpp, and plain text (.txt, .md, anything textual) decoded to UTF-8. Loading never guesses silently:
// encrypted, corrupt, binary or oversized files are clear errors, and lossy decoding is reported in `warnings`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "sdk/status.h"

namespace volt {

struct DocumentPage {
    int number = 0;    // 1-based
    std::string text;  // UTF-8, '\n' line ends
};

struct Document {
    enum class Format { kText, kPdf };
    std::string name;  // file name (or the caller's label for in-memory documents)
    Format format = Format::kText;
    std::string title;  // PDF Info title when present
    std::vector<DocumentPage> pages;  // text files: split at form feeds ('\f'), else one page
    std::vector<std::string> warnings;  // e.g. "3 invalid UTF-8 sequence(s) were replaced with U+FFFD"

    size_t num_chars() const;  // bytes of UTF-8 text over all pages
    std::string text() const;  // pages joined with a blank line
};

struct DocumentLimits {
    uint64_t max_bytes = 512ull << 20;  // file size
    int max_pages = 20000;
};

bool pdf_support_available();  // false when built without poppler-cpp

Expected<Document> load_document(const std::filesystem::path& path, const DocumentLimits& limits = {});
Expected<Document> load_document_from_memory(std::span<const std::byte> bytes, std::string name,
                                             const DocumentLimits& limits = {});

// Decodes text bytes to UTF-8: strips a UTF-8 BOM, converts UTF-16 (with BOM), turns CRLF/CR into LF, replaces
// each maximal invalid UTF-8 subpart with one U+FFFD, as Python's errors="replace" (counted in *replaced). Returns INVALID_ARGUMENT for binary data (NUL bytes).
Expected<std::string> decode_text_to_utf8(std::string_view bytes, const std::string& label, size_t* replaced);

}  // namespace volt
