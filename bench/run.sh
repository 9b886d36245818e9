#!/usr/bin/env bash
# custody benchmark: custody against the shell pipelines a responder would use instead.
#
# Generates the corpora (with bench/make-incident-corpus.py), then runs custody and
# the baseline alternately RUNS times per target and prints, per target: median wall time,
# throughput, peak RSS, and the ratio custody/baseline next to the goal.
#
#   preserve   1 GiB corpus   custody preserve --trace-id T (analysis on)  vs  tar -cf - DIR | zstd -3 -T0 -o X.tar.zst
#   no-anlyz   the same, custody preserve --no-analyze                    vs  the same baseline
#   seedless   the same, custody preserve with no identifier given        vs  the same baseline
#   verify     1 GiB corpus   custody verify BUNDLE      vs  zstd -dc X.tar.zst | openssl dgst -sha256
#   small      100k files     custody preserve           vs  tar | zstd -3 -T0   (1-4 KiB files)
#   small-na   the same, custody preserve --no-analyze
#   verify-sm  100k files     custody verify BUNDLE      vs  zstd -dc X.tar.zst | openssl dgst -sha256
#   store      both bundles   custody verify --store S --all (every bundle re-hashed)
#                             vs  the same zstd -dc | openssl dgst -sha256 over each bundle file in S
#   ledger     10k entries    custody verify --store --all --quick   (goal: < 5 s), and without --quick
#   big        4 GiB corpus   peak RSS of preserve and verify (with --big; goal: <= 128 MiB)
#
# With --s3, only the object-storage rows, against a local moto_server restarted before every
# timed command (so no run pays for an earlier run's objects in moto's memory):
#   s3-pres    1 GiB corpus   custody preserve --store s3://… --no-analyze --retention 1
#                             vs  tar -cf - DIR | zstd -3 -T0 | boto3 upload_fileobj (from stdin)
#   s3-verify  the same       custody verify --store s3://… DIGEST
#                             vs  boto3 download_fileobj (to stdout) | zstd -dc | openssl dgst -sha256
# --s3-verify runs only the s3-verify row. With CUSTODY_BENCH_OTHER_BIN=/path/to/custody, the
# s3-verify row also times that build, alternating with the other two (row s3-vfy-o), to
# compare two builds in the same run.
#
# usage: bench/run.sh [--runs N] [--mib N] [--big] [--s3] [--s3-verify] [--work DIR] [--keep]
# Corpora and stores live in --work (default ${TMPDIR:-/tmp}/custody-bench), never in the repo;
# they are reused between invocations (delete the directory to regenerate). Timings are
# machine- and load-dependent: record `nproc`, the CPU and `uptime` with the numbers.
set -euo pipefail

RUNS=3
MIB=1024
BIG=0
S3=0
S3_PRESERVE=1
WORK="${TMPDIR:-/tmp}/custody-bench"
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS="$2"; shift 2 ;;
    --mib) MIB="$2"; shift 2 ;;
    --big) BIG=1; shift ;;
    --s3) S3=1; shift ;;
    --s3-verify) S3=1; S3_PRESERVE=0; shift ;;
    --work) WORK="$2"; shift 2 ;;
    *) echo "usage: bench/run.sh [--runs N] [--mib N] [--big] [--s3] [--s3-verify] [--work DIR]" >&2; exit 2 ;;
  esac
done

REPO="$(cd "$(dirname "$0")/.." && pwd)"
GEN="${CUSTODY_CORPUS_GEN:-$REPO/bench/make-incident-corpus.py}"
[ -f "$GEN" ] || { echo "bench: corpus generator not found at $GEN (set CUSTODY_CORPUS_GEN)" >&2; exit 2; }
for tool in tar zstd openssl python3 /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is required" >&2; exit 2; }
done

TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
(cd "$REPO" && cargo build --release --locked -q && cargo build --release --locked -q --example bench-ledger)
BIN="${CUSTODY_BENCH_BIN:-$TARGET_DIR/release/custody}"  # override to compare builds
LEDGER_GEN="$TARGET_DIR/release/examples/bench-ledger"
Q=--quiet  # older builds (CUSTODY_BENCH_BIN) may predate --quiet
"$BIN" preserve --help | grep -q -- --quiet || Q=

mkdir -p "$WORK"
export CUSTODY_HOME="$WORK/home"
unset CUSTODY_STORE CUSTODY_KEY SOURCE_DATE_EPOCH

corpus() { # DIR MIB [extra args]
  local dir="$1" mib="$2"; shift 2
  if [ ! -f "$dir/incident.json" ]; then
    echo "bench: generating $dir ($mib MiB)" >&2
    rm -rf "$dir"
    python3 "$GEN" "$dir" --mib "$mib" "$@" >/dev/null
  fi
}

# run LABEL CMD...: one timed run; appends "wall rss_kib user sys" to $WORK/LABEL.times
run() {
  local label="$1"; shift
  /usr/bin/time -f "%e %M %U %S" -o "$WORK/.t" "$@" >/dev/null 2>"$WORK/.err" || {
    echo "bench: $label failed:" >&2; cat "$WORK/.err" >&2; exit 1; }
  cat "$WORK/.t" >> "$WORK/$label.times"
}

median() { # LABEL column(1=wall,2=rss,5=cpu)
  awk -v c="$2" '{$5 = $3 + $4; print $c}' "$WORK/$1.times" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'
}
maxcol() { awk -v c="$2" 'BEGIN{m=0} {if ($c>m) m=$c} END {print m}' "$WORK/$1.times"; }

warm() { find "$1" -type f -print0 | xargs -0 cat >/dev/null; }

ROWS=()
row() { # name custody_label baseline_label input_bytes goal_ratio
  local name="$1" c="$2" b="$3" bytes="$4" goal="$5"
  local cw bw cr br cc bc
  cw=$(median "$c" 1); cr=$(maxcol "$c" 2); cc=$(median "$c" 5)
  bw=$(median "$b" 1); br=$(maxcol "$b" 2); bc=$(median "$b" 5)
  ROWS+=("$(awk -v n="$name" -v cw="$cw" -v bw="$bw" -v cr="$cr" -v br="$br" -v cc="$cc" -v bc="$bc" -v by="$bytes" -v g="$goal" 'BEGIN {
    r = cw / bw;
    printf "%-9s %7.2f s %7.1f MiB/s %6.1f MiB %6.2f s | %7.2f s %7.1f MiB/s %6.1f MiB %6.2f s | %5.2fx  goal <= %.2fx %s",
      n, cw, by/1048576/cw, cr/1024, cc, bw, by/1048576/bw, br/1024, bc, r, g, (r <= g ? "met" : "MISSED") }')")
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -h | awk '/Mem:/ {print $2}') RAM"
echo "tools:   $(zstd --version | head -1 | sed 's/\*//g'); $(tar --version | head -1); $(openssl version)"
echo "load:    $(uptime | sed 's/.*load average/load average/')  (before)"
echo "runs:    $RUNS per target, alternating custody / baseline"
echo

# --- S3 (moto): preserve straight into object storage, and verify from it ------------------
if [ "$S3" = 1 ]; then
  command -v moto_server >/dev/null || { echo "bench: --s3 needs moto_server (pip install 'moto[server]')" >&2; exit 2; }
  python3 -c 'import boto3' || { echo "bench: --s3 needs boto3 (pip install boto3)" >&2; exit 2; }
  C1="$WORK/corpus-${MIB}m"
  corpus "$C1" "$MIB"
  warm "$C1"
  IN1=$(du -sbL "$C1" | cut -f1)
  rm -f "$WORK"/*.times
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
  export AWS_ENDPOINT="http://127.0.0.1:$PORT" AWS_ENDPOINT_URL="http://127.0.0.1:$PORT" AWS_ALLOW_HTTP=true
  MOTO=
  moto_restart() { # a fresh, empty moto with an Object Lock bucket `bench`
    [ -n "$MOTO" ] && { kill "$MOTO" 2>/dev/null || true; wait "$MOTO" 2>/dev/null || true; }
    moto_server -H 127.0.0.1 -p "$PORT" >"$WORK/moto.log" 2>&1 &
    MOTO=$!
    python3 - <<'PY'
import time, boto3
s3 = boto3.client("s3")
for _ in range(100):
    try:
        s3.create_bucket(Bucket="bench", ObjectLockEnabledForBucket=True)
        break
    except Exception:
        time.sleep(0.1)
PY
  }
  trap '[ -n "$MOTO" ] && kill "$MOTO" 2>/dev/null' EXIT
  UPLOAD='import sys, boto3; boto3.client("s3").upload_fileobj(sys.stdin.buffer, "bench", "base.tar.zst")'
  DOWNLOAD='import sys, boto3; boto3.client("s3").download_fileobj("bench", "base.tar.zst", sys.stdout.buffer)'
  for i in $(seq "$RUNS"); do
    [ "$S3_PRESERVE" = 1 ] || break
    moto_restart
    run s3preserve "$BIN" preserve $Q --store s3://bench/ev --incident-dir "$C1" --no-analyze --retention 1
    moto_restart
    run s3pipe bash -c "tar -cf - -C '$C1' . | zstd -3 -T0 -q | python3 -c '$UPLOAD'"
  done
  # verify: one store holding the custody bundle and the pipeline's object.
  moto_restart
  "$BIN" preserve $Q --store s3://bench/ev --incident-dir "$C1" --no-analyze --retention 1 >/dev/null 2>&1
  tar -cf - -C "$C1" . | zstd -3 -T0 -q | python3 -c "$UPLOAD"
  DIGEST=$(python3 -c 'import boto3; print([o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket="bench", Prefix="ev/bundles/")["Contents"]][0].split("/")[-1].split(".")[0])')
  PUB="$CUSTODY_HOME/keys/default.key.pub"
  OTHER="${CUSTODY_BENCH_OTHER_BIN:-}"
  for i in $(seq "$RUNS"); do
    run s3verify "$BIN" verify $Q --store s3://bench/ev "sha256:$DIGEST" --trusted-key "$PUB"
    [ -z "$OTHER" ] || run s3verifyo "$OTHER" verify $Q --store s3://bench/ev "sha256:$DIGEST" --trusted-key "$PUB"
    run s3unzstdsha bash -c "python3 -c '$DOWNLOAD' | zstd -dc | openssl dgst -sha256"
  done
  [ "$S3_PRESERVE" = 0 ] || row s3-pres s3preserve s3pipe "$IN1" 1.2
  row s3-verify s3verify s3unzstdsha "$IN1" 1.0
  [ -z "$OTHER" ] || row s3-vfy-o s3verifyo s3unzstdsha "$IN1" 1.0
  echo "target    | custody: median wall, throughput, peak RSS, median CPU | baseline: the same              | wall ratio"
  for r in "${ROWS[@]}"; do echo "$r"; done
  echo "(s3-pres goal: <= 1.2x where the server does not verify checksums and custody reads the upload back, as on moto; <= 1.0x on a verifying server)"
  echo "load:    $(uptime | sed 's/.*load average/load average/')  (after)"
  exit 0
fi

# --- 1 GiB corpus: preserve and verify ------------------------------------------------------
C1="$WORK/corpus-${MIB}m"
corpus "$C1" "$MIB"
warm "$C1"
IN1=$(du -sb "$C1" | cut -f1)
rm -f "$WORK"/*.times
# A responder starts from the incident's trace id (the corpus generator's answer key has it);
# the analysis then follows it to the other identifiers while the evidence is sealed.
TRACE=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["trace_id"])' "$C1/incident.json")
for i in $(seq "$RUNS"); do
  rm -rf "$WORK/store-p"
  run preserve "$BIN" preserve $Q --store "$WORK/store-p" --incident-dir "$C1" --trace-id "$TRACE"
  run tarzstd bash -c "tar -cf - -C '$C1' . | zstd -3 -T0 -q -f -o '$WORK/base.tar.zst'"
  rm -rf "$WORK/store-n"
  run noanalyze "$BIN" preserve $Q --store "$WORK/store-n" --incident-dir "$C1" --no-analyze
  rm -rf "$WORK/store-n"
  run seedless "$BIN" preserve $Q --store "$WORK/store-n" --incident-dir "$C1"
done
BUNDLE=$(ls "$WORK"/store-p/bundles/*.tar.zst)
PUB="$CUSTODY_HOME/keys/default.key.pub"
for i in $(seq "$RUNS"); do
  run verify "$BIN" verify $Q "$BUNDLE" --trusted-key "$PUB"
  run unzstdsha bash -c "zstd -dc '$WORK/base.tar.zst' | openssl dgst -sha256"
done
row preserve preserve tarzstd "$IN1" 1.0
row verify verify unzstdsha "$IN1" 0.8
row no-anlyz noanalyze tarzstd "$IN1" 1.0
row seedless seedless tarzstd "$IN1" 1.0
CS=$(stat -c %s "$BUNDLE"); BS=$(stat -c %s "$WORK/base.tar.zst")

# --- 100k small files ---------------------------------------------------------------------
SRC="$WORK/corpus-small-src"
SMALL="$WORK/corpus-small-100k"
if [ ! -d "$SMALL/memory" ]; then
  corpus "$SRC" 400 --memory-files 0
  python3 "$REPO/bench/make-small-files.py" "$SRC" "$SMALL" --files 100000 >/dev/null
fi
warm "$SMALL"
INS=$(du -sb --apparent-size "$SMALL" | cut -f1)
for i in $(seq "$RUNS"); do
  rm -rf "$WORK/store-s"
  run small "$BIN" preserve $Q --store "$WORK/store-s" --incident-dir "$SMALL"
  run smalltar bash -c "tar -cf - -C '$SMALL' . | zstd -3 -T0 -q -f -o '$WORK/small.tar.zst'"
  rm -rf "$WORK/store-s"
  run smallna "$BIN" preserve $Q --store "$WORK/store-s" --incident-dir "$SMALL" --no-analyze
done
row small small smalltar "$INS" 1.5
row small-na smallna smalltar "$INS" 1.5

# --- verify of the 100k-file bundle, and verify --store --all over both corpora's bundles -----
# A store as a team would have it: the 1 GiB incident and the 100k-file one, sealed with the
# analysis on. verify --all re-hashes every bundle (and checks the ledger); the baseline checks
# one hash per file.
SV="$WORK/store-v"
rm -rf "$SV"
"$BIN" preserve $Q --store "$SV" --incident-dir "$C1" --trace-id "$TRACE" >/dev/null
"$BIN" preserve $Q --store "$SV" --incident-dir "$SMALL" >/dev/null
SMALLBUNDLE=$(ls -S "$SV"/bundles/*.tar.zst | tail -1)
for i in $(seq "$RUNS"); do
  run verifysm "$BIN" verify $Q "$SMALLBUNDLE" --trusted-key "$PUB"
  run unzstdshasm bash -c "zstd -dc '$WORK/small.tar.zst' | openssl dgst -sha256"
  run store "$BIN" verify $Q --store "$SV" --all --trusted-key "$PUB"
  run unzstdshastore bash -c "for b in '$SV'/bundles/*.tar.zst; do zstd -dc \"\$b\" | openssl dgst -sha256; done"
done
row verify-sm verifysm unzstdshasm "$INS" 0.8
row store store unzstdshastore "$((IN1 + INS))" 0.8

# --- 10k ledger entries ---------------------------------------------------------------------
LS="$WORK/store-ledger-10k"
if [ ! -f "$LS/ledger/00000000000000010000.json" ]; then
  rm -rf "$LS" "$WORK"/store-ledger-10k-bench-ledger.key*
  echo "bench: generating 10k ledger entries" >&2
  "$LEDGER_GEN" "$LS" 10000 >/dev/null
fi
LPUB="$WORK/store-ledger-10k-bench-ledger.key.pub"
for i in $(seq "$RUNS"); do
  run ledger "$BIN" verify $Q --store "$LS" --all --quick --trusted-key "$LPUB"
  run ledgerfull "$BIN" verify $Q --store "$LS" --all --trusted-key "$LPUB"
done
LW=$(median ledger 1)
LF=$(median ledgerfull 1)
LB=$(du -sb "$LS/bundles" | cut -f1)

# --- 4 GiB corpus: peak RSS -----------------------------------------------------------------
if [ "$BIG" = 1 ]; then
  C4="$WORK/corpus-4096m"
  corpus "$C4" 4096
  rm -rf "$WORK/store-big"
  T4=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["trace_id"])' "$C4/incident.json")
  run bigpreserve "$BIN" preserve $Q --store "$WORK/store-big" --incident-dir "$C4" --trace-id "$T4"
  rm -rf "$WORK/store-big-na"
  run bigpreservena "$BIN" preserve $Q --store "$WORK/store-big-na" --incident-dir "$C4" --no-analyze
  rm -rf "$WORK/store-big-na"
  run bigverify "$BIN" verify $Q "$(ls "$WORK"/store-big/bundles/*.tar.zst)" --trusted-key "$PUB"
fi

echo "target    | custody: median wall, throughput, peak RSS, median CPU | baseline: the same              | wall ratio"
for r in "${ROWS[@]}"; do echo "$r"; done
awk -v c="$CS" -v b="$BS" 'BEGIN { printf "size      custody bundle %d bytes, tar|zstd %d bytes: %+.2f%% (goal: within 3%%) %s\n", c, b, (c/b-1)*100, ((c/b-1)*100 <= 3 ? "met" : "MISSED") }'
awk -v w="$LW" 'BEGIN { printf "ledger    verify --store --all --quick over 10000 entries: %.2f s (goal: < 5 s) %s\n", w, (w < 5 ? "met" : "MISSED") }'
awk -v w="$LF" -v b="$LB" 'BEGIN { printf "ledger    verify --store --all over the same 10000 entries, every bundle re-hashed: %.2f s (%.1f MiB of bundles, %.0f bundles/s)\n", w, b/1048576, 10000/w }'
awk -v p="$(maxcol preserve 2)" -v v="$(maxcol verify 2)" 'BEGIN { printf "rss 1GiB  preserve (analysis on) %.1f MiB, verify %.1f MiB (goal: <= 128 MiB) %s\n", p/1024, v/1024, (p <= 131072 && v <= 131072 ? "met" : "MISSED") }'
if [ "$BIG" = 1 ]; then
  awk -v p="$(maxcol bigpreserve 2)" -v v="$(maxcol bigverify 2)" -v w="$(median bigpreserve 1)" -v x="$(median bigverify 1)" 'BEGIN { printf "rss 4GiB  preserve (analysis on) %.1f MiB (%.1f s), verify %.1f MiB (%.1f s) (goal: <= 128 MiB) %s\n", p/1024, w, v/1024, x, (p <= 131072 && v <= 131072 ? "met" : "MISSED") }'
  awk -v p="$(maxcol bigpreservena 2)" -v w="$(median bigpreservena 1)" 'BEGIN { printf "rss 4GiB  preserve --no-analyze %.1f MiB (%.1f s) (goal: <= 128 MiB) %s\n", p/1024, w, (p <= 131072 ? "met" : "MISSED") }'
fi
echo "load:    $(uptime | sed 's/.*load average/load average/')  (after)"
