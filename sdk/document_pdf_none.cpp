// Builds without poppler-cpp: text documents work, PDFs say why they cannot be read.
#include "sdk/document.h"

namespace volt {

bool pdf_support_available() { return false; }

Expected<Document> load_pdf(std::span<const std::byte>, std::string name, const DocumentLimits&) {
    return unimplemented(name, ": this build of Volt cannot read PDF (built without poppler-cpp; "
                               "install libpoppler-cpp-dev and rebuild)");
}

}  // namespace volt
