#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_bzimage (tests/fuzz/corpus/bzimage): a tiny x86-64 ELF64
compressed as the kernel build does (XZ with the x86 BCJ filter and CRC32, gzip -9, zstd, LZ4
legacy frame), each with the build's 4-byte size trailer (not gzip), as bare payloads and inside
a minimal protocol-2.15 bzImage. Needs the zstd and lz4 command-line tools. Run once; the seeds
are checked in (each < 4 KiB)."""
import gzip, lzma, os, struct, subprocess, sys

HELLO = bytes([0x66, 0xba, 0xf8, 0x03, 0xb0, 0x48, 0xee, 0xb0, 0x69, 0xee, 0x66,
               0xba, 0xf4, 0x00, 0xb8, 0x03, 0x00, 0x00, 0x00, 0xef, 0xf4])


def elf64(entry, paddr, code):
    """ELF64 x86-64 ET_EXEC with one PT_LOAD (as tests/unit/machine/test_images.h MakeElf64)."""
    eh = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    eh += struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, entry, 64, 0, 0, 64, 56, 1, 0, 0, 0)
    data_off = 128
    ph = struct.pack("<IIQQQQQQ", 1, 7, data_off, paddr, paddr, len(code), len(code), 0x1000)
    return (eh + ph).ljust(data_off, b"\0") + code


def trailer(n):
    return struct.pack("<I", n & 0xFFFFFFFF)


def tool(args, data):
    return subprocess.run(args, input=data, stdout=subprocess.PIPE, check=True).stdout


def bzimage(payload, init_size=16 << 20):
    b = bytearray(1024)
    b[0x1F1] = 1
    struct.pack_into("<I", b, 0x1F4, (0x40 + len(payload) + 15) // 16)
    struct.pack_into("<H", b, 0x1FE, 0xAA55)
    b[0x200], b[0x201] = 0xEB, 0x6A
    b[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", b, 0x206, 0x020F)
    b[0x211] = 0x01
    struct.pack_into("<III", b, 0x228, 0, 0x7FFFFFFF, 0x200000)
    b[0x234], b[0x235] = 1, 21
    struct.pack_into("<HI", b, 0x236, 3, 2047)
    struct.pack_into("<II", b, 0x248, 0x40, len(payload))
    struct.pack_into("<QI", b, 0x258, 0x1000000, init_size)
    return bytes(b) + b"\x90" * 0x40 + payload


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "bzimage")
    os.makedirs(out, exist_ok=True)
    elf = elf64(0x1000000, 0x1000000, HELLO + bytes(range(256)) * 2)
    payloads = {
        "xz": lzma.compress(elf, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32,
                            filters=[{"id": lzma.FILTER_X86},
                                     {"id": lzma.FILTER_LZMA2, "preset": 6, "dict_size": 1 << 20}])
        + trailer(len(elf)),
        "gzip": gzip.compress(elf, compresslevel=9, mtime=0),
        "zstd": tool(["zstd", "-q", "-19", "-c"], elf) + trailer(len(elf)),
        "lz4": tool(["lz4", "-q", "-l", "-9", "-c"], elf) + trailer(len(elf)),
    }
    for name, payload in payloads.items():
        for fname, data in (("payload_" + name, payload), ("bzimage_" + name, bzimage(payload))):
            assert len(data) < 4096, fname
            with open(os.path.join(out, fname), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
