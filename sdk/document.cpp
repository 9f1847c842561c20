#include "sdk/document.h"

#include "sdk/file_io.h"

#include <cstring>
#include <fstream>

namespace volt {

namespace {

void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

// Length of the valid UTF-8 sequence at s[i] (1-4), or 0 if invalid (overlongs, surrogates, > U+10FFFF rejected).
size_t utf8_sequence_length(std::string_view s, size_t i) {
    const auto b = [&](size_t k) { return static_cast<uint8_t>(s[i + k]); };
    const uint8_t c = b(0);
    if (c < 0x80) return 1;
    size_t n;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) n = 2, cp = c & 0x1F;
    else if ((c & 0xF0) == 0xE0) n = 3, cp = c & 0x0F;
    else if ((c & 0xF8) == 0xF0) n = 4, cp = c & 0x07;
    else return 0;
    if (i + n > s.size()) return 0;
    for (size_t k = 1; k < n; ++k) {
        if ((b(k) & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (b(k) & 0x3F);
    }
    static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

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
        d.warnings.push_back(str_cat(replaced, " byte(s) were not valid UTF-8 and were replaced with U+FFFD"));
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
                    append_utf8(out, 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00));
                    i += 2;
                    continue;
                }
            }
            if (u >= 0xD800 && u <= 0xDFFF) {
                append_utf8(out, 0xFFFD);
                ++*replaced;
            } else {
                append_utf8(out, u);
            }
        }
        if (bytes.size() % 2) ++*replaced;  // a dangling half code unit
        return normalise_newlines(out);
    }
    if (bytes.size() >= 3 && std::memcmp(bytes.data(), "\xEF\xBB\xBF", 3) == 0) bytes.remove_prefix(3);
    if (bytes.find('\0') != std::string_view::npos)
        return invalid_argument(label, ": looks like a binary file (it contains NUL bytes), not text or PDF");
    std::string out;
    out.reserve(bytes.size());
    for (size_t i = 0; i < bytes.size();) {
        size_t n = utf8_sequence_length(bytes, i);
        if (n == 0) {
            append_utf8(out, 0xFFFD);
            ++*replaced;
            ++i;
        } else {
            out.append(bytes.substr(i, n));
            i += n;
        }
    }
    return normalise_newlines(out);
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
