#!/usr/bin/env python3
"""The host end of a Linux guest's network in the Linux tests: vmrr's virtio-net carries the
guest's Ethernet frames as UDP datagrams on loopback (--net udp:127.0.0.1:PORT), and this peer
answers them as a tiny host at 10.0.2.2 would: ARP replies, and a TFTP server (UDP port 69)
that takes one upload and serves one file whose content depends on the upload and on a random
token of its own, so that the payloads of both directions can be checked.

Usage: udp_peer.py REPORT [--port PORT] [--port-file FILE] [--timeout SECONDS]
Listens on 127.0.0.1:PORT and sends to 127.0.0.1:PORT+1, vmrr's end (`--net
udp:127.0.0.1:PORT`). Without --port it picks a PORT whose PORT+1 is free too, and writes it to
FILE once it listens. When the guest has read the reply file (or at the timeout) it writes
REPORT: "upload NAME SHA16" and "reply CONTENT" lines, and exits (status 0 if both transfers
happened, 1 otherwise).
"""
import argparse
import hashlib
import os
import socket
import struct
import sys
import time

PEER_MAC = bytes.fromhex("020000000202")
PEER_IP = socket.inet_aton("10.0.2.2")
TFTP_PORT = 69
SERVER_TID = 50069  # the UDP port the server's side of a transfer uses (RFC 1350's TID)


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


class Peer:
    def __init__(self, sock, vmrr_addr):
        self.sock, self.vmrr = sock, vmrr_addr
        self.uploads = {}  # name -> {block: bytes}
        self.upload_done = None  # (name, data)
        self.reply = None  # bytes served
        self.reply_acked = False
        self.current = None  # the upload in progress
        self.ip_id = 0

    def send_udp(self, guest_mac, guest_ip, sport, dport, payload):
        udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
        pseudo = PEER_IP + guest_ip + struct.pack("!BBH", 0, 17, len(udp))
        csum = checksum(pseudo + udp) or 0xFFFF
        udp = udp[:6] + struct.pack("!H", csum) + udp[8:]
        self.ip_id += 1
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), self.ip_id, 0, 64, 17, 0,
                         PEER_IP, guest_ip)
        ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
        self.sock.sendto(guest_mac + PEER_MAC + b"\x08\x00" + ip + udp, self.vmrr)

    def frame(self, f):
        if len(f) < 14:
            return
        src_mac, ethertype = f[6:12], f[12:14]
        if ethertype == b"\x08\x06" and len(f) >= 42:  # ARP
            op, sha, spa, tpa = f[20:22], f[22:28], f[28:32], f[38:42]
            if op == b"\x00\x01" and tpa == PEER_IP:
                arp = b"\x00\x01\x08\x00\x06\x04\x00\x02" + PEER_MAC + PEER_IP + sha + spa
                self.sock.sendto(src_mac + PEER_MAC + b"\x08\x06" + arp, self.vmrr)
            return
        if ethertype != b"\x08\x00" or len(f) < 34:
            return
        ip = f[14:]
        ihl = (ip[0] & 15) * 4
        if ip[9] != 17 or ip[16:20] != PEER_IP or len(ip) < ihl + 8:
            return
        guest_ip = ip[12:16]
        sport, dport, ulen = struct.unpack("!HHH", ip[ihl:ihl + 6])
        payload = ip[ihl + 8:ihl + ulen]
        if len(payload) < 4:
            return
        op = struct.unpack("!H", payload[:2])[0]
        reply = lambda data: self.send_udp(src_mac, guest_ip, SERVER_TID, sport, data)
        if dport == TFTP_PORT and op in (1, 2):  # RRQ, WRQ: NAME\0MODE\0[options]
            name = payload[2:].split(b"\0")[0].decode(errors="replace")
            if op == 2:
                self.uploads[name] = {}
                self.current = name
                reply(struct.pack("!HH", 4, 0))
            else:
                if self.upload_done is None:
                    reply(struct.pack("!HH", 5, 1) + b"nothing uploaded yet\0")
                    return
                up_name, data = self.upload_done
                token = os.urandom(8).hex()
                self.reply = ("pong %s %s %s" % (up_name, hashlib.sha256(data).hexdigest()[:16],
                                                 token)).encode()
                reply(struct.pack("!HH", 3, 1) + self.reply + b"\n")
        elif dport == SERVER_TID and op == 3 and self.current is not None:  # upload DATA
            block = struct.unpack("!H", payload[2:4])[0]
            blocks = self.uploads.setdefault(self.current, {})
            blocks[block] = payload[4:]
            reply(struct.pack("!HH", 4, block))
            if len(payload) - 4 < 512:
                data = b"".join(blocks[b] for b in sorted(blocks))
                self.upload_done = (self.current, data)
        elif dport == SERVER_TID and op == 4:  # ACK of the reply
            if self.reply is not None and struct.unpack("!H", payload[2:4])[0] == 1:
                self.reply_acked = True


def write_report(peer, path):
    with open(path + ".tmp", "w") as out:
        if peer.upload_done:
            name, data = peer.upload_done
            out.write("upload %s %s\n" % (name, hashlib.sha256(data).hexdigest()[:16]))
        if peer.reply is not None:
            out.write("reply %s\n" % peer.reply.decode())
    os.replace(path + ".tmp", path)


def bind_pair(port):
    """A UDP socket on 127.0.0.1:port; for port 0, on a free port whose successor is free."""
    for _ in range(100):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", port))
        if port:
            return s
        p = s.getsockname()[1]
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            if p < 65535:
                probe.bind(("127.0.0.1", p + 1))
                return s
        except OSError:
            pass
        finally:
            probe.close()
        s.close()
    sys.exit("udp_peer: no free pair of UDP ports")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--timeout", type=float, default=600)
    a = ap.parse_args()
    s = bind_pair(a.port)
    port = s.getsockname()[1]
    if a.port_file:
        with open(a.port_file + ".tmp", "w") as f:
            f.write("%d\n" % port)
        os.replace(a.port_file + ".tmp", a.port_file)
    peer = Peer(s, ("127.0.0.1", port + 1))
    deadline = time.monotonic() + a.timeout
    # After the reply's ACK, linger a little to re-answer retransmissions.
    linger_until = None
    reported = None
    while time.monotonic() < deadline and (linger_until is None or time.monotonic() < linger_until):
        s.settimeout(0.2)
        try:
            f, _ = s.recvfrom(65536)
        except socket.timeout:
            continue
        try:
            peer.frame(f)
        except (struct.error, IndexError, UnicodeError):
            pass  # a frame the guest cut short: not for this peer
        if (peer.upload_done, peer.reply) != reported:  # as it happens: a kill loses nothing
            reported = (peer.upload_done, peer.reply)
            write_report(peer, a.report)
        if peer.reply_acked and linger_until is None:
            linger_until = time.monotonic() + 1
    write_report(peer, a.report)
    sys.exit(0 if peer.reply_acked else 1)


if __name__ == "__main__":
    main()
