# CPU: aggregate frames per second against streams, each figure beside its ceiling (dashed, same
# colour). Left: the pipelines with the detector against ONNX Runtime alone; right: decode → tile
# only against the same GStreamer decode graph alone.
counted = "fp32_mp4 ort_fp32 int8_fakesink ort_int8 gstreamer_alone"
@count_figures
set multiplot title "CPU: aggregate frames per second against streams" font ",12"
set xlabel "streams (N)"
set ylabel "frames per second (all streams)"
set xtics 1
# Room above the lines for the key (graph 0.6: 60 % of the range on top of the highest figure).
set yrange [0:*]
set offsets 0.3, 0.3, graph 0.6, 0
set key top left
set lmargin 9; set rmargin 2; set tmargin 2.5; set bmargin 3.5
set size 0.5, 0.9; set origin 0, 0
set title "with the detector (YOLOv3-tiny)" font ",11"
plot datafile using "streams":(n_ort_int8 > 0 ? column("ort_int8") : NaN) with linespoints dt 2 pt 6 ps 1.2 lc rgb orange title (n_ort_int8 > 0 ? "(b) ORT INT8 alone (ceiling)" : ""), \
     datafile using "streams":(n_int8_fakesink > 0 ? column("int8_fakesink") : NaN) with linespoints dt 1 pt 7 ps 1.2 lc rgb orange title (n_int8_fakesink > 0 ? "(a) INT8 → fakesink" : ""), \
     datafile using "streams":(n_ort_fp32 > 0 ? column("ort_fp32") : NaN) with linespoints dt 2 pt 4 ps 1.2 lc rgb blue title (n_ort_fp32 > 0 ? "(b) ORT FP32 alone (ceiling)" : ""), \
     datafile using "streams":"fp32_fakesink" with linespoints dt 1 pt 5 ps 1.2 lc rgb blue title "(a) FP32 → fakesink", \
     datafile using "streams":(n_fp32_mp4 > 0 ? column("fp32_mp4") : NaN) with linespoints dt 1 pt 9 ps 1.2 lc rgb light_blue title (n_fp32_mp4 > 0 ? "(a) FP32 → MP4 (x264)" : "")
unset label 99
set size 0.5, 0.9; set origin 0.5, 0
set title "decode → mux → tile only" font ",11"
set ylabel ""
set offsets 0.3, 0.3, graph 0.3, 0
plot datafile using "streams":(n_gstreamer_alone > 0 ? column("gstreamer_alone") : NaN) with linespoints dt 2 pt 6 ps 1.2 lc rgb green title (n_gstreamer_alone > 0 ? "(c) GStreamer alone (ceiling)" : ""), \
     datafile using "streams":"decode_only" with linespoints dt 1 pt 7 ps 1.2 lc rgb green title "(c) decode-only pipeline"
unset multiplot
