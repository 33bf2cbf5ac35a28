#!/usr/bin/env bash
# Coverage-guided fuzzing of Coffer's parsers of untrusted input (libFuzzer
# through the libfuzzer-sys crate, on the stable toolchain: the sanitizer
# coverage flags are passed here, so neither nightly nor cargo-fuzz is
# needed). See docs/fuzzing.md.
#
#   scripts/fuzz.sh                     build, then run every target 20 s (CI)
#   scripts/fuzz.sh --seconds 300 jwt   run one target for 5 minutes
#   scripts/fuzz.sh --runs 10000000     run every target for 10M executions
#   (--runs with --seconds: whichever limit comes first)
#   scripts/fuzz.sh --merge             minimize the committed corpora
#   scripts/fuzz.sh --build             build only
#   scripts/fuzz.sh --list              the targets
#
# Needs: cargo (stable), a C++ compiler (`c++`, Debian package g++) to
# build libFuzzer. Installs nothing. New inputs found while fuzzing go to a
# scratch directory (the committed corpus is only read); a crash, panic,
# timeout or out-of-memory stops with a non-zero exit and prints the
# reproducer's path and the command that replays it.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)
fuzz="$root/fuzz"
TARGETS=(wire_body jwt aws_iam gitlab_yaml policy_match masker pki_request ssh_request)

seconds=20
timed=""
runs=""
mode=run
selected=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --seconds) seconds="$2"; timed=1; shift 2 ;;
        --runs) runs="$2"; shift 2 ;;
        --merge) mode=merge; shift ;;
        --build) mode=build; shift ;;
        --list) printf '%s\n' "${TARGETS[@]}"; exit 0 ;;
        -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "fuzz.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
        *)
            if [[ " ${TARGETS[*]} " != *" $1 "* ]]; then
                echo "fuzz.sh: unknown target $1; targets: ${TARGETS[*]}" >&2
                exit 2
            fi
            selected+=("$1"); shift ;;
    esac
done
[[ ${#selected[@]} -gt 0 ]] || selected=("${TARGETS[@]}")

if ! command -v c++ >/dev/null 2>&1; then
    echo "fuzz.sh: a C++ compiler is needed to build libFuzzer: install g++ (Debian: apt-get install g++)" >&2
    exit 2
fi

# Coverage instrumentation on stable (what cargo-fuzz passes, minus the
# nightly-only sanitizer flag): inline 8-bit counters and PC table for
# libFuzzer, compare tracing for its value profile and CMP dictionary.
# `--target` keeps these flags off build scripts and proc macros.
host=$(rustc -vV | sed -n 's/^host: //p')
export RUSTFLAGS="-Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares \
--cfg fuzzing -Cdebug-assertions -Coverflow-checks"
export CARGO_TARGET_DIR="$fuzz/target"
echo "==> building fuzz targets (release, instrumented; first build takes several minutes)"
cargo build --manifest-path "$fuzz/Cargo.toml" --locked --release --target "$host" --bins
bin="$CARGO_TARGET_DIR/$host/release"
[[ $mode == build ]] && exit 0

max_len() {
    case "$1" in
        # Structured (`arbitrary`) inputs: 1 KiB holds plenty of structure.
        policy_match|masker) echo 1024 ;;
        *) echo 4096 ;;
    esac
}

common_flags() {
    local t=$1 flags=(-max_len="$(max_len "$t")" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1)
    [[ -f "$fuzz/dict/$t.dict" ]] && flags+=(-dict="$fuzz/dict/$t.dict")
    printf '%s\n' "${flags[@]}"
}

scratch=$(mktemp -d "${TMPDIR:-/tmp}/coffer-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

if [[ $mode == merge ]]; then
    for t in "${selected[@]}"; do
        mapfile -t flags < <(common_flags "$t")
        mkdir -p "$fuzz/corpus/$t" "$scratch/$t"
        echo "==> $t: merging corpus ($(ls "$fuzz/corpus/$t" | wc -l) files)"
        # Smallest set of inputs that keeps every covered edge (hit counts
        # are not kept: fuzzing regains them in seconds), so the committed
        # corpus stays at a few hundred files per target.
        "$bin/$t" "${flags[@]}" -set_cover_merge=1 -use_counters=0 "$scratch/$t" "$fuzz/corpus/$t" \
            ${FUZZ_EXTRA_CORPUS:+"$FUZZ_EXTRA_CORPUS/$t"} 2>&1 | tail -n 3
        rm -rf "$fuzz/corpus/$t"
        mv "$scratch/$t" "$fuzz/corpus/$t"
        echo "    $t: $(ls "$fuzz/corpus/$t" | wc -l) files"
    done
    exit 0
fi

failed=()
for t in "${selected[@]}"; do
    mapfile -t flags < <(common_flags "$t")
    art="$fuzz/artifacts/$t"
    mkdir -p "$art" "$scratch/$t"
    if [[ -n $runs && -n $timed ]]; then
        limit=(-runs="$runs" -max_total_time="$seconds")
        echo "==> $t: $runs executions or $seconds s, whichever comes first"
    elif [[ -n $runs ]]; then
        limit=(-runs="$runs")
        echo "==> $t: $runs executions"
    else
        limit=(-max_total_time="$seconds")
        echo "==> $t: $seconds s"
    fi
    log="$scratch/$t.log"
    status=0
    # New inputs go to the scratch corpus (first directory); the committed
    # corpus is read only. FUZZ_KEEP_CORPUS=DIR keeps them in DIR/<target>.
    work="$scratch/$t"
    if [[ -n ${FUZZ_KEEP_CORPUS:-} ]]; then
        work="$FUZZ_KEEP_CORPUS/$t"
        mkdir -p "$work"
    fi
    "$bin/$t" "${flags[@]}" "${limit[@]}" -artifact_prefix="$art/" \
        "$work" "$fuzz/corpus/$t" >"$log" 2>&1 || status=$?
    grep -E '^(#[0-9]+[[:space:]]+(DONE|INITED)|stat::|Done [0-9]+ runs)' "$log" | sed 's/^/    /' || true
    if [[ $status -ne 0 ]]; then
        tail -n 40 "$log" | sed 's/^/    | /'
        repro=$(grep -oE "Test unit written to [^ ]+" "$log" | tail -n 1 | sed 's/Test unit written to //' || true)
        echo "FUZZ FAILURE in $t (exit $status)"
        if [[ -n $repro ]]; then
            echo "    reproducer: $repro"
            echo "    replay:     $bin/$t $repro"
        fi
        failed+=("$t")
    fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
    echo "fuzz.sh: ${#failed[@]} target(s) failed: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz.sh: ${#selected[@]} target(s) ran without a crash"
