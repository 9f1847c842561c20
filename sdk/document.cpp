#include "sdk/document.h"

#include "sdk/file_io.h"
#include "sdk/utf8.h"

#include <cstring>
#include <fstream>

namespace volt {

namespace {

std::string normalise_newlines(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\r') {
            out += '\n';
            if (i + 1 < s.size() && s[i + 1] == '\n') ++i;
        } else {
            out += s[i];
        }
    }
    return out;
}

Expected<Document> load_text(std::string_view bytes, std::string name) {
    Document d;
    d.name = std::move(name);
    d.format = Document::Format::kText;
    size_t replaced = 0;
    VOLT_ASSIGN_OR_RETURN(std::string text, decode_text_to_utf8(bytes, d.name, &replaced));
    if (replaced)
        d.warnings.push_back(str_cat(replaced, " invalid UTF-8 sequence(s) were replaced with U+FFFD"));
    size_t start = 0;
    int number = 1;
    for (;;) {  // form feeds separate pages (pdftotext and many exporters write them)
        size_t ff = text.find('\f', start);
        d.pages.push_back({number++, text.substr(start, ff == std::string::npos ? std::string::npos : ff - start)});
        if (ff == std::string::npos) break;
        start = ff + 1;
    }
    return d;
}

}  // namespace

// Defined in document_pdf.cpp (poppler-cpp) or document_pdf_none.cpp.
Expected<Document> load_pdf(std::span<const std::byte> bytes, std::string name, const DocumentLimits& limits);

size_t Document::num_chars() const {
    size_t n = 0;
    for (const auto& p : pages) n += p.text.size();
    return n;
}

std::string Document::text() const {
    std::string out;
    for (size_t i = 0; i < pages.size(); ++i) {
        if (i) out += "\n\n";
        out += pages[i].text;
    }
    return out;
}

Expected<std::string> decode_text_to_utf8(std::string_view bytes, const std::string& label, size_t* replaced) {
    *replaced = 0;
    // UTF-16 with a byte-order mark (Windows Notepad's "Unicode").
    if (bytes.size() >= 2 && ((uint8_t(bytes[0]) == 0xFF && uint8_t(bytes[1]) == 0xFE) ||
                              (uint8_t(bytes[0]) == 0xFE && uint8_t(bytes[1]) == 0xFF))) {
        const bool le = uint8_t(bytes[0]) == 0xFF;
        std::string out;
        for (size_t i = 2; i + 1 < bytes.size(); i += 2) {
            uint32_t u = le ? (uint8_t(bytes[i]) | uint8_t(bytes[i + 1]) << 8) : (uint8_t(bytes[i]) << 8 | uint8_t(bytes[i + 1]));
            if (u >= 0xD800 && u <= 0xDBFF && i + 3 < bytes.size()) {
                uint32_t lo = le ? (uint8_t(bytes[i + 2]) | uint8_t(bytes[i + 3]) << 8)
                                 : (uint8_t(bytes[i + 2]) << 8 | uint8_t(bytes[i + 3]));
                if (lo >= 0xDC00 && lo <= 0xDFFF) {
                    utf8_append(out, 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00));
                    i += 2;
                    continue;
                }
            }
            if (u >= 0xD800 && u <= 0xDFFF) {
                utf8_append(out, 0xFFFD);
                ++*replaced;
            } else {
                utf8_append(out, u);
            }
        }
        if (bytes.size() % 2) ++*replaced;  // a dangling half code unit
        return normalise_newlines(out);
    }
    if (bytes.size() >= 3 && std::memcmp(bytes.data(), "\xEF\xBB\xBF", 3) == 0) bytes.remove_prefix(3);
    if (bytes.find('\0') != std::string_view::npos)
        return invalid_argument(label, ": looks like a binary file (it contains NUL bytes), not text or PDF");
    // Each maximal invalid subpart becomes one U+FFFD, as Python's errors="replace" does.
    return normalise_newlines(utf8_lossy(bytes, replaced));
}

Expected<Document> load_document_from_memory(std::span<const std::byte> bytes, std::string name,
                                             const DocumentLimits& limits) {
    if (bytes.size() > limits.max_bytes)
        return resource_exhausted(name, ": ", bytes.size(), " bytes exceeds the document limit of ", limits.max_bytes);
    std::string_view view(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    if (view.substr(0, 5) == "%PDF-") return load_pdf(bytes, std::move(name), limits);
    if (name.size() >= 4 && (name.ends_with(".pdf") || name.ends_with(".PDF")))
        return data_loss(name, ": has a .pdf name but does not start with %PDF- (not a PDF, or damaged)");
    return load_text(view, std::move(name));
}

Expected<Document> load_document(const std::filesystem::path& path, const DocumentLimits& limits) {
    VOLT_ASSIGN_OR_RETURN(const std::string bytes, read_file(path, limits.max_bytes));
    return load_document_from_memory({reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()}, path.string(),
                                     limits);
}

}  // namespace volt
