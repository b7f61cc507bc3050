#!/usr/bin/env bash
# Runs scripts/valgrind-calls.js (a few calls of every native entry point) under valgrind's
# memcheck with full leak checking, LibTorch's and Node's own known reports suppressed
# (scripts/valgrind.supp, each entry explained there), and then lists every remaining
# report whose stack passes through our code (smoothce::*, binding/*): there must be none.
#
#   bash scripts/valgrind.sh            (slow: a few minutes; not part of npm test)
#   VALGRIND_LOG=/tmp/vg.log bash scripts/valgrind.sh
#
# Node runs with --jitless: V8's JIT writes and runs code that memcheck cannot follow well
# (false "uninitialised value" reports in generated code); the interpreter exercises the
# same native code paths.
set -euo pipefail
cd "$(dirname "$0")/.."
LOG=${VALGRIND_LOG:-.fuzz/valgrind.log}
mkdir -p "$(dirname "$LOG")"
echo "valgrind: running scripts/valgrind-calls.js under memcheck (log: $LOG)"
status=0
valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite,indirect,possible \
  --errors-for-leak-kinds=definite,indirect --num-callers=40 --error-limit=no \
  --suppressions=scripts/valgrind.supp --log-file="$LOG" \
  node --jitless --expose-gc scripts/valgrind-calls.js || status=$?
echo "valgrind: node exited with status $status"
echo "valgrind: summary"
grep -E "ERROR SUMMARY|definitely lost:|indirectly lost:|possibly lost:|still reachable:|suppressed:" "$LOG" | sed 's/^==[0-9]*== /  /'
# Reports that come from our code: an error whose first frame outside valgrind's and libc's
# own functions is in smoothce.node, or a leak with smoothce.node anywhere in the stack of
# the allocation (a leak of memory ATen allocated for us counts as ours).
ours=$(node -e '
  const text = require("fs").readFileSync(process.argv[1], "utf8");
  const recs = text.split(/^==\d+== *$/m).map((r) => r.replace(/^==\d+== ?/gm, "").trim()).filter((r) => /^\s*(at|by) 0x/m.test(r));
  const mine = recs.filter((r) => {
    const frames = r.split("\n").filter((l) => /^\s*(at|by) 0x/.test(l));
    if (/lost in loss record/.test(r)) return frames.some((f) => /smoothce\.node/.test(f));
    const first = frames.find((f) => !/vgpreload|libc\.so|ld-linux|libstdc\+\+/.test(f));
    return !!first && /smoothce\.node/.test(first);
  });
  require("fs").writeFileSync(process.argv[2], mine.join("\n\n"));
  console.log(mine.length);
' "$LOG" "${LOG%.log}.ours.txt")
echo "valgrind: reports from our code (smoothce.node): $ours"
if [ "$ours" != "0" ]; then
  echo "valgrind: see ${LOG%.log}.ours.txt"
  exit 1
fi
exit "$status"
