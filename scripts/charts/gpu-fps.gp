# One GPU: aggregate frames per second against streams, the GPU pipeline under the NVDEC ceiling
# (dashed), the CPU path of the same machine where it was run, and real time (30 fps a stream).
set xlabel "streams (K)"
set ylabel "frames per second (all streams)"
stats datafile using "streams" nooutput
kmax = STATS_max
set xrange [0:kmax * 1.25]
set yrange [0:*]
set key bottom right
set lmargin 10; set rmargin 3; set bmargin 3.5
counted = "cpu_path"
@count_figures
set multiplot title "GPU: aggregate frames per second against streams" font ",12"
set size 1, 0.9; set origin 0, 0; set tmargin 1.5
plot datafile using "streams":"nvdec_ceiling" with linespoints dt 2 pt 6 ps 1.2 lc rgb red title "(a) NVDEC ceiling (decode alone)", \
     datafile using "streams":"gpu_pipeline" with linespoints dt 1 pt 7 ps 1.2 lc rgb blue title "(b) GPU pipeline (NVDEC → detector → tiler → OSD)", \
     datafile using "streams":(n_cpu_path > 0 ? column("cpu_path") : NaN) with points pt 5 ps 1.3 lc rgb orange title (n_cpu_path > 0 ? "(c) CPU path, same machine" : ""), \
     [0:kmax * 1.25] 30 * x with lines dt 3 lw 1.5 lc rgb grey title "real time: 30 fps a stream"
unset multiplot
