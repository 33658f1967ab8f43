# Several GPUs. Left: aggregate frames per second against GPUs, a line for each streams a GPU (K)
# and mode, beside linear scaling from that line's own 1-GPU figure (dashed). Right: scaling
# efficiency (G GPUs / (G × 1 GPU)) against streams a GPU, per mode and GPU count.
stats datafile using "gpus" nooutput
gmin = STATS_min; gmax = STATS_max
# The GPU counts of the efficiency blocks: 2 … gmax, at least one (gnuplot reads a plot
# element's data block even when its iteration is empty).
ghi = gmax > 2 ? gmax : 2
stats datafile using "streams_per_gpu" nooutput
kmin = STATS_min; kmax = STATS_max
# The K values in the order of the file, once each.
klist = ""; previous = ""
stats datafile using (k = strcol("streams_per_gpu"), (k ne previous ? (klist = klist . " " . k, previous = k) : 0), 0) nooutput
n = 0; stats datafile using (n = n + (strcol("mode") eq "per-gpu"), 0) nooutput; n_pergpu = n
n = 0; stats datafile using (n = n + (strcol("mode") eq "one"), 0) nooutput; n_one = n
is(mode, k) = strcol("mode") eq mode && column("streams_per_gpu") == k
# Linear scaling: the group's 1-GPU figure times the GPUs (a group's rows come 1 GPU first).
base = NaN
linear(g, fps) = (g == 1 ? (base = fps) : g * base)
# The efficiency rows of each mode and GPU count as their own data block (no gaps between K),
# n_<mode><G> of them.
do for [g=2:ghi] {
    do for [mode in "per-gpu one"] {
        name = (mode eq "one" ? "one" : "pergpu") . g
        n = 0
        stats datafile using (v = column("scaling_efficiency"), n = n + (strcol("mode") eq mode && column("gpus") == g && v == v), 0) nooutput
        eval sprintf("n_%s = n", name)
        if (n > 0) {
            eval sprintf("set table $eff%s", name)
            plot datafile using "streams_per_gpu":"scaling_efficiency" with table if (strcol("mode") eq mode && column("gpus") == g)
            unset table
        } else {
            # One undefined point (an empty block would be gnuplot's warning).
            eval sprintf("set print $eff%s", name)
            print "1 NaN"
            unset print
        }
    }
}

set multiplot title "Several GPUs: aggregate frames per second and scaling efficiency" font ",12"
set lmargin 10; set rmargin 2; set tmargin 2.5; set bmargin 3.5
set size 0.5, 0.9; set origin 0, 0
set title "aggregate FPS against GPUs, a line a K" font ",11"
set xlabel "GPUs"
set ylabel "frames per second (all streams)"
set xrange [gmin - 0.2:gmax + 0.2]
set xtics 1
set yrange [0:*]
set key bottom right
first(k) = (k eq word(klist, 1))
plot for [k in klist] datafile using "gpus":(is("per-gpu", k + 0) ? linear(column("gpus"), column("aggregate_fps")) : NaN) \
         with lines dt 2 lw 1 lc rgb grey title (first(k) ? "linear (G × its 1-GPU rate)" : ""), \
     for [k in klist] datafile using "gpus":(is("one", k + 0) ? linear(column("gpus"), column("aggregate_fps")) : NaN) \
         with lines dt 2 lw 1 lc rgb grey notitle, \
     for [k in klist] datafile using "gpus":(is("per-gpu", k + 0) ? column("aggregate_fps") : NaN) \
         with linespoints dt 1 pt 7 ps 1.1 lc rgb blue title (first(k) && n_pergpu > 0 ? "a process per GPU" : ""), \
     for [k in klist] datafile using "gpus":(is("one", k + 0) ? column("aggregate_fps") : NaN) \
         with linespoints dt 1 pt 4 ps 1.1 lc rgb orange title (first(k) && n_one > 0 ? "one process" : "")

unset label 99
set size 0.5, 0.9; set origin 0.5, 0
set title "scaling efficiency against streams a GPU" font ",11"
set xlabel "streams a GPU (K)"
set ylabel "scaling efficiency"
set logscale x 2
set xrange [kmin / 1.4:kmax * 1.4]
set xtics kmin, 2, kmax
set yrange [*:1.02]
set offsets 0, 0, 0, graph 0.1
set key bottom right
unset datafile columnheaders
set datafile separator whitespace
plot 1 with lines dt 2 lw 1 lc rgb grey title "linear (1.0)", \
     for [g=2:ghi] sprintf('$effpergpu%d', g) using 1:2 with linespoints dt 1 pt 7 ps 1.1 lc rgb blue \
         title (value(sprintf("n_pergpu%d", g)) > 0 ? sprintf("%d GPUs, a process per GPU", g) : ""), \
     for [g=2:ghi] sprintf('$effone%d', g) using 1:2 with linespoints dt 1 pt 4 ps 1.1 lc rgb orange \
         title (value(sprintf("n_one%d", g)) > 0 ? sprintf("%d GPUs, one process", g) : "")
unset multiplot
