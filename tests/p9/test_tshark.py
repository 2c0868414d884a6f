"""Wireshark's 9P dissector (tshark), an independent decoder, reads the frames jetwire writes.

The frames go into a pcap file as TCP segments between a client and port 564 (no capture, no
privileges); tshark must find every message with its type, tag and fields, and flag nothing
as malformed.
"""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

from peers import find_tool

from jetwire import p9
from jetwire.p9 import Qid, Rframe, Tframe
from jetwire.p9 import constants as c

QID = Qid(type=c.P9_QTDIR, version=3, path=42)

CONVERSATION = [
    Tframe(tag=c.NOTAG, msg=p9.Tversion(msize=65560, version="9P2000.L")),
    Rframe(tag=c.NOTAG, msg=p9.Rversion(msize=65536, version="9P2000.L")),
    Tframe(tag=1, msg=p9.Tattach(fid=0, afid=c.NOFID, uname="root", aname="/srv/export", n_uname=0)),
    Rframe(tag=1, msg=p9.Rattach(qid=QID)),
    Tframe(tag=2, msg=p9.Twalk(fid=0, newfid=7, wnames=["usr", "share", "caf\udce9"])),
    Rframe(tag=2, msg=p9.Rwalk(wqids=[QID, QID, Qid(0, 0, 99)])),
    Tframe(tag=3, msg=p9.Tlopen(fid=7, flags=c.P9_RDWR)),
    Rframe(tag=3, msg=p9.Rlopen(qid=Qid(0, 0, 99), iounit=0)),
    Tframe(tag=4, msg=p9.Twrite(fid=7, offset=4096, data=b"written by jetwire")),
    Rframe(tag=4, msg=p9.Rwrite(count=18)),
    Tframe(tag=5, msg=p9.Tread(fid=7, offset=0, count=8192)),
    Rframe(tag=5, msg=p9.Rread(data=b"read back")),
    Tframe(tag=6, msg=p9.Tgetattr(fid=7, request_mask=c.P9_GETATTR_ALL)),
    Rframe(tag=6, msg=p9.Rgetattr(valid=c.P9_GETATTR_BASIC, qid=QID, mode=0o100644, uid=1000, gid=100, nlink=1,
                                  rdev=0, size=12345, blksize=4096, blocks=32, atime_sec=1, atime_nsec=2,
                                  mtime_sec=3, mtime_nsec=4, ctime_sec=5, ctime_nsec=6, btime_sec=0,
                                  btime_nsec=0, gen=0, data_version=0)),
    Tframe(tag=7, msg=p9.Tlcreate(fid=0, name="new.txt", flags=c.P9_WRONLY | c.P9_CREATE, mode=0o644, gid=100)),
    Rframe(tag=7, msg=p9.Rlerror(ecode=c.EEXIST)),
    Tframe(tag=8, msg=p9.Tmkdir(dfid=0, name="dir", mode=0o755, gid=100)),
    Rframe(tag=8, msg=p9.Rmkdir(qid=QID)),
    Tframe(tag=9, msg=p9.Tsetattr(fid=7, valid=c.P9_SETATTR_SIZE, mode=0, uid=0, gid=0, size=10, atime_sec=0,
                                  atime_nsec=0, mtime_sec=0, mtime_nsec=0)),
    Rframe(tag=9, msg=p9.Rsetattr()),
    Tframe(tag=10, msg=p9.Tlock(fid=7, type=c.P9_LOCK_TYPE_WRLCK, flags=0, start=0, length=100, proc_id=77,
                                client_id="host")),
    Rframe(tag=10, msg=p9.Rlock(status=c.P9_LOCK_SUCCESS)),
    Tframe(tag=11, msg=p9.Tunlinkat(dirfd=0, name="old", flags=c.AT_REMOVEDIR)),
    Rframe(tag=11, msg=p9.Runlinkat()),
    Tframe(tag=12, msg=p9.Tflush(oldtag=5)),
    Rframe(tag=12, msg=p9.Rflush()),
    Tframe(tag=13, msg=p9.Tclunk(fid=7)),
    Rframe(tag=13, msg=p9.Rclunk()),
]

FIELDS = ["9p.msgtype", "9p.tag", "9p.fid", "9p.newfid", "9p.wname", "9p.count", "9p.offset", "9p.version",
          "9p.maxsize", "9p.uname", "9p.aname", "9p.filename", "9p.lcreate.flags", "9p.unlinkat.flags", "9p.qidpath", "_ws.malformed", "_ws.expert.severity"]


def write_pcap(frames: list[Tframe | Rframe], path: Path) -> None:
    """Each frame as one TCP segment (Ethernet, IPv4, TCP, then the frame), requests to port 564."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)]
    seq = {True: 1000, False: 900000}
    for i, frame in enumerate(frames):
        data = frame.encode()
        client = isinstance(frame, Tframe)
        ports = (40000, 564) if client else (564, 40000)
        hosts = (b"\x7f\0\0\x01", b"\x7f\0\0\x02") if client else (b"\x7f\0\0\x02", b"\x7f\0\0\x01")
        tcp = struct.pack("!HHIIBBHHH", *ports, seq[client], seq[not client], 5 << 4, 0x18, 65535, 0, 0)
        seq[client] += len(data)
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40 + len(data), i, 0, 64, 6, 0, *hosts)
        packet = b"\0" * 12 + b"\x08\x00" + ip + tcp + data
        out.append(struct.pack("<IIII", i, 0, len(packet), len(packet)) + packet)
    path.write_bytes(b"".join(out))


def dissect(path: Path) -> list[dict[str, str]]:
    tshark = find_tool("tshark", "tshark")
    command = [tshark, "-r", str(path), "-d", "tcp.port==564,9p", "-T", "fields", "-E", "aggregator=,",
               "-E", "separator=\t"]
    for field in FIELDS:
        command += ["-e", field]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    return [dict(zip(FIELDS, line.split("\t"))) for line in result.stdout.splitlines()]


def test_tshark_reads_every_frame(tmp_path: Path) -> None:
    """r[9p2000l.frame.header], r[9p2000l.types], r[9p2000l.encoding.string]: message type,
    tag and fields as Wireshark reads them; nothing malformed."""
    write_pcap(CONVERSATION, tmp_path / "jetwire.pcap")
    rows = dissect(tmp_path / "jetwire.pcap")
    assert len(rows) == len(CONVERSATION)
    for row, frame in zip(rows, CONVERSATION):
        number = frame.encode()[4]
        assert row["9p.msgtype"] == str(number), (row, frame)
        assert row["9p.tag"] == str(frame.tag), (row, frame)
        assert row["_ws.malformed"] == "" and row["_ws.expert.severity"] == "", (row, frame)
    by_type = {type(f.msg).__name__: row for row, f in zip(rows, CONVERSATION)}
    assert by_type["Tversion"]["9p.version"] == "9P2000.L" and by_type["Tversion"]["9p.maxsize"] == "65560"
    assert (by_type["Tattach"]["9p.uname"], by_type["Tattach"]["9p.aname"]) == ("root", "/srv/export")
    walk = by_type["Twalk"]
    assert (walk["9p.fid"], walk["9p.newfid"]) == ("0", "7")
    assert walk["9p.wname"].split(",")[:2] == ["usr", "share"]  # the third is not UTF-8: shown escaped
    assert by_type["Rwalk"]["9p.qidpath"] == "42,42,99"
    assert (by_type["Twrite"]["9p.offset"], by_type["Twrite"]["9p.count"]) == ("4096", "18")
    assert by_type["Rread"]["9p.count"] == "9"
    assert (by_type["Tread"]["9p.offset"], by_type["Tread"]["9p.count"]) == ("0", "8192")
    assert by_type["Rgetattr"]["9p.qidpath"] == "42"
    assert (by_type["Tlcreate"]["9p.filename"], by_type["Tlcreate"]["9p.lcreate.flags"]) == ("new.txt", "0x00000041")
    assert (by_type["Tunlinkat"]["9p.wname"], by_type["Tunlinkat"]["9p.unlinkat.flags"]) == ("old", "0x00000200")
    assert by_type["Tmkdir"]["9p.wname"] == "dir"
