#!/usr/bin/env python3
"""Writes the uncompressed vmlinux ELF inside a bzImage (as the kernel's scripts/extract-vmlinux
does): the setup header's payload_offset locates the compressed kernel, XZ (Debian) or gzip.
Usage: extract_vmlinux.py BZIMAGE OUTPUT
"""
import gzip
import lzma
import struct
import sys


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    b = open(sys.argv[1], 'rb').read()
    if len(b) < 0x250 or b[0x202:0x206] != b'HdrS':
        sys.exit(f"{sys.argv[1]}: not a bzImage")
    setup_sects = b[0x1f1] or 4
    payload_offset, _ = struct.unpack_from('<II', b, 0x248)
    payload = b[(setup_sects + 1) * 512 + payload_offset:]
    if payload.startswith(b'\xfd7zXZ\x00'):
        elf = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(payload)
    elif payload.startswith(b'\x1f\x8b'):
        elf = gzip.GzipFile(fileobj=__import__('io').BytesIO(payload)).read()
    else:
        sys.exit(f"{sys.argv[1]}: payload is neither XZ nor gzip")
    if not elf.startswith(b'\x7fELF'):
        sys.exit(f"{sys.argv[1]}: the decompressed payload is not an ELF file")
    open(sys.argv[2], 'wb').write(elf)


if __name__ == '__main__':
    main()
