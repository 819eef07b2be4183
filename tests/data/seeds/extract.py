#!/usr/bin/env python3
"""Regenerate the seed .conf files by slicing line ranges out of the original
blog-post dumps (byte-exact; nothing is retyped or normalised).

Usage: python3 extract.py [SRC_DIR]   (default SRC_DIR=/work/shared/seeds)

Line numbers are 1-based and inclusive, as shown by `cat -n` / `sed -n A,Bp`.
"""
import glob
import os
import sys

SRC = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/seeds"
OUT = os.path.dirname(os.path.abspath(__file__))


def src_lines(seed):
    (path,) = glob.glob(os.path.join(SRC, seed + "_*.txt"))
    with open(path, "rb") as f:
        return f.read().splitlines(keepends=True)


def rng(seed, a, b):
    """Lines a..b (inclusive, 1-based) of the seed file, as raw bytes."""
    lines = src_lines(seed)
    assert 1 <= a <= b <= len(lines), (seed, a, b)
    return lines[a - 1 : b]


# name -> list of (seed, first_line, last_line) pieces, concatenated verbatim.
PLAIN = {
    # ---- seed 000: lvs+keepalived health checks
    "000_tcp_check.conf": [("000", 118, 172)],
    "000_http_get.conf": [("000", 179, 248)],
    # ---- seed 001, post A: Keepalived+Nginx, dual network, non-sync, dual master
    "001_nginx_dual_net_ka67.conf": [("001", 35, 111)],
    "001_nginx_dual_net_ka68.conf": [("001", 115, 193)],
    "001_nginx_vrrp_script_fragment.conf": [("001", 469, 475)],
    "001_nginx_track_script_instance_fragment.conf": [("001", 486, 505)],
    # ---- seed 001, post B: Keepalived LVS-DR + Nginx, single network, dual master
    "001_lvs_dr_ka67.conf": [("001", 578, 620)],
    "001_lvs_dr_ka68.conf": [("001", 625, 667)],
    "001_lvs_dr_virtual_servers_fragment.conf": [("001", 738, 799)],
    # combined: "add Virtual Server config at the end of the config file"
    "001_lvs_dr_ka67_full.conf": [("001", 578, 620), ("001", 738, 799)],
    "001_lvs_dr_ka68_full.conf": [("001", 625, 667), ("001", 738, 799)],
    # ---- seed 001, post C: dual network, sync group, dual master
    "001_sync_dual_master_ka67.conf": [("001", 943, 1032)],
    "001_sync_dual_master_ka68.conf": [("001", 1036, 1125)],
    # ---- seed 001, post D: dual network, no sync, dual master
    "001_nosync_dual_master_ka67.conf": [("001", 1176, 1253)],
    "001_nosync_dual_master_ka68.conf": [("001", 1257, 1334)],
    # ---- seed 001, post E: dual network, sync group, master/backup
    "001_sync_master_backup_ka67.conf": [("001", 1382, 1431)],
    "001_sync_master_backup_ka68.conf": [("001", 1435, 1484)],
    # ---- seed 001, post F: dual network, "no sync", master/backup
    "001_nosync_master_backup_ka67.conf": [("001", 1533, 1582)],
    "001_nosync_master_backup_ka68.conf": [("001", 1586, 1629)],
    # ---- seed 001, post G: single network, dual master
    "001_single_net_dual_master_ka67.conf": [("001", 1678, 1721)],
    "001_single_net_dual_master_ka68.conf": [("001", 1725, 1768)],
    # ---- seed 001, post H: single network, master/backup
    "001_single_net_master_backup_ka67.conf": [("001", 1835, 1861)],
    "001_single_net_master_backup_ka68.conf": [("001", 1865, 1891)],
    # ---- seed 002: chinaunix LVS-DR + keepalived (master)
    "002_lvs_dr_tcp_check_master.conf": [("002", 136, 191)],
    # ---- seed 003: heavily annotated LVS-DR + HTTP_GET
    "003_annotated_lvs_dr_http_get.conf": [("003", 74, 164)],
}


def nginx_chk_combined(base_first, base_last, gdefs_close):
    """Post A, section 6: put vrrp_script chk_nginx (src 469-475) right below
    global_defs, and the track_script block exactly as the post's example shows
    it (src 499-501) into every vrrp_instance, right after the closing brace of
    virtual_ipaddress (the position used in the post's example)."""
    lines = rng("001", base_first, base_last)
    vrrp_script = rng("001", 469, 475)
    track = rng("001", 499, 501)
    out = []
    in_vip = False
    for n, line in enumerate(lines, start=base_first):
        out.append(line)
        if n == gdefs_close:
            out.extend(vrrp_script)
        s = line.strip()
        if s.startswith(b"virtual_ipaddress"):
            in_vip = True
        elif in_vip and s == b"}":
            in_vip = False
            out.extend(track)
    return b"".join(out)


COMBINED = {
    "001_nginx_dual_net_ka67_chk_nginx.conf": lambda: nginx_chk_combined(35, 111, 43),
    "001_nginx_dual_net_ka68_chk_nginx.conf": lambda: nginx_chk_combined(115, 193, 123),
}

if __name__ == "__main__":
    for name, pieces in PLAIN.items():
        data = b"".join(b"".join(rng(*p)) for p in pieces)
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    for name, fn in COMBINED.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(fn())
    print("wrote", len(PLAIN) + len(COMBINED), "files to", OUT)
