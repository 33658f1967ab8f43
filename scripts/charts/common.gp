# Shared by every chart (scripts/charts.sh runs `gnuplot -e "datafile=…; outfile=…; machine=…"
# common.gp <chart>.gp`): the terminal, the data's format and the styles.
# The data: tab-separated, `#` comment lines first, then one line of column names; "-" is a
# figure that the table does not have.
set terminal pngcairo size 900,500 enhanced font "DejaVu Sans,11" linewidth 1.5 background "white"
set output outfile
set encoding utf8
set datafile separator tab
set datafile commentschars "#"
set datafile columnheaders
set datafile missing "-"
set decimalsign "."
set grid back lc rgb "#dddddd" lw 1 dt 1
set border 3 lc rgb "#555555"
set tics nomirror
set key noenhanced opaque box lc rgb "#cccccc" samplen 2.5 spacing 1.1
# The chart's title is what it shows; below it, smaller, the figures' machine (the data file's
# `# machine:` line), as plain text (no enhanced-text markup in it).
if (!exists("machine")) machine = ""
set label 99 machine at screen 0.5, screen 0.915 center font ",9" noenhanced tc rgb "#444444"

# Colours (one a quantity; a measured figure is a solid line, its ceiling the same colour dashed).
blue = "#1f77b4"; light_blue = "#7fb2dc"; orange = "#e07b00"; green = "#2ca02c"; red = "#c0392b"; grey = "#777777"; purple = "#8e44ad"
# How many rows have a figure in each of `counted`'s columns, as n_<column>. A column that may
# have none (a run without INT8, without the CPU path, …) is plotted as
# `(n_name > 0 ? column("name") : NaN)`, undefined points rather than gnuplot's "no valid points"
# warning, and titled only when n_<column> > 0.
count_figures = 'do for [c in counted] { n = 0; stats datafile using (v = column(c), n = n + (v == v), 0) nooutput; eval sprintf("n_%s = n", c) }'
