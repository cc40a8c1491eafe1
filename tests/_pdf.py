"""Independent PDF page count for the report tests (does not use WeasyPrint)."""
import re
import zlib
from pathlib import Path


def pdf_pages(path: Path) -> int:
    """Page count read back from the file itself (pypdf when installed, else the page objects)."""
    try:
        import pypdf
        return len(pypdf.PdfReader(str(path)).pages)
    except ImportError:
        pass
    data = Path(path).read_bytes()
    chunks = [data]
    for m in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        try:
            chunks.append(zlib.decompress(m.group(1)))
        except zlib.error:
            pass
    return sum(len(re.findall(rb"/Type\s*/Page(?![A-Za-z])", c)) for c in chunks)
