"""Reads a QR code from a PNG screenshot: a small PNG decoder (stdlib zlib) feeding zxing-cpp,
so the tests need no imaging library besides the decoder itself."""

from __future__ import annotations

import struct
import zlib

import zxingcpp

_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # PNG colour type -> samples per pixel (8-bit, no palette)


def png_to_gray(png: bytes) -> tuple[bytes, int, int]:
    """Decode an 8-bit, non-interlaced PNG (what Chromium's screenshots are) to grey bytes."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    width = height = channels = 0
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        data = png[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", data)
            assert depth == 8 and colour in _CHANNELS and not interlace, "unsupported PNG layout"
            channels = _CHANNELS[colour]
        elif kind == b"IDAT":
            idat += data
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytearray] = []
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        for i in range(stride):  # undo the PNG row filter
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                pred = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[i] = (line[i] + pred) & 0xFF
        rows.append(line)
        previous = line
    gray = bytearray(width * height)
    for y, line in enumerate(rows):
        for x in range(width):
            px = line[x * channels:x * channels + channels]
            gray[y * width + x] = px[0] if channels <= 2 else (px[0] * 299 + px[1] * 587 + px[2] * 114) // 1000
    return bytes(gray), width, height


def decode_qr(png: bytes) -> str:
    """The text of the one QR code in the PNG."""
    gray, width, height = png_to_gray(png)
    image = memoryview(gray).cast("B", (height, width))
    found = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    assert len(found) == 1, f"expected one QR code in the screenshot, found {len(found)}"
    return found[0].text
