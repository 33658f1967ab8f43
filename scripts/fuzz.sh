#!/usr/bin/env bash
# libFuzzer over the parsers (docs/reliability.md, "Fuzzing"):
#   bash scripts/fuzz.sh build                  build the targets into .build-fuzz
#   bash scripts/fuzz.sh run SECONDS [TARGET…]  fuzz each for SECONDS (-max_total_time)
#   bash scripts/fuzz.sh runs N [TARGET…]       fuzz each for N inputs (-runs)
#   bash scripts/fuzz.sh replay [TARGET…]       run each once over its committed corpus
# Each starts from a copy of Tests/fuzz-corpus/<target> (the committed corpus is never written);
# an input over 1 s is a failure (-timeout=1). Prints per target the inputs run and the result;
# exits non-zero on a crash or a timeout, whose input is kept in .build-fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."

all_targets=(infer-config source-uri stream-request analytics-config)
scratch=.build-fuzz
# Coverage (for libFuzzer) and ASan in every Swift module; -DTRIBUTARY_FUZZ makes each target's
# main (FuzzSupport.main) run libFuzzer's driver instead of replaying files.
swift_flags=(-Xswiftc -sanitize=fuzzer,address -Xswiftc -DTRIBUTARY_FUZZ)

usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

build() {
    for target in "${all_targets[@]}"; do
        # gold warns once per ASan helper symbol at every link: hundreds of lines that say nothing.
        swift build --scratch-path "$scratch" "${swift_flags[@]}" --product "fuzz-$target" 2>&1 \
            | { grep -v "Cannot export local symbol '__asan" || true; }
    done
}

# The value of libFuzzer's final `stat::NAME:` line in a log.
stat() { sed -n "s/^stat::$1: *//p" "$2" | tail -1 | grep . || echo "?"; }

fuzz() {
    local mode=$1 amount=$2; shift 2
    local targets=("$@")
    [ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")
    local bin
    bin=$(swift build --scratch-path "$scratch" "${swift_flags[@]}" --show-bin-path)
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    # GLib drops its first quark table (16 KB) by design when gst_init outgrows it: a leak at exit
    # of any process that starts GStreamer. GLib has no frame pointers, so its blocks cannot be
    # told apart by caller; Swift's own allocations are still checked.
    printf 'leak:libglib-2.0.so\n' >"$work/lsan.supp"
    local failed=0
    for target in "${targets[@]}"; do
        local exe="$bin/fuzz-$target"
        [ -x "$exe" ] || { echo "$exe is not built: bash scripts/fuzz.sh build" >&2; exit 2; }
        local corpus="$work/$target/corpus" artifacts="$scratch/artifacts/$target" log="$work/$target/log"
        mkdir -p "$corpus" "$work/$target/tmp" "$artifacts"
        cp Tests/fuzz-corpus/"$target"/* "$corpus"/
        local limit
        case $mode in
            run) limit=(-max_total_time="$amount") ;;
            runs) limit=(-runs="$amount") ;;
            replay) limit=(-runs=0) ;;
        esac
        local rc=0 start=$SECONDS
        # No Swift backtracer (it would hold a crash for its own report); stdin closed, so a
        # parser never waits on it; a scratch TMPDIR for the targets' fixture files.
        SWIFT_BACKTRACE=enable=no LSAN_OPTIONS="suppressions=$work/lsan.supp" TMPDIR="$work/$target/tmp" "$exe" "${limit[@]}" -timeout=1 -max_len=4096 \
            -print_final_stats=1 -artifact_prefix="$artifacts/" "$corpus" </dev/null >"$log" 2>&1 || rc=$?
        local corp
        corp=$(grep -o 'corp: [0-9]*/[0-9]*[a-zA-Z]*' "$log" | tail -1 | cut -d' ' -f2 || true)
        local result=ok
        if [ $rc -ne 0 ]; then
            failed=1
            result="FAILED (exit $rc): $(grep -m1 -E '^==[0-9]+== ?ERROR|^ERROR|Fatal error|SUMMARY' "$log" || echo see log)"
        fi
        printf '%-21s %8s runs %4ds %6s exec/s  slowest %ss  peak RSS %4s MB  corpus %-10s %s\n' "fuzz-$target" \
            "$(stat number_of_executed_units "$log")" $((SECONDS - start)) "$(stat average_exec_per_sec "$log")" \
            "$(stat slowest_unit_time_sec "$log")" "$(stat peak_rss_mb "$log")" "${corp:-?}" "$result"
        if [ $rc -ne 0 ]; then
            cp "$log" "$artifacts/log.txt"
            tail -40 "$log" >&2
            echo "the input and the whole log are in $artifacts/" >&2
        fi
    done
    return $failed
}

case ${1:-} in
    build) build ;;
    run|runs)
        [[ ${2:-} =~ ^[0-9]+$ ]] || usage
        fuzz "$1" "$2" "${@:3}" ;;
    replay) fuzz replay 0 "${@:2}" ;;
    *) usage ;;
esac
