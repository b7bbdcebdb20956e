#!/usr/bin/env bash
# Runs the vitest suite with the addon built by `npm run build:asan` (AddressSanitizer + UndefinedBehaviorSanitizer,
# build-asan/Release/macvtap.node) in a Node that has the sanitizer runtimes loaded first.
#
#   test/sanitizer/run.sh [vitest args…]     (npm run test:asan -- [vitest args…] builds first, then calls this)
#
# With no test file among the arguments it runs every test file except the exclusions below; name files (or
# directories under test/) to run only those. vitest options that take a value are given as --opt=value.
#
# How the runtime gets in first. ASan must own malloc from a process's first allocation and refuses to start
# otherwise ("ASan runtime does not come first in initial library list"). LD_PRELOAD would do it, but the environment
# is inherited by every program the tests run — `ip`, `ls`, `setpriv`, QEMU — and LeakSanitizer then fails them at
# exit for their own leaks (measured: `ip -n NS link set lo up` reports a leak and exits 23). So instead this script
# makes a sanitized copy of the node binary, build-asan/node/node, whose first DT_NEEDED entries are libasan and
# libubsan (patchelf --add-needed): exactly the effect of LD_PRELOAD, for node only. Every node process of the run
# is that binary: vitest is started with it, its fork workers and the node children and CLI runs the tests spawn use
# process.execPath, and build-asan/node is first on PATH for `#!/usr/bin/env node` scripts. Worker threads live in
# their process. Other programs run untouched.
#
# Which addons: MACVTAP_ADDON (read by lib/binding.ts) makes every one of those processes load exactly
# build-asan/Release/macvtap.node, and MACVTAP_BENCH_ADDON (bench/native.ts) the harness's
# bench/build-asan/Release/macvtap_bench.node; a process without the runtime that tried would fail loudly, never fall back.
#
# Findings halt: ASan and UBSan abort the process on the first error (the addon is built with -fno-sanitize-recover),
# LeakSanitizer reports at exit with exit code 23, with test/sanitizer/lsan.supp suppressing only Node's and V8's own
# allocations. Reports are written to files (log_path) in a private directory, so a report from a child whose stderr
# a test captured cannot vanish; a process that dies fails its test, and any report file fails the run at the end.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

die() { echo "test/sanitizer/run.sh: $*" >&2; exit 1; }
addon="$root/build-asan/Release/macvtap.node"
bench_addon="$root/bench/build-asan/Release/macvtap_bench.node"
[ -f "$addon" ] || die "$addon is missing: run npm run build:asan"
[ -f "$bench_addon" ] || die "$bench_addon is missing: run npm run build:asan"
[ -f "$root/dist/lib/index.js" ] || die "dist/ is missing: run npm run build:ts"
case "$(ldd "$addon")" in *libasan.so*) ;; *) die "$addon is not an ASan build" ;; esac
command -v patchelf >/dev/null || die "needs patchelf (apt-get install patchelf)"

# The runtimes the addon was linked against (gcc's: the build uses g++), by soname.
soname() { objdump -p "$(readlink -f "$(g++ -print-file-name="$1")")" | awk '$1 == "SONAME" { print $2 }'; }
asan_so=$(soname libasan.so)
ubsan_so=$(soname libubsan.so)
[ -n "$asan_so" ] && [ -n "$ubsan_so" ] || die "gcc's libasan/libubsan not found"

# The sanitized node: remade when the system node changes. add-needed prepends, so asan ends up first.
real_node=$(readlink -f "$(command -v node)")
sannode="$root/build-asan/node/node"
if [ ! -x "$sannode" ] || [ "$real_node" -nt "$sannode" ]; then
  mkdir -p "$root/build-asan/node"
  cp "$real_node" "$sannode.tmp"
  patchelf --add-needed "$ubsan_so" "$sannode.tmp"
  patchelf --add-needed "$asan_so" "$sannode.tmp"
  mv "$sannode.tmp" "$sannode"
fi
first=$(readelf -d "$sannode" | awk '/NEEDED/ { gsub(/[][]/, "", $NF); print $NF; exit }')
[ "$first" = "$asan_so" ] || die "$sannode does not load $asan_so first (it loads $first)"

# Test files that do not run here, each with why. Everything else matching test/*.test.ts runs.
excluded=(
  # Packs the npm tarball, installs it into an empty directory and loads the *prebuilt* addon from there: what it
  # tests is the package, and with MACVTAP_ADDON set it would load build-asan instead, testing nothing of its own.
  test/package.test.ts
  # Asserts that the benchmark endpoints' ping-pong latency agrees with sockperf's within 25%: a timing comparison,
  # and the endpoints are the addon's own native loops, slowed by ASan's instrumentation (it failed here by that
  # margin, with no sanitizer report). The endpoints still run under ASan in bench-datapath and datapath tests.
  test/sockperf.test.ts
  # The same kind of timing comparison (the harness's endpoints vs a minimal C pair of ours, within 1.10×), on
  # instrumented endpoints; the endpoints run under ASan in bench-datapath.
  test/harness-accuracy.test.ts
  # CI's time budget: runs whose native work other files already run under ASan. The HTML report is TypeScript drawn
  # in Chromium over a datapath run of the endpoints bench-datapath runs; the guest benchmark is QEMU TCG over tap
  # queues and endpoints that tap, datapath and bench-datapath run.
  test/bench-html.test.ts
  test/e2e-bench-guest.test.ts
)

logdir=$(mktemp -d /tmp/mvt-san-XXXXXX)
trap 'rm -rf "$logdir"' EXIT

export MACVTAP_ADDON="$addon"
export MACVTAP_BENCH_ADDON="$bench_addon"
export PATH="$root/build-asan/node:$PATH"
# The port-security load test replaces the ruleset 1,000 times on the plain build; here the point is memory errors in
# the addon on that path, which 200 replaces exercise as well (1,000 took 84 s under ASan).
export MVT_PORTSEC_REPLACES="${MVT_PORTSEC_REPLACES:-200}"
# detect_leaks: LeakSanitizer at every process exit; halt_on_error: the first error ends the process (exit code 86
# for ASan, 23 for leaks). log_path: reports go to pid-suffixed files in $logdir (printed below).
# detect_odr_violation=0: the addon's globals are checked by ASan, but node's own symbols interposed by the copy of
# node-addon-api/libstdc++ in the addon are not ours to judge.
common="log_path=$logdir/report:log_exe_name=1"
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:exitcode=86:detect_odr_violation=0:$common"
export LSAN_OPTIONS="suppressions=$root/test/sanitizer/lsan.supp:print_suppressions=0:exitcode=23"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:$common"

# The sanitized addon and runtimes must really be what a process loads: check one, by its memory map.
"$sannode" --input-type=module -e '
  const lib = await import(process.argv[1]);
  await lib.listLinks();
  const maps = (await import("node:fs")).readFileSync("/proc/self/maps", "utf8");
  for (const want of [process.env.MACVTAP_ADDON, "libasan", "libubsan"]) {
    if (!maps.includes(want)) { console.error(`test/sanitizer/run.sh: ${want} is not mapped in a node that loaded the library`); process.exit(1); }
  }
' "$root/dist/lib/index.js"

files=()
for a in "$@"; do case "$a" in -*) ;; *) files+=("$a") ;; esac; done
args=("$@")
if [ ${#files[@]} -eq 0 ]; then
  for f in test/*.test.ts; do
    skip=
    for x in "${excluded[@]}"; do [ "$f" = "$x" ] && skip=1; done
    [ -n "$skip" ] || args+=("$f")
  done
fi

status=0
"$sannode" "$root/node_modules/vitest/vitest.mjs" run --config test/sanitizer/vitest.config.ts "${args[@]}" || status=$?

# A file holding nothing but LeakSanitizer's "Unable to get registers from thread N." is not a finding: LSan's
# stop-the-world could not read one thread's registers (the thread was exiting, or another tracer held it, as strace
# does for the traced children of the links and security suites), so it counted that thread's whole stack as
# reachable and went on; a leak it then found would be a report of its own in the same file, and would fail the run.
# Such notices are printed, not counted. Every other line in a file fails the run.
notice='^==[^=]+==[0-9]+==Unable to get registers from thread [0-9]+\.$'
findings=0
if compgen -G "$logdir/report*" >/dev/null; then
  for f in "$logdir"/report*; do
    if grep -Evq "$notice" "$f"; then
      [ "$findings" = 1 ] || echo "test/sanitizer/run.sh: sanitizer reports (each fails the run):" >&2
      findings=1
      echo "--- $f" >&2; cat "$f" >&2
    else
      echo "test/sanitizer/run.sh: LeakSanitizer notice, not a finding ($f):" >&2; cat "$f" >&2
    fi
  done
fi
[ "$findings" = 0 ] || status=1
exit "$status"
