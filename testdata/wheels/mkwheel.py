"""Writes mylib-0.1-py3-none-any.whl, the offline wheel the bootstrap tests
install with pip (no package index is reachable in tests)."""
import base64
import hashlib
import zipfile

FILES = {
    "mylib.py": 'def hello():\n    return "hello from mylib"\n',
    "mylib-0.1.dist-info/METADATA": "Metadata-Version: 2.1\nName: mylib\nVersion: 0.1\nSummary: A test wheel for skyward\n",
    "mylib-0.1.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: skyward-testdata\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}


def digest(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data.encode()).digest()).rstrip(b"=").decode()


def add(z, name, data):
    info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
    info.external_attr = 0o644 << 16
    z.writestr(info, data)


record = "".join(f"{n},{digest(d)},{len(d.encode())}\n" for n, d in FILES.items())
record += "mylib-0.1.dist-info/RECORD,,\n"
with zipfile.ZipFile("mylib-0.1-py3-none-any.whl", "w", zipfile.ZIP_DEFLATED) as z:
    for name, data in FILES.items():
        add(z, name, data)
    add(z, "mylib-0.1.dist-info/RECORD", record)
