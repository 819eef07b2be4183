#!/usr/bin/env python3
"""Turn the strace transcripts from capture-vm.sh into netlink hex vectors.

    strace2hex.py CAPTURE_DIR OUT_DIR

CAPTURE_DIR holds manifest.txt (NAME|OUT=SEL ...|command), NAME.strace
(strace -x -e read=all -e write=all output) and versions.txt. For every
OUT=SEL it writes OUT_DIR/OUT.request.hex (the request) and
OUT_DIR/OUT.reply.hex (every netlink message the kernel sent back for it,
in order, up to the ACK / NLMSG_DONE), and OUT_DIR/README.md.

SEL: ctrl:CMD or ipvs:CMD, optional #N (the N-th such request, default 1),
optional !ERRNO (the reply must be that error instead of an ACK).

Output format: '#' comment lines (command, direction, versions, one decoded
summary line per message), then one line of lowercase hex per netlink
message. Fails loudly when a selected exchange is missing or a reply is not
what was expected.
"""
import errno
import os
import re
import struct
import sys

NLMSG_ERROR = 2
NLMSG_DONE = 3
GENL_ID_CTRL = 0x10

IPVS_CMDS = {
    1: "IPVS_CMD_NEW_SERVICE", 2: "IPVS_CMD_SET_SERVICE", 3: "IPVS_CMD_DEL_SERVICE",
    4: "IPVS_CMD_GET_SERVICE", 5: "IPVS_CMD_NEW_DEST", 6: "IPVS_CMD_SET_DEST",
    7: "IPVS_CMD_DEL_DEST", 8: "IPVS_CMD_GET_DEST", 9: "IPVS_CMD_NEW_DAEMON",
    10: "IPVS_CMD_DEL_DAEMON", 11: "IPVS_CMD_GET_DAEMON", 12: "IPVS_CMD_SET_CONFIG",
    13: "IPVS_CMD_GET_CONFIG", 14: "IPVS_CMD_SET_INFO", 15: "IPVS_CMD_GET_INFO",
    16: "IPVS_CMD_ZERO", 17: "IPVS_CMD_FLUSH",
}
CTRL_CMDS = {1: "CTRL_CMD_NEWFAMILY", 3: "CTRL_CMD_GETFAMILY"}

SYSCALL = re.compile(r"^(?:\[pid\s+\d+\]\s+|\d+\s+)?(sendmsg|recvmsg|sendto|recvfrom)\((\d+),.*\)\s+=\s+(-?\d+)")
HEXLINE = re.compile(r"^(?:\[pid\s+\d+\]\s+|\d+\s+)?\s\|\s[0-9a-f]{5}\s\s(.{49})")


def parse_strace(path):
    """[(direction 'req'|'rep', bytes)] for netlink traffic, MSG_PEEK dropped."""
    events = []
    cur = None
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = SYSCALL.match(line)
            if m:
                if cur is not None:
                    events.append(cur)
                call, _fd, ret = m.group(1), m.group(2), int(m.group(3))
                keep = ret > 0 and "AF_NETLINK" in line and "MSG_PEEK" not in line
                direction = "req" if call.startswith("send") else "rep"
                cur = [direction, bytearray(), keep, ret]
                continue
            h = HEXLINE.match(line)
            if h and cur is not None:
                cur[1].extend(bytes.fromhex(h.group(1).replace(" ", "")))
    if cur is not None:
        events.append(cur)
    out = []
    for direction, data, keep, ret in events:
        if not keep:
            continue
        if len(data) != ret:
            raise SystemExit(f"{path}: dump has {len(data)} bytes, syscall returned {ret}")
        out.append((direction, bytes(data)))
    return out


def split_nlmsgs(data):
    msgs = []
    off = 0
    while off + 16 <= len(data):
        (length,) = struct.unpack_from("<I", data, off)
        if length < 16 or off + length > len(data):
            raise SystemExit(f"bad nlmsg_len {length} at {off}")
        msgs.append(data[off:off + length])
        off += (length + 3) & ~3
    return msgs


def exchanges(events):
    """[(request bytes, [reply messages])]"""
    ex = []
    for direction, data in events:
        if direction == "req":
            for msg in split_nlmsgs(data):
                ex.append((msg, []))
        elif ex:
            ex[-1][1].extend(split_nlmsgs(data))
    return ex


def genl_cmd(msg):
    return msg[16] if len(msg) >= 20 else None


def describe(msg, ipvs_family):
    length, typ, flags, seq, pid = struct.unpack_from("<IHHII", msg, 0)
    s = f"len={length} type=0x{typ:04x} flags=0x{flags:04x} seq={seq} pid={pid}"
    if typ == NLMSG_ERROR:
        (err,) = struct.unpack_from("<i", msg, 16)
        name = "ACK" if err == 0 else f"error -{errno.errorcode.get(-err, str(-err))}"
        return f"NLMSG_ERROR {name}; {s}"
    if typ == NLMSG_DONE:
        return f"NLMSG_DONE; {s}"
    cmd, ver = msg[16], msg[17]
    if typ == GENL_ID_CTRL:
        return f"nlctrl {CTRL_CMDS.get(cmd, cmd)} v{ver}; {s}"
    if typ == ipvs_family:
        return f"IPVS {IPVS_CMDS.get(cmd, cmd)} v{ver}; {s}"
    return f"type {typ} cmd {cmd}; {s}"


def ipvs_family_of(exs):
    for req, reps in exs:
        if struct.unpack_from("<H", req, 4)[0] != GENL_ID_CTRL:
            continue
        for r in reps:
            if struct.unpack_from("<H", r, 4)[0] != GENL_ID_CTRL:
                continue
            off = 20
            while off + 4 <= len(r):
                alen, atype = struct.unpack_from("<HH", r, off)
                if alen < 4:
                    break
                if atype & 0x3FFF == 1:  # CTRL_ATTR_FAMILY_ID
                    return struct.unpack_from("<H", r, off + 4)[0]
                off += (alen + 3) & ~3
    return None


def select(exs, sel, ipvs_family):
    m = re.fullmatch(r"(ctrl|ipvs):(\d+)(?:#(\d+))?(?:!([A-Z]+))?", sel)
    if not m:
        raise SystemExit(f"bad selector {sel}")
    kind, cmd, nth, err = m.group(1), int(m.group(2)), int(m.group(3) or 1), m.group(4)
    family = GENL_ID_CTRL if kind == "ctrl" else ipvs_family
    found = [e for e in exs if struct.unpack_from("<H", e[0], 4)[0] == family and genl_cmd(e[0]) == cmd]
    if len(found) < nth:
        raise SystemExit(f"selector {sel}: {len(found)} such requests")
    return found[nth - 1], err


def check_reply(name, req, reps, err):
    if not reps:
        raise SystemExit(f"{name}: no reply")
    last = reps[-1]
    typ = struct.unpack_from("<H", last, 4)[0]
    dump = struct.unpack_from("<H", req, 6)[0] & 0x300 == 0x300  # NLM_F_DUMP
    if err:
        want = -getattr(errno, err)
        got = struct.unpack_from("<i", last, 16)[0] if typ == NLMSG_ERROR else None
        if got != want:
            raise SystemExit(f"{name}: wanted error {err}, got {got}")
    elif dump:
        if typ != NLMSG_DONE:
            raise SystemExit(f"{name}: dump reply does not end with NLMSG_DONE")
    elif typ == NLMSG_ERROR:
        if struct.unpack_from("<i", last, 16)[0] != 0:
            raise SystemExit(f"{name}: reply is an error, not an ACK")
    elif len(reps) != 1 or typ != struct.unpack_from("<H", req, 4)[0]:
        raise SystemExit(f"{name}: reply is neither an ACK nor one answer of the family")
    else:
        # A GET answered with one message: libnl stops reading there, so
        # the ACK the kernel queues after it is never received (not in the
        # trace).
        return "the kernel's ACK that follows was not read by ipvsadm (libnl stops after the answer)"
    return None


def write_hex(path, header, msgs, ipvs_family):
    with open(path, "w", encoding="ascii") as f:
        for h in header:
            f.write(f"# {h}\n")
        for i, msg in enumerate(msgs):
            f.write(f"# [{i}] {describe(msg, ipvs_family)}\n")
        for msg in msgs:
            f.write(msg.hex() + "\n")


README_HEAD = """\
# IPVS netlink byte vectors (captured from ipvsadm)

Generated by `tests/vectors/ipvs/capture.sh` (do not edit by hand: rerun it,
as root, to regenerate every `.hex` file and this README). The host kernel has
no IPVS, so the script boots the project's test VM (`images/run-vm.sh`:
Debian's kernel under qemu), runs each `ipvsadm` command there under

    strace -f -x -s 65535 -e trace=sendmsg,recvmsg,sendto,recvfrom -e read=all -e write=all

(`capture-vm.sh`), and `strace2hex.py` cuts the hex dumps of the netlink
traffic into vectors. Receives with `MSG_PEEK` (libnl peeks before it reads)
are dropped.

Captured with:

{versions}

## File format

- `NAME.request.hex`: the one netlink message ipvsadm sent (direction
  user -> kernel); `NAME.reply.hex`: every message the kernel sent back for
  it and ipvsadm read, in order (kernel -> user).
- `#` lines are comments: the command, versions, and one decoded summary per
  message (`[i] kind; len type flags seq pid`). Every other line is one whole
  netlink message (nlmsghdr included) as lowercase hex.
- **`nlmsg_seq` and `nlmsg_pid` (bytes 8..16 of each nlmsghdr) differ on every
  run**: compare with them masked (the pid is also repeated inside error
  messages, which embed the request's header).
- The IPVS generic netlink family id is assigned at runtime: it was `0x{family:04x}`
  here; it is the `nlmsg_type` of every IPVS message and `CTRL_ATTR_FAMILY_ID`
  in `ctrl_getfamily.reply.hex`. Substitute your own when comparing.

## What the bytes show

- ipvsadm (libipvs on libnl 3.7) opens a new socket for every request and
  resolves "IPVS" with `CTRL_CMD_GETFAMILY` (version 1) each time; the kernel
  answers `CTRL_CMD_NEWFAMILY` (version 2) and an ACK.
- IPVS requests use genl version 1 and flags `NLM_F_REQUEST|NLM_F_ACK`
  (0x0005); dumps add `NLM_F_DUMP` (0x0305). Dump replies carry `NLM_F_MULTI`
  (0x0002) and end with `NLMSG_DONE`.
- ACKs are `NLMSG_ERROR` with error 0 and flag `NLM_F_CAPPED` (0x0100): they
  embed only the request's 16-byte header (36 bytes in all). Errors
  (`del_service_missing`, `-ESRCH`) embed the whole request.
- For a non-dump GET (`get_info`, `get_config`, `get_service`) the reply file
  holds the answer only: libnl stops reading after it, so the ACK the kernel
  queues after it never shows in the trace.
- Nested attributes in requests carry `NLA_F_NESTED` (0x8000 in `nla_type`,
  e.g. `IPVS_CMD_ATTR_SERVICE` as 0x8001); the kernel's replies do not set it.
  Mask `NLA_TYPE_MASK` when parsing.
- Byte orders: nlmsghdr, genlmsghdr and nlattr headers and most u16/u32
  attributes are host order (little-endian here); ports (`IPVS_SVC_ATTR_PORT`,
  `IPVS_DEST_ATTR_PORT`, `IPVS_DEST_ATTR_TUN_PORT`) are big-endian;
  addresses are 16-byte `nf_inet_addr` (IPv4 in the first 4 bytes);
  `IPVS_SVC_ATTR_FLAGS` is `{{flags, mask}}` (8 bytes; ipvsadm sends mask
  0xffffffff).

## Files

Rows are in capture order: each command ran against the state the rows above
it left (see `capture-vm.sh`). Before `get_service_dump` / `get_dest_dump*`
the table was flushed and set up with exactly two services: TCP
10.0.0.100:80 rr with 10.0.0.11:80 (DR, weight 1) and 10.0.0.12:80 (DR,
weight 2); UDP 10.0.0.100:53 wlc with 10.1.0.11:5353 and 10.1.0.12:5353 (NAT,
weight 1). Dump replies list them in the kernel's hash order, which is
seeded per network namespace: two captures may list them in either order. No traffic
flowed, so every counter is 0. `new_daemon` ran on a dummy `eth0` with
10.9.0.1/24.

| vector (`.request.hex` / `.reply.hex`) | command | request | reply |
|---|---|---|---|
"""


def write_readme(path, rows, versions, family):
    with open(path, "w", encoding="utf-8") as f:
        f.write(README_HEAD.format(versions="\n".join(f"- {v}" for v in versions), family=family))
        for name, command, req, reps, note in rows:
            extra = " (ACK not read)" if note else ""
            f.write(f"| `{name}` | `{command}` | {req} | {reps}{extra} |\n")


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    cap, out = sys.argv[1], sys.argv[2]
    with open(os.path.join(cap, "versions.txt"), encoding="utf-8") as f:
        versions = [line.strip() for line in f if line.strip()]
    written = []
    rows = []
    with open(os.path.join(cap, "manifest.txt"), encoding="utf-8") as f:
        manifest = [line.rstrip("\n").split("|", 2) for line in f if line.strip()]
    for name, sels, command in manifest:
        exs = exchanges(parse_strace(os.path.join(cap, f"{name}.strace")))
        family = ipvs_family_of(exs)
        if family is None:
            raise SystemExit(f"{name}: no IPVS family id in the trace")
        for spec in sels.split():
            outname, sel = spec.split("=", 1)
            (req, reps), err = select(exs, sel, family)
            note = check_reply(outname, req, reps, err)
            common = [
                f"command: {command}",
                "captured in the test VM by tests/vectors/ipvs/capture.sh:",
            ] + [f"  {v}" for v in versions] + [
                f"IPVS generic netlink family id in this capture: 0x{family:04x} (dynamic: take it from",
                "  ctrl_getfamily.reply.hex); nlmsg_seq and nlmsg_pid vary per run: mask bytes 8..16",
                "  of every nlmsghdr when comparing",
                "one netlink message per hex line, nlmsghdr included (headers in host byte order)",
            ]
            write_hex(os.path.join(out, f"{outname}.request.hex"),
                      [f"{outname}: request (ipvsadm -> kernel)"] + common, [req], family)
            write_hex(os.path.join(out, f"{outname}.reply.hex"),
                      [f"{outname}: reply (kernel -> ipvsadm), {len(reps)} message(s)"]
                      + ([note] if note else []) + common,
                      reps, family)
            written.append(outname)
            kinds = ", ".join(describe(m, family).split(";")[0] for m in reps)
            rows.append((outname, command, describe(req, family).split(";")[0], kinds, note))
    write_readme(os.path.join(out, "README.md"), rows, versions, family)
    print(f"{len(written)} vector pairs: {' '.join(written)}")


if __name__ == "__main__":
    main()
