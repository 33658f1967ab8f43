#!/usr/bin/env bash
# Renders the benchmark's charts: every known chart whose data file is in DATA_DIR becomes a PNG
# in OUT_DIR, drawn by gnuplot (pngcairo, 900×500) with one script a chart from scripts/charts/.
#
#   scripts/charts.sh [DATA_DIR] [OUT_DIR]      (defaults: docs/charts → docs/images)
#
# The data files (docs/charts/*.tsv, or what `tributary-benchmark --chart-data DIR` writes) are
# tab-separated: `#` lines naming the command, date and machine, one line of column names, then
# one row a line ("-" where a figure is missing). A chart's subtitle is its file's `# machine:`.
# gnuplot comes from Debian's gnuplot-nox, which scripts/setup.sh installs.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
data_dir=${1:-$root/docs/charts}
out_dir=${2:-$root/docs/images}
charts=(cpu-fps gpu-fps gpu-scaling rss latency)

if ! command -v gnuplot >/dev/null 2>&1; then
  echo "charts.sh: gnuplot not found: run scripts/setup.sh (it installs gnuplot-nox)" >&2
  exit 127
fi
if [[ ! -d $data_dir ]]; then
  echo "charts.sh: no folder $data_dir" >&2
  exit 2
fi
mkdir -p "$out_dir"

# The same pixels from the same data, whatever the caller's locale.
export LC_ALL=C.UTF-8
# gnuplot's own start-up file must not restyle the charts.
export HOME=/nonexistent

found=0 failed=0
for chart in "${charts[@]}"; do
  data="$data_dir/$chart.tsv"
  [[ -f $data ]] || continue
  found=$((found + 1))
  # The subtitle: the file's `# machine:` line, without quotes (it goes into a gnuplot string).
  machine=$(sed -n 's/^# machine: *//p' "$data" | head -n 1 | tr -d "'\"\\\\")
  out="$out_dir/$chart.png"
  # Drawn beside the chart and moved over it when done: a failed drawing leaves no broken PNG.
  partial="$out_dir/.$chart.png.partial"
  if gnuplot -e "datafile='$data'; outfile='$partial'; machine='$machine'" \
       "$here/charts/common.gp" "$here/charts/$chart.gp"; then
    mv -f "$partial" "$out"
    echo "$out"
  else
    rm -f "$partial"
    echo "charts.sh: gnuplot failed on $data" >&2
    failed=$((failed + 1))
  fi
done

if ((found == 0)); then
  echo "charts.sh: no chart data in $data_dir (expected one of: ${charts[*]/%/.tsv})" >&2
  exit 1
fi
((failed == 0))
