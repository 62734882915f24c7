"""Makes a client believe its expired tickets are still good: rewrites the end time of every
credential in an MIT FILE ccache (format 0x0504) to an hour from now. The tickets themselves
(encrypted for the service) keep their real, past end time, so the server sees a truly
expired ticket from an honest-looking client, which no standard client would send.
Usage: ccache_extend.py PATH
"""
import struct
import sys
import time


def main(path):
    data = bytearray(open(path, "rb").read())
    pos = 0

    def u16():
        nonlocal pos
        (v,) = struct.unpack_from("!H", data, pos)
        pos += 2
        return v

    def u32():
        nonlocal pos
        (v,) = struct.unpack_from("!I", data, pos)
        pos += 4
        return v

    def counted():
        nonlocal pos
        n = u32()
        pos += n

    def principal():
        u32()  # name type
        n = u32()
        counted()  # realm
        for _ in range(n):
            counted()

    if u16() != 0x0504:
        sys.exit("not a version 4 FILE ccache")
    tags = u16()  # header tags
    pos += tags
    principal()  # default principal
    later = int(time.time()) + 3600
    changed = 0
    while pos < len(data):
        principal()
        principal()
        u16()  # key enctype
        counted()  # key
        times = pos
        pos += 16
        struct.pack_into("!I", data, times + 8, later)  # endtime
        changed += 1
        pos += 1 + 4  # is_skey, flags
        for _ in range(u32()):  # addresses
            u16()
            counted()
        for _ in range(u32()):  # authdata
            u16()
            counted()
        counted()  # ticket
        counted()  # second ticket
    open(path, "wb").write(data)
    print("extended %d credentials" % changed)


if __name__ == "__main__":
    main(sys.argv[1])
