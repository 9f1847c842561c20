// PDF text extraction through poppler-cpp (Debian libpoppler-cpp-dev).
#include <memory>
#include <mutex>

#include <poppler/cpp/poppler-document.h>
#include <poppler/cpp/poppler-global.h>
#include <poppler/cpp/poppler-page.h>

#include "sdk/document.h"
#include "sdk/log.h"

namespace volt {

bool pdf_support_available() { return true; }

Expected<Document> load_pdf(std::span<const std::byte> bytes, std::string name, const DocumentLimits& limits) {
    // poppler prints its diagnostics to stderr by default; route them to Volt's log instead.
    static std::once_flag once;
    std::call_once(once, [] {
        poppler::set_debug_error_function(
            [](const std::string& msg, void*) { VOLT_LOG(kDebug, kGeneral, "poppler: ", msg); }, nullptr);
    });
    // poppler wants a mutable buffer it may keep referencing: hand it a copy that the document owns.
    std::vector<char> data(reinterpret_cast<const char*>(bytes.data()), reinterpret_cast<const char*>(bytes.data()) + bytes.size());
    std::unique_ptr<poppler::document> doc(poppler::document::load_from_data(&data));
    if (!doc) return data_loss(name, ": not a readable PDF (damaged or truncated)");
    if (doc->is_locked())
        return invalid_argument(name, ": the PDF is encrypted with a password; decrypt it first (e.g. qpdf --decrypt)");
    const int n = doc->pages();
    if (n <= 0) return data_loss(name, ": the PDF has no pages");
    if (n > limits.max_pages)
        return resource_exhausted(name, ": ", n, " pages exceeds the document limit of ", limits.max_pages);
    Document d;
    d.name = std::move(name);
    d.format = Document::Format::kPdf;
    if (auto title = doc->get_title(); !title.empty()) {
        auto utf8 = title.to_utf8();
        d.title.assign(utf8.begin(), utf8.end());
    }
    int empty_pages = 0;
    for (int i = 0; i < n; ++i) {
        std::unique_ptr<poppler::page> page(doc->create_page(i));
        if (!page) return data_loss(d.name, ": page ", i + 1, " cannot be read");
        // Physical layout keeps table columns and reading order on the page, which matters for questions about
        // tables; raw order can interleave columns.
        auto utf8 = page->text(poppler::rectf(), poppler::page::physical_layout).to_utf8();
        std::string text(utf8.begin(), utf8.end());
        size_t replaced = 0;
        auto clean = decode_text_to_utf8(text, d.name, &replaced);  // normalises line ends; poppler gives UTF-8
        if (!clean) clean = std::string();
        if (clean->find_first_not_of(" \n\t\f") == std::string::npos) ++empty_pages;
        d.pages.push_back({i + 1, std::move(clean).value()});
    }
    if (empty_pages)
        d.warnings.push_back(str_cat(empty_pages, " of ", n, " page(s) have no extractable text (scanned images?)"));
    return d;
}

}  // namespace volt
