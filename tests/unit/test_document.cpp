#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "sdk/document.h"
#include "test_helpers.h"

namespace volt {
namespace {

const std::filesystem::path kDocs = std::filesystem::path(VOLT_TEST_DATA_DIR) / "documents";

TEST(Document, PdfPagesCarryTheirText) {
    if (!pdf_support_available()) GTEST_SKIP() << "built without poppler-cpp";
    auto d = load_document(kDocs / "three_pages.pdf");
    ASSERT_TRUE(d.has_value()) << d.status().to_string();
    std::ifstream in(kDocs / "expected.json");
    const auto expected = nlohmann::json::parse(in)["three_pages.pdf"];
    EXPECT_EQ(d->format, Document::Format::kPdf);
    ASSERT_EQ(static_cast<int>(d->pages.size()), expected["pages"].get<int>());
    for (size_t p = 0; p < d->pages.size(); ++p) {
        EXPECT_EQ(d->pages[p].number, static_cast<int>(p + 1));
        for (const auto& w : expected["words_per_page"][p])
            EXPECT_NE(d->pages[p].text.find(w.get<std::string>()), std::string::npos)
                << "page " << p + 1 << " lacks '" << w.get<std::string>() << "':\n" << d->pages[p].text;
    }
    // The table's rows stay rows (physical layout): the city and its population share a line.
    EXPECT_NE(d->pages[1].text.find("Corvo"), std::string::npos);
    const std::string& t = d->pages[1].text;
    size_t corvo = t.find("Corvo");
    EXPECT_LT(corvo, t.find("8150"));
    EXPECT_EQ(t.substr(corvo, t.find("8150") - corvo).find('\n'), std::string::npos) << t;
    EXPECT_TRUE(d->warnings.empty());
    EXPECT_EQ(d->text().find("Belmont"), d->pages[0].text.find("Belmont"));
}

TEST(Document, EncryptedPdfIsRefusedClearly) {
    if (!pdf_support_available()) GTEST_SKIP() << "built without poppler-cpp";
    auto d = load_document(kDocs / "encrypted.pdf");
    ASSERT_FALSE(d.has_value());
    EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(d.status().message().find("encrypted"), std::string::npos) << d.status().message();
    EXPECT_NE(d.status().message().find("encrypted.pdf"), std::string::npos);
}

TEST(Document, TruncatedAndFakePdfs) {
    test::TempDir dir;
    std::ifstream in(kDocs / "three_pages.pdf", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    test::write_file(dir / "cut.pdf", bytes.substr(0, 40));
    auto cut = load_document(dir / "cut.pdf");
    ASSERT_FALSE(cut.has_value());
    if (pdf_support_available()) {
        EXPECT_EQ(cut.status().code(), StatusCode::kDataLoss) << cut.status().message();
    }
    test::write_file(dir / "fake.pdf", "just some text");
    auto fake = load_document(dir / "fake.pdf");
    ASSERT_FALSE(fake.has_value());
    EXPECT_EQ(fake.status().code(), StatusCode::kDataLoss);
    EXPECT_NE(fake.status().message().find("does not start with %PDF-"), std::string::npos);
}

TEST(Document, TextFilesDecodeToUtf8) {
    auto d = load_document(kDocs / "notes_crlf.txt");
    ASSERT_TRUE(d.has_value()) << d.status().to_string();
    ASSERT_EQ(d->pages.size(), 1u);
    EXPECT_EQ(d->pages[0].text, "Line one\nLigne deux \xC3\xA9t\xC3\xA9\n\xE5\x9C\xB0\xE5\x9B\xBE\xE6\x98\xAF\xE4\xBB\x80\xE4\xB9\x88\n");
    EXPECT_TRUE(d->warnings.empty());

    auto latin = load_document(kDocs / "latin1.txt");
    ASSERT_TRUE(latin.has_value());
    EXPECT_EQ(latin->pages[0].text, "Caf\xEF\xBF\xBD cr\xEF\xBF\xBDme\n");  // replaced, and said so
    ASSERT_EQ(latin->warnings.size(), 1u);
    EXPECT_NE(latin->warnings[0].find("2 invalid UTF-8 sequence(s)"), std::string::npos);
}

TEST(Document, FormFeedsSplitPagesAndUtf16IsConverted) {
    auto d = load_document_from_memory({reinterpret_cast<const std::byte*>("a\fb\r\fc"), 6}, "x.txt");
    ASSERT_TRUE(d.has_value());
    ASSERT_EQ(d->pages.size(), 3u);
    EXPECT_EQ(d->pages[1].text, "b\n");
    EXPECT_EQ(d->pages[2].number, 3);
    const unsigned char utf16le[] = {0xFF, 0xFE, 'h', 0, 'i', 0, 0x3D, 0xD8, 0x00, 0xDE};  // "hi😀"
    auto u = load_document_from_memory({reinterpret_cast<const std::byte*>(utf16le), sizeof utf16le}, "u.txt");
    ASSERT_TRUE(u.has_value()) << u.status().to_string();
    EXPECT_EQ(u->pages[0].text, "hi\xF0\x9F\x98\x80");
}

TEST(Document, BinaryMissingAndOversized) {
    auto bin = load_document(kDocs / "binary.bin");
    ASSERT_FALSE(bin.has_value());
    EXPECT_EQ(bin.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(bin.status().message().find("binary"), std::string::npos);
    EXPECT_EQ(load_document(kDocs / "nope.txt").status().code(), StatusCode::kNotFound);
    DocumentLimits tiny;
    tiny.max_bytes = 10;
    auto big = load_document(kDocs / "notes_crlf.txt", tiny);
    ASSERT_FALSE(big.has_value());
    EXPECT_EQ(big.status().code(), StatusCode::kResourceExhausted);
}

TEST(Document, InvalidUtf8SequencesAreEachReplaced) {
    size_t replaced = 0;
    // overlong '/', a surrogate, a lone continuation byte, a truncated 3-byte sequence at the end: each maximal
    // invalid subpart becomes one U+FFFD, exactly as Python's bytes.decode(errors="replace") gives
    auto s = decode_text_to_utf8("a\xC0\xAF" "b\xED\xA0\x80" "c\x80" "d\xE2\x82", "t", &replaced);
    ASSERT_TRUE(s.has_value());
    const std::string r = "\xEF\xBF\xBD";
    EXPECT_EQ(*s, "a" + r + r + "b" + r + r + r + "c" + r + "d" + r);
    EXPECT_EQ(replaced, 7u);
}

}  // namespace
}  // namespace volt
