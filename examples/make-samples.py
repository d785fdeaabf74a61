#!/usr/bin/python3
# make-samples.py: makes the sample documents the examples and `make demo` run on, and writes
# them into examples/docs/ and examples/video/.  The results are committed; rerun this only to
# change them (Debian's python3-pil and fonts-dejavu-core; the output is the same every run).
#
#   docs/report.pdf   two pages of text, a hand-written PDF (Helvetica, no external tools)
#   docs/letter.png   a page of text "scanned" at 200 dpi (pHYs says so: --dpi auto scales it)
#   docs/receipt.jpg  a till receipt, narrow and long, no density (--dpi auto keeps it)
#   video/fK.png      four frames of a ball rolling across a table, for examples/video.sh
import os
import sys

from PIL import Image, ImageDraw, ImageFont

HERE = os.path.dirname(os.path.abspath(__file__))
FONTS = "/usr/share/fonts/truetype/dejavu/"

REPORT = [
    ["Quarterly Report: Harbour Street Bakery",
     "",
     "Summary",
     "",
     "Sales rose for the third quarter in a row. The new rye loaf, first baked",
     "in March, now makes up a fifth of bread sales, and the morning queue has",
     "moved from the pavement to the shop floor since the second oven arrived.",
     "",
     "Costs",
     "",
     "Flour prices fell by four per cent after the harvest. Butter is still",
     "dear, so the croissant keeps its price of 2.40 until the spring. The",
     "electricity contract ends in June and will be put out to tender.",
     "",
     "Staff",
     "",
     "Mira Okafor joins as a second baker on 1 July. Tom Hale moves from the",
     "counter to deliveries, which now reach eleven cafes in the old town.",
     "",
     "Next quarter",
     "",
     "1. Open on Sunday mornings from 8 to 12.",
     "2. Try a gluten-free loaf with the mill on Quay Road.",
     "3. Replace the front window sign before the street fair."],
    ["Appendix: sales by product (loaves and pieces)",
     "",
     "Product            April     May    June",
     "White tin           1210    1185    1302",
     "Rye                  402     455     520",
     "Sourdough            610     642     688",
     "Croissant            980    1012     995",
     "Cinnamon bun         455     470     512",
     "",
     "Totals             3657    3764    4017",
     "",
     "Prepared by A. Lindqvist, 3 July."],
]


def pdf_string(s):
    return "(" + s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ")"


def make_pdf(path, pages):
    """A minimal PDF 1.4: catalog, page tree, one Helvetica font (and Courier for the
    table), one content stream per page, and an exact cross-reference table."""
    objs = []

    def add(body):
        objs.append(body)
        return len(objs)

    catalog = add(None)
    tree = add(None)
    helv = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    helvb = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold >>")
    cour = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Courier >>")
    kids = []
    for lines in pages:
        ops = ["BT", "72 720 Td"]
        for i, line in enumerate(lines):
            table = "  " in line  # the appendix table, in a fixed-width font
            bold = i == 0 or line in ("Summary", "Costs", "Staff", "Next quarter")
            font = "/F3 10" if table else "/F2 13" if i == 0 else "/F2 11" if bold else "/F1 11"
            ops.append(font + " Tf")
            if line:
                ops.append(pdf_string(line) + " Tj")
            ops.append("0 -16 Td")
        ops.append("ET")
        data = "\n".join(ops).encode("latin-1")
        content = add(b"<< /Length %d >>\nstream\n" % len(data) + data + b"\nendstream")
        kids.append(add(("<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] "
                         "/Resources << /Font << /F1 %d 0 R /F2 %d 0 R /F3 %d 0 R >> >> "
                         "/Contents %d 0 R >>" % (tree, helv, helvb, cour, content)).encode()))
    objs[catalog - 1] = b"<< /Type /Catalog /Pages %d 0 R >>" % tree
    objs[tree - 1] = ("<< /Type /Pages /Kids [%s] /Count %d >>" % (
        " ".join("%d 0 R" % k for k in kids), len(kids))).encode()

    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for n, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objs) + 1, catalog, xref)
    with open(path, "wb") as f:
        f.write(out)


LETTER = [
    "Harbour Street Bakery",
    "14 Harbour Street, Kingsport",
    "",
    "2 July",
    "",
    "Dear Ms Varga,",
    "",
    "Thank you for your order of forty rye loaves for the",
    "street fair on Saturday 19 July. We will deliver them",
    "to the north gate at half past seven in the morning,",
    "sliced and bagged in tens, as you asked.",
    "",
    "The price is 3.10 a loaf, 124.00 in all. Please pay on",
    "delivery or by transfer to the account on our invoice.",
    "",
    "If the weather turns, call us before six the evening",
    "before and we will move the order to the next Saturday.",
    "",
    "With best wishes,",
    "",
    "Anna Lindqvist",
]


def make_letter(path):
    # A5 at 200 dpi, grayscale: what a desk scanner makes of a short letter.
    dpi = 200
    w, h = 1165, 1654
    img = Image.new("L", (w, h), 255)
    d = ImageDraw.Draw(img)
    body = ImageFont.truetype(FONTS + "DejaVuSerif.ttf", 34)
    head = ImageFont.truetype(FONTS + "DejaVuSerif-Bold.ttf", 44)
    y = 130
    for i, line in enumerate(LETTER):
        d.text((120, y), line, fill=20, font=head if i == 0 else body)
        y += 62 if i == 0 else 52
    img.save(path, optimize=True, dpi=(dpi, dpi))


RECEIPT = [
    ("HARBOUR ST BAKERY", None),
    ("14 Harbour Street", None),
    ("", None),
    ("2 x Rye loaf", "6.20"),
    ("1 x Sourdough", "3.80"),
    ("3 x Croissant", "7.20"),
    ("1 x Cinnamon bun", "2.10"),
    ("2 x Coffee", "5.00"),
    ("", None),
    ("SUBTOTAL", "24.30"),
    ("VAT 10%", "2.43"),
    ("TOTAL", "26.73"),
    ("", None),
    ("CARD  **** 4417", "26.73"),
    ("", None),
    ("05/07  08:42  Till 2", None),
    ("Thank you!", None),
]


def make_receipt(path):
    w, h = 384, 760
    img = Image.new("RGB", (w, h), (246, 243, 234))
    d = ImageDraw.Draw(img)
    mono = ImageFont.truetype(FONTS + "DejaVuSansMono.ttf", 19)
    bold = ImageFont.truetype(FONTS + "DejaVuSansMono-Bold.ttf", 22)
    y = 40
    for left, right in RECEIPT:
        f = bold if left in ("HARBOUR ST BAKERY", "TOTAL") else mono
        if right is None:
            tw = d.textlength(left, font=f)
            d.text(((w - tw) / 2, y), left, fill=(30, 30, 35), font=f)
        else:
            d.text((28, y), left, fill=(30, 30, 35), font=f)
            tw = d.textlength(right, font=f)
            d.text((w - 28 - tw, y), right, fill=(30, 30, 35), font=f)
        y += 38
    d.line([(28, y + 4), (w - 28, y + 4)], fill=(120, 120, 120), width=2)
    img.save(path, quality=85, optimize=True)


def make_frames(prefix, n=4):
    # A red ball rolls left to right across a table, one frame per half second.
    for k in range(n):
        img = Image.new("RGB", (224, 168), (200, 220, 240))
        d = ImageDraw.Draw(img)
        d.rectangle([0, 120, 223, 167], fill=(150, 105, 60))
        x = 30 + k * 50
        d.ellipse([x - 18, 84, x + 18, 120], fill=(210, 40, 40), outline=(90, 20, 20))
        img.save("%s%d.png" % (prefix, k), optimize=True)


def main():
    docs = os.path.join(HERE, "docs")
    video = os.path.join(HERE, "video")
    os.makedirs(docs, exist_ok=True)
    os.makedirs(video, exist_ok=True)
    make_pdf(os.path.join(docs, "report.pdf"), REPORT)
    make_letter(os.path.join(docs, "letter.png"))
    make_receipt(os.path.join(docs, "receipt.jpg"))
    make_frames(os.path.join(video, "f"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
