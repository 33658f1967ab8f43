# Frame latency (decode → sink) percentiles against streams, each stream looping in real time,
# with the p95 goal (dashed); the sort-tracker rows as separate points.
set xlabel "streams"
set ylabel "latency (ms)"
stats datafile using "streams" nooutput
set xrange [0:STATS_max * 1.08]
set yrange [0:*]
set key top left
set lmargin 10; set rmargin 3; set bmargin 3.5
n = 0; stats datafile using (n = n + (strcol("tracker") eq "none"), 0) nooutput; n_plain = n
n = 0; stats datafile using (n = n + (strcol("tracker") ne "none"), 0) nooutput; n_tracked = n
set table $plain
plot datafile using "streams":"p50_ms":"p95_ms":"p99_ms" with table if (strcol("tracker") eq "none")
unset table
# Without tracker rows, one undefined point (an empty block would be gnuplot's warning).
if (n_tracked > 0) {
    set table $tracked
    plot datafile using "streams":"p50_ms":"p95_ms":"p99_ms" with table if (strcol("tracker") ne "none")
    unset table
} else {
    set print $tracked
    print "1 NaN NaN NaN"
    unset print
}
unset datafile columnheaders
set datafile separator whitespace
set multiplot title "Frame latency, decode → sink, against streams" font ",12"
set size 1, 0.9; set origin 0, 0; set tmargin 1.5
plot 100 with lines dt 2 lw 1.5 lc rgb red title "goal: p95 ≤ 100 ms", \
     $plain using 1:4 with linespoints dt 1 pt 9 ps 1.1 lc rgb orange title "p99", \
     $plain using 1:3 with linespoints dt 1 pt 7 ps 1.1 lc rgb blue title "p95", \
     $plain using 1:2 with linespoints dt 1 pt 5 ps 1.1 lc rgb green title "p50", \
     $tracked using 1:4 with points pt 8 ps 1.6 lc rgb orange title (n_tracked > 0 ? "p99, with the sort tracker" : ""), \
     $tracked using 1:3 with points pt 6 ps 1.6 lc rgb blue title (n_tracked > 0 ? "p95, with the sort tracker" : ""), \
     $tracked using 1:2 with points pt 4 ps 1.6 lc rgb green title (n_tracked > 0 ? "p50, with the sort tracker" : "")
unset multiplot
