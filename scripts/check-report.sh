#!/usr/bin/env bash
# Checks that a comparison, analysis or calibration report renders in a real browser: headless Chromium loads report.html
# with the network off, the rendered DOM must contain every chart and both tables, and a screenshot is taken.
#
#   scripts/check-report.sh REPORT.html [SCREENSHOT.png]
#
# Installs Debian's chromium when it is missing. Exit code 0 when the report looks right.
set -euo pipefail
report=$(realpath "$1")
shot=${2:-${report%.html}.png}

if ! command -v chromium >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking
       --disable-component-update --disable-sync --user-data-dir="$profile" --hide-scrollbars)

dom=$(timeout 120 chromium "${flags[@]}" --dump-dom "file://$report" 2>/dev/null)
figures=$(grep -o '<figure' <<<"$dom" | wc -l)
svgs=$(grep -o '<svg' <<<"$dom" | wc -l)
expected=$(ls "$(dirname "$report")"/charts/*.svg | wc -l)
fail=0
[ "$figures" -eq "$expected" ] || { echo "check-report: $figures figures rendered, $expected charts on disk" >&2; fail=1; }
[ "$svgs" -eq "$expected" ] || { echo "check-report: $svgs SVG elements rendered, $expected expected" >&2; fail=1; }
# A comparison report has the scenario and headline tables; an analysis report (llm-market analyze) the
# design and indices tables; a calibration report (llm-market calibrate) the predictive and identification ones.
if grep -q 'id="design"' <<<"$dom"; then tables=(design indices)
elif grep -q 'id="identification"' <<<"$dom"; then tables=(predictive identification)
else tables=(scenarios headline); fi
for t in "${tables[@]}"; do
  grep -q "id=\"$t\"" <<<"$dom" || { echo "check-report: the $t table is missing" >&2; fail=1; }
done

timeout 120 chromium "${flags[@]}" --window-size=1100,2400 --screenshot="$shot" "file://$report" >/dev/null 2>&1 || true
if [ ! -s "$shot" ]; then echo "check-report: no screenshot" >&2; fail=1; fi
[ "$fail" -eq 0 ] && echo "check-report: $report renders $figures charts and the ${tables[*]} tables; screenshot $shot"
exit "$fail"
