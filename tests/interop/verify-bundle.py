#!/usr/bin/env python3
"""Check a custody bundle without custody: python3 (3.7 or later: its dicts keep insertion order,
which the journal hash relies on), its standard library and the zstd CLI.

usage: verify-bundle.py BUNDLE.tar.zst [SIGNER.pub]

The recipe of docs/format.md §7, run by tests/interop.rs. It checks what custody's `verify`
checks of a bundle file (format v3 and v2, and v1 of §8) except the Ed25519 signature itself, which
the standard library cannot check (§7 step 5 does it with openssl), and the checks §7 lists as
custody-only. Findings are named by custody's finding kinds (docs/format.md). With SIGNER.pub
(a trusted SPKI PEM key) it also checks that the bundle names that key. Prints one line per
check; exits 0 when all pass, 1 on any finding (each printed as `FAIL <kind>: ...`), 2 on
usage errors and unreadable files.
"""
import base64
import hashlib
import json
import re
import subprocess
import sys

STATEMENT_TYPE = "application/vnd.custody.manifest-statement.v2+json"
V1_TYPE = "application/vnd.custody.manifest.v1+json"
HEX64 = re.compile(r"[0-9a-f]{64}")
ZERO = "0" * 64
# The journal event's fields in their hashed order (§4); `hash` is not hashed.
EVENT_FIELDS = ("seq", "at", "event", "path", "sha256", "size", "detail", "prev")
EVENT_KINDS = ("collected", "skipped", "error", "note")
ENTRY_FIELDS = {"path", "kind", "size", "sha256", "source", "collected_at"}
MANIFEST_FIELDS = {"format", "incident", "collector", "signer", "entries", "completeness", "journal",
                   "merkle_root", "ledger_prev", "sealed_at", "analysis_ref", "supplement_of", "analysis"}
findings = []


def fail(kind, msg):
    findings.append(kind)
    print("FAIL %s: %s" % (kind, msg))


def die(kind, msg):
    fail(kind, msg)
    print("FAILED: %s (the archive is not read further)" % kind)
    sys.exit(1)


def ok(check, msg, since=None):
    # With `since` (the number of findings when the check began), only if it found nothing.
    if since is None or len(findings) == since:
        print("ok   %s: %s" % (check, msg))


def u64(v):
    return type(v) is int and 0 <= v < 1 << 64  # (bool is an int in Python, not in JSON)


def sha256(b):
    return hashlib.sha256(b).hexdigest()


def strict_object(pairs):
    # json.loads keeps the last of two equal keys; custody refuses the document.
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("a duplicate field")
    return dict(pairs)


def strict_json(b):
    return json.loads(b.decode("utf-8"), object_pairs_hook=strict_object)


def check_frame(path):
    """§2 and format-reader-rules.md: one zstd frame, checksummed, no dictionary, window at
    most 2^27, nothing after it. (zstd -dc alone would decode a second frame silently.)"""
    with open(path, "rb") as f:
        file_size = f.seek(0, 2)
        f.seek(0)
        head = f.read(18)
        if len(head) < 6 or head[:4] != b"\x28\xb5\x2f\xfd":
            return fail("archive_corrupt", "does not start with a zstd frame (wrong magic, or a skippable frame)")
        fhd = head[4]
        if not fhd & 0x04 or fhd & 0x03 or fhd & 0x08:
            return fail("archive_corrupt", "zstd frame header: no content checksum, a dictionary or a reserved bit")
        single = fhd & 0x20
        fcs_len = (1 if single else 0, 2, 4, 8)[fhd >> 6]
        at = 5 if single else 6
        fcs = int.from_bytes(head[at:at + fcs_len], "little") + (256 if fcs_len == 2 else 0)
        if single:
            window = fcs
        else:
            exp, mantissa = head[5] >> 3, head[5] & 7
            window = (1 << (10 + exp)) + ((1 << (10 + exp)) >> 3) * mantissa
        if window > 1 << 27:
            return fail("archive_corrupt", "zstd window of %d bytes, above 2^27" % window)
        pos = at + fcs_len
        while True:  # walk the block headers to where the frame ends
            f.seek(pos)
            b = f.read(3)
            if len(b) < 3:
                return fail("archive_truncated", "the zstd frame is cut short")
            h = int.from_bytes(b, "little")
            btype = (h >> 1) & 3
            if btype == 3:
                return fail("archive_corrupt", "a reserved zstd block type")
            pos += 3 + (1 if btype == 1 else h >> 3)  # an RLE block stores one byte
            if h & 1:
                break
        end = pos + 4  # the content checksum
        if end > file_size:
            return fail("archive_truncated", "the zstd frame is cut short")
        if end < file_size:
            return fail("trailing_data", "%d bytes after the zstd frame" % (file_size - end))
    ok("frame", "one zstd frame, content checksum on, no dictionary, window %d bytes, nothing after" % window)


def numeric12(v):
    # ustar size/mtime: 11 octal digits and a NUL, or base-256 from 8 GiB on.
    return b"%011o\0" % v if v < 8 ** 11 else b"\x80\0\0\0" + v.to_bytes(8, "big")


def canonical_header(name, size, mtime):
    """The one header custody writes for a member (format-reader-rules.md's table)."""
    h = bytearray(512)
    h[0:len(name)] = name
    h[100:124] = b"0000444\0" + b"0000000\0" * 2
    h[124:148] = numeric12(size) + numeric12(mtime)
    h[148:156] = b" " * 8
    h[156:157] = b"0"
    h[257:265] = b"ustar\x0000"
    h[265:272] = h[297:304] = b"custody"
    h[148:156] = b"%07o\0" % sum(h)
    return bytes(h)


# Where each header field ends (format-reader-rules.md's table), to name the first that differs.
FIELDS = ((100, "name"), (108, "mode"), (116, "uid"), (124, "gid"), (136, "size"), (148, "mtime"),
          (156, "checksum"), (157, "type flag"), (257, "link name"), (263, "magic"), (265, "version"),
          (297, "uname"), (329, "gname"), (345, "devmajor/devminor"), (500, "prefix"), (512, "header padding"))


def numeric(f):
    """A 12-byte size or mtime field as custody writes it, else None."""
    if f[:4] == b"\x80\0\0\0":
        return int.from_bytes(f[4:], "big")
    return int(f[:11], 8) if re.fullmatch(rb"[0-7]{11}\0", f) else None


def read_archive(path):
    """Decompress with `zstd -dc` (which checks the content checksum) and read the ustar
    stream block by block: every header canonical, zero padding, two zero blocks, nothing
    after. Returns the member names in order, the blob digests, analysis/manifest/envelope
    bytes and the shared mtime."""
    zstd = subprocess.Popen(["zstd", "-dcq", "--", path], stdout=subprocess.PIPE)
    out = zstd.stdout

    def block(what):
        b = out.read(512)
        if len(b) != 512:
            die("archive_truncated", "the archive ends inside %s" % what)
        return b

    names, blobs, files, mtime = [], {}, {}, None
    while True:
        h = block("a header")
        if h == bytes(512):
            if block("the end marker") != bytes(512) or out.read(1):
                die("trailing_data", "the end marker is not two zero blocks ending the archive")
            break
        # A header whose checksum is wrong cannot be trusted for its size: stop.
        stored = re.fullmatch(rb" *([0-7]{1,7})[ \0]*", h[148:156])
        if not stored or int(stored.group(1), 8) != sum(h[:148]) + 8 * 32 + sum(h[156:]):
            die("archive_corrupt", "member %d: wrong header checksum" % len(names))
        name = h[:100].split(b"\0")[0]
        prefix = h[345:500].split(b"\0")[0]  # a ustar reader joins it to the name
        text = (prefix + b"/" + name if prefix else name).decode("utf-8", "replace")
        if h[156:157] != b"0":
            die("unsupported_member", "member %d (%s) is not a regular file (type %r)" % (len(names), text, h[156:157]))
        blob = re.fullmatch(r"blobs/sha256/([0-9a-f]{64})", text)
        if not blob and text not in ("analysis.json", "manifest.json", "manifest.dsse.json"):
            die("bad_member_name", "member %r is not one custody writes" % text)
        if text in names:
            die("duplicate_member", "%s appears twice" % text)
        size = numeric(h[124:136])
        if size is None:
            die("archive_corrupt", "member %d (%s): a negative or malformed size" % (len(names), text))
        mtime = numeric(h[136:148]) if mtime is None else mtime  # the first member's is everyone's
        if mtime is None:
            die("non_canonical", "member %d (%s): header field mtime is not what custody writes" % (len(names), text))
        want = canonical_header(name, size, mtime)
        if want != h:
            field = next(f for end, f in FIELDS if want[:end] != h[:end])
            die("non_canonical", "member %d (%s): header field %s is not what custody writes"
                % (len(names), text, field))
        names.append(text)
        # Blobs are hashed as they stream (a blob can be larger than memory); the rest is kept.
        digest, data, left = hashlib.sha256(), [], size
        while left:
            chunk = out.read(min(left, 1 << 20))
            if not chunk:
                die("archive_truncated", "the archive ends inside %s" % text)
            left -= len(chunk)
            digest.update(chunk)
            if not blob:
                data.append(chunk)
        if size % 512 and out.read(512 - size % 512) != bytes(512 - size % 512):
            die("non_canonical", "%s: its padding is not zeros up to the next 512 bytes" % text)
        if blob:
            blobs[blob.group(1)] = (digest.hexdigest(), size)
        else:
            files[text] = b"".join(data)
    if zstd.wait() != 0:
        die("archive_corrupt", "zstd -dc failed (a corrupt frame or a wrong content checksum)")
    # Blobs first, then analysis.json (if any), manifest.json and manifest.dsse.json, last.
    tail = [n for n in names if not n.startswith("blobs/")]
    if tail not in (["manifest.json", "manifest.dsse.json"], ["analysis.json", "manifest.json", "manifest.dsse.json"]) \
            or names[-len(tail):] != tail:
        kind = ("missing_manifest" if "manifest.json" not in tail else
                "missing_envelope" if "manifest.dsse.json" not in tail else "member_order")
        die(kind, "members are %s: custody writes blobs, [analysis.json], manifest.json, manifest.dsse.json"
            % ", ".join(tail))
    ok("archive", "%d members, every header canonical, zero padding, end marker, nothing after" % len(names))
    return names, blobs, files, mtime


def epoch_seconds(t):
    """Whole seconds since the epoch of an RFC 3339 time (floor), clamped at 0."""
    m = re.fullmatch(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?(Z|([+-])(\d\d):(\d\d))", t)
    y, mo, d, hh, mm, ss = (int(g) for g in m.groups()[:6])
    a = (14 - mo) // 12  # days from civil (proleptic Gregorian)
    yy, m2 = y + 4800 - a, mo + 12 * a - 3
    days = d + (153 * m2 + 2) // 5 + 365 * yy + yy // 4 - yy // 100 + yy // 400 - 32045 - 2440588
    s = days * 86400 + hh * 3600 + mm * 60 + ss
    if m.group(9):
        s -= (1 if m.group(9) == "+" else -1) * (int(m.group(10)) * 3600 + int(m.group(11)) * 60)
    return max(s, 0)


# Times as custody writes them (serde/chrono): UTC `Z`, fraction only when non-zero, in 3, 6
# or 9 digits. An event's hash covers `at` as custody re-serializes it, so the script hashes
# only times already in that form (another spelling of the same instant is refused here).
CANONICAL_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.(\d{3}|\d{6}|\d{9}))?Z")


def canonical_time(t):
    m = isinstance(t, str) and CANONICAL_TIME.fullmatch(t)
    frac = m and m.group(2)
    return bool(m) and (not frac or (int(frac) != 0 and (len(frac) == 3 or frac[-3:] != "000")))


def check_envelope(env_bytes, manifest_bytes, man):
    """§5 and §8: the envelope's exact layout, the statement, and what it binds."""
    env = strict_json(env_bytes)
    sigs = env.get("signatures")
    if not (isinstance(sigs, list) and len(sigs) == 1 and isinstance(sigs[0], dict)):
        return fail("envelope_invalid", "not exactly one signature")
    layout = json.dumps({"payloadType": env.get("payloadType"), "payload": env.get("payload"),
                         "signatures": [{"keyid": sigs[0].get("keyid"), "sig": sigs[0].get("sig")}]},
                        indent=2, ensure_ascii=False) + "\n"
    if layout.encode() != env_bytes:
        return fail("envelope_invalid", "manifest.dsse.json is not byte for byte custody's serialization")
    ptype, payload, keyid, sig = env["payloadType"], env["payload"], sigs[0]["keyid"], sigs[0]["sig"]
    try:
        raw, sig_raw = base64.b64decode(payload, validate=True), base64.b64decode(sig, validate=True)
    except ValueError:
        return fail("envelope_invalid", "the payload or signature is not base64")
    if base64.b64encode(raw).decode() != payload or base64.b64encode(sig_raw).decode() != sig \
            or len(sig_raw) != 64 or not HEX64.fullmatch(keyid):
        return fail("envelope_invalid", "non-canonical base64, a signature not of 64 bytes, or a bad keyid")
    if ptype == STATEMENT_TYPE:
        st = strict_json(raw)
        # v2 and v3 sign the same statement; its format is the manifest's.
        sfmt = st.get("format") if st.get("format") in ("custody-bundle/v2", "custody-bundle/v3") else "custody-bundle/v3"
        want = json.dumps({"format": sfmt, "manifest_sha256": st.get("manifest_sha256"),
                           "manifest_size": st.get("manifest_size")}, separators=(",", ":"))
        if want.encode() != raw or not HEX64.fullmatch(str(st["manifest_sha256"])) \
                or type(st["manifest_size"]) is not int:
            return fail("envelope_invalid", "the statement is not custody's compact statement of custody-bundle/v2 or v3")
        if (st["manifest_sha256"], st["manifest_size"]) != (sha256(manifest_bytes), len(manifest_bytes)):
            return fail("payload_mismatch", "the statement names another manifest.json (SHA-256 or size)")
        if man and man["format"] != sfmt:
            return fail("envelope_invalid", "a %s statement over a %s manifest" % (sfmt, man["format"]))
        ok("statement", "signs manifest.json's SHA-256 %s and size %d" % (st["manifest_sha256"], len(manifest_bytes)))
    elif ptype == V1_TYPE:
        if raw != manifest_bytes:
            return fail("payload_mismatch", "the v1 payload is not manifest.json byte for byte")
        if man and man["format"] != "custody-bundle/v1":
            return fail("envelope_invalid", "a v1 envelope over a %s manifest" % man["format"])
        ok("statement", "the v1 payload is manifest.json byte for byte")
    else:
        return fail("envelope_invalid", "payload type %r" % ptype)
    return keyid


def key_id(pem):
    # The key id is the SHA-256 of the SPKI DER, which is the PEM's base64 body.
    body = "".join(l for l in pem.strip().splitlines() if not l.startswith("-----"))
    return sha256(base64.b64decode(body, validate=True))


def check_manifest(man, files, names, mtime):
    fmt = man["format"]
    if not set(man) <= MANIFEST_FIELDS:
        fail("manifest_invalid", "unknown fields %s" % ", ".join(sorted(set(man) - MANIFEST_FIELDS)))
    incident = man.get("incident") if isinstance(man.get("incident"), dict) else {}
    if fmt not in ("custody-bundle/v1", "custody-bundle/v2", "custody-bundle/v3") \
            or (fmt[-2:] in ("v2", "v3") and "analysis" in man) \
            or (fmt.endswith("v1") and ("analysis_ref" in man or "supplement_of" in man)) \
            or (fmt.endswith("v3") != ("tool_notes" in incident)):
        fail("manifest_invalid", "format %r with the fields of another format" % fmt)
    started = man["collector"]["started_at"]
    if epoch_seconds(started) != mtime:
        fail("non_canonical", "tar members carry mtime %d, custody writes collector.started_at (%s)" % (mtime, started))
    ref = man.get("analysis_ref")
    if ref is not None:
        if ref["member"] != "analysis.json":
            fail("manifest_invalid", "analysis_ref.member is %r" % ref["member"])
        elif "analysis.json" not in files:
            fail("analysis_mismatch", "the manifest names analysis.json; the archive has none")
        elif (ref["sha256"], ref["size"]) != (sha256(files["analysis.json"]), len(files["analysis.json"])):
            fail("analysis_mismatch", "analysis.json's SHA-256 or size is not the manifest's analysis_ref")
        else:
            ok("analysis", "analysis.json matches analysis_ref (%d bytes)" % ref["size"])
    elif "analysis.json" in files:
        fail("analysis_mismatch", "analysis.json is a member the manifest does not name")


def check_entries(entries, names, blobs):
    """§3: entries sorted by path bytes and unique, each blob present with its size, no blob
    unnamed, blobs in manifest order, every blob's content hashing to its name."""
    since = len(findings)
    for name, (actual, _) in blobs.items():
        if actual != name:
            fail("blob_hash_mismatch", "blobs/sha256/%s hashes to %s" % (name, actual))
    paths = [e["path"].encode("utf-8") for e in entries]
    for a, b in zip(paths, paths[1:]):
        if a == b:
            fail("entry_duplicate", "%s is listed twice" % b.decode())
        elif a > b:
            fail("entries_unsorted", "%s comes after %s" % (b.decode(), a.decode()))
    for e in entries:
        p = e["path"]
        if set(e) != ENTRY_FIELDS or not (isinstance(p, str) and isinstance(e["kind"], str) and u64(e["size"])
                                           and HEX64.fullmatch(str(e["sha256"]))):
            fail("manifest_invalid", "entry %r: not custody's fields and types" % p)
        elif p.startswith("/") or "\\" in p or "\0" in p or len(p.encode()) > 4096 \
                or any(c in ("", ".", "..") for c in p.split("/")):
            fail("manifest_invalid", "entry path %r is not a relative /-separated path" % p)
        if e["sha256"] not in blobs:
            fail("blob_missing", "%s: its blob %s is not in the archive" % (p, e["sha256"]))
        elif blobs[e["sha256"]][1] != e["size"]:
            fail("blob_size_mismatch", "%s: the manifest says %d bytes, the blob has %d"
                 % (p, e["size"], blobs[e["sha256"]][1]))
    named = list(dict.fromkeys(e["sha256"] for e in entries))
    for b in blobs:
        if b not in named:
            fail("blob_extra", "blobs/sha256/%s is named by no entry" % b)
    in_archive = [n[len("blobs/sha256/"):] for n in names if n.startswith("blobs/")]
    if [b for b in in_archive if b in named] != [b for b in named if b in blobs]:
        fail("blob_order", "blob members are not in manifest order")
    ok("entries", "%d entries, %d blobs: sorted, unique, sizes and digests as named"
       % (len(entries), len(blobs)), since)


def check_journal(entries, journal):
    """§4: seq, prev and hash of every event; one matching `collected` event per entry."""
    since = len(findings)
    prev = ZERO
    for i, ev in enumerate(journal):
        typed = (u64(ev["seq"]) and ev["event"] in EVENT_KINDS and canonical_time(ev["at"])
                 and all(ev.get(k) is None or isinstance(ev[k], str) for k in ("path", "detail"))
                 and all(ev.get(k) is None or HEX64.fullmatch(str(ev[k])) for k in ("sha256", "prev", "hash"))
                 and (ev.get("size") is None or u64(ev["size"])))
        if not (set(ev) <= set(EVENT_FIELDS + ("hash",)) and typed and "prev" in ev and "hash" in ev):
            fail("manifest_invalid", "journal event %d: not custody's fields, types or time form" % i)
            return
        if ev["seq"] != i:
            fail("journal_broken", "event %d: seq is %s" % (i, ev["seq"]))
        if ev["prev"] != prev:
            fail("journal_broken", "event %d: prev does not equal the previous event's hash" % i)
        # The hashed body: the fields in their documented order, absent (or null) ones omitted.
        body = {k: ev[k] for k in EVENT_FIELDS if ev.get(k) is not None}
        text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
        if sha256(text.encode("utf-8")) != ev["hash"]:
            fail("journal_broken", "event %d: hash does not match the event's content" % i)
        prev = ev["hash"]  # each event is checked against its predecessor's *recorded* hash
    collected = {}
    for ev in journal:
        if ev["event"] == "collected" and ev.get("path") is not None:
            collected.setdefault(ev["path"], []).append((ev.get("sha256"), ev.get("size")))
    for e in entries:
        got = collected.get(e["path"], [])
        if len(got) > 1:
            fail("journal_mismatch", "%s: %d `collected` events; exactly one is allowed" % (e["path"], len(got)))
        elif got != [(e["sha256"], e["size"])]:
            fail("journal_mismatch", "%s: no matching `collected` event in the journal" % e["path"])
    total = sum(len(v) for v in collected.values())
    if total != len(entries):
        fail("journal_mismatch", "%d `collected` events for %d entries" % (total, len(entries)))
    ok("journal", "%d events: seq, prev and hash checked; one `collected` event per entry" % len(journal), since)


def merkle_root(entries):
    """§4: RFC 6962 tree hash over the entries in manifest order."""
    leaves = [hashlib.sha256(b"\0" + b"\0".join([e["path"].encode("utf-8"), e["kind"].encode("utf-8"),
                                                  b"%d" % e["size"], e["sha256"].encode()])).digest()
              for e in entries]

    def mth(lo, hi):
        n = hi - lo
        if n == 0:
            return hashlib.sha256(b"").digest()
        if n == 1:
            return leaves[lo]
        k = 1 << ((n - 1).bit_length() - 1)  # the largest power of two below n
        return hashlib.sha256(b"\1" + mth(lo, lo + k) + mth(lo + k, hi)).digest()

    return mth(0, len(leaves)).hex()


def main():
    if len(sys.argv) not in (2, 3):
        print(next(l for l in __doc__.splitlines() if l.startswith("usage:")), file=sys.stderr)
        sys.exit(2)
    check_frame(sys.argv[1])
    names, blobs, files, mtime = read_archive(sys.argv[1])
    try:
        man = strict_json(files["manifest.json"])
        if not isinstance(man, dict) or man.get("format") not in ("custody-bundle/v1", "custody-bundle/v2", "custody-bundle/v3"):
            raise ValueError("format is not custody-bundle/v1, v2 or v3")
    except (ValueError, RecursionError) as e:
        man = fail("manifest_invalid", "manifest.json: %s" % e)
    try:
        # A malformed envelope or statement, whatever the error, is envelope_invalid.
        keyid = check_envelope(files["manifest.dsse.json"], files["manifest.json"], man)
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as e:
        keyid = fail("envelope_invalid", "manifest.dsse.json: %s: %s" % (type(e).__name__, e))
    if man is None:
        die("manifest_invalid", "nothing more can be checked without a manifest")
    try:
        check_manifest(man, files, names, mtime)
        signer = man["signer"]
        if keyid and (keyid != signer["keyid"] or key_id(signer["public_key"]) != keyid):
            fail("signer_mismatch", "the envelope's keyid, signer.keyid and signer.public_key disagree")
        elif keyid:
            ok("signer", "keyid %s is signer.keyid and signer.public_key's" % keyid)
        if keyid and len(sys.argv) == 3:
            with open(sys.argv[2]) as f:
                if key_id(f.read()) != keyid:
                    fail("untrusted_signer", "signed by %s, not by the key given" % keyid)
                else:
                    ok("signer_trusted", "the key given is the signer (%s)" % keyid)
        check_entries(man["entries"], names, blobs)
        check_journal(man["entries"], man["journal"])
        root = merkle_root(man["entries"])
        if root != man["merkle_root"]:
            fail("merkle_mismatch", "recomputed root %s differs from the manifest's %s" % (root, man["merkle_root"]))
        else:
            ok("merkle", "root %s over %d entries" % (root, len(man["entries"])))
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        # A manifest not of custody's shape (a missing field, a wrong type).
        fail("manifest_invalid", "not of custody's shape (%s: %s)" % (type(e).__name__, e))
    if findings:
        print("FAILED: %d finding(s): %s" % (len(findings), ", ".join(sorted(set(findings)))))
        sys.exit(1)
    print("OK: all checks passed; the Ed25519 signature is openssl's step (docs/format.md §7)")


try:
    main()
except OSError as e:  # no such bundle or key file, or no zstd on PATH
    print("verify-bundle.py: %s" % e, file=sys.stderr)
    sys.exit(2)
