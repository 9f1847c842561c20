#!/usr/bin/env python3
"""Makes the document-ingestion fixtures in tests/data/documents (small, committed).

- three_pages.pdf: a 3-page PDF written by hand (standard Helvetica, WinAnsiEncoding) whose page texts are known:
  a title and paragraph, a small table (rows of "city | population"), and accented Latin text.
- encrypted.pdf: the same PDF encrypted with a user password (pypdf), which Volt must refuse clearly.
- expected.json: what each page must contain (phrases, not exact layout: text extraction spacing is the library's).
- notes_crlf.txt (UTF-8 with BOM and CRLF), latin1.txt (not UTF-8), binary.bin (NUL bytes).

Run: python3 tools/make_document_fixture.py   (needs pypdf from PyPI for the encrypted copy)
"""
import json
import os
import sys

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "documents")

PAGES = [
    ["Volt document fixture", "The river Aster flows north past Belmont.", "Three bridges cross it."],
    ["City        Population", "Belmont     12400", "Corvo       8150", "Dunmere     30210"],
    ["Caf\xe9 na\xefve r\xe9sum\xe9", "Stra\xdfe und \xc4pfel"],
]


def pdf_escape(s: str) -> bytes:
    b = s.encode("cp1252")
    return b.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def make_pdf(pages) -> bytes:
    objects = []  # 1-based object bodies
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(len(pages)))
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    for i, lines in enumerate(pages):
        page_obj, content_obj = 4 + 2 * i, 5 + 2 * i
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {content_obj} 0 R "
                       f"/Resources << /Font << /F1 3 0 R >> >> >>".encode())
        stream = b"BT /F1 14 Tf 72 720 Td 18 TL "
        for line in lines:
            stream += b"(" + pdf_escape(line) + b") Tj T* "
        stream += b"ET"
        objects.append(b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream")
        assert page_obj == len(objects) - 1 and content_obj == len(objects)
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{n} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        out += f"{off:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def main() -> int:
    os.makedirs(OUT, exist_ok=True)
    pdf = make_pdf(PAGES)
    with open(os.path.join(OUT, "three_pages.pdf"), "wb") as f:
        f.write(pdf)
    try:
        import pypdf
    except ImportError:
        print("pip install pypdf for encrypted.pdf", file=sys.stderr)
        return 1
    reader = pypdf.PdfReader(os.path.join(OUT, "three_pages.pdf"))
    writer = pypdf.PdfWriter()
    for p in reader.pages:
        writer.add_page(p)
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="RC4-128")
    with open(os.path.join(OUT, "encrypted.pdf"), "wb") as f:
        writer.write(f)
    # Cross-check the hand-written PDF with an independent extractor.
    for i, lines in enumerate(PAGES):
        text = reader.pages[i].extract_text()
        for line in lines:
            for word in line.split():
                assert word in text, (i, word, text)
    expected = {"three_pages.pdf": {"pages": len(PAGES), "words_per_page": [[w for l in p for w in l.split()] for p in PAGES]}}
    with open(os.path.join(OUT, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, ensure_ascii=False, indent=1)
    with open(os.path.join(OUT, "notes_crlf.txt"), "wb") as f:
        f.write("\ufeffLine one\r\nLigne deux \u00e9t\u00e9\r\n\u5730\u56fe\u662f\u4ec0\u4e48\r\n".encode("utf-8"))
    with open(os.path.join(OUT, "latin1.txt"), "wb") as f:
        f.write("Caf\xe9 cr\xe8me\n".encode("latin-1"))
    with open(os.path.join(OUT, "binary.bin"), "wb") as f:
        f.write(bytes(range(256)) * 4)
    print("wrote", OUT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
