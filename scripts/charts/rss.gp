# Resident memory over a soak (flat after the queues and pools fill: no leak).
set xlabel "seconds"
set ylabel "RSS (MB)"
set yrange [0:*]
# One row (a soak shorter than its 10-s report interval): a few seconds either side of it.
stats datafile using "seconds" nooutput
if (STATS_max == STATS_min) set xrange [STATS_min - 5:STATS_max + 5]
set offsets 0, 0, graph 0.15, 0
set y2label "frames (all streams)" tc rgb grey
set y2tics nomirror tc rgb grey
set y2range [0:*]
set key bottom right
set lmargin 10; set rmargin 11; set bmargin 3.5
set multiplot title "Resident memory over a soak" font ",12"
set size 1, 0.9; set origin 0, 0; set tmargin 1.5
plot datafile using "seconds":"rss_mb" with linespoints dt 1 pt 7 ps 1 lc rgb purple title "RSS (MB)", \
     '' using "seconds":"frames" axes x1y2 with lines dt 3 lw 1.5 lc rgb grey title "frames processed (right axis)"
unset multiplot
