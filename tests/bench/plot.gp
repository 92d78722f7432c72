# plot.gp: the plot of `make bench` (gnuplot -e "dir='OUT'; swaps=N" plot.gp).
# Reads OUT/ops.dat and OUT/swaps.dat (written by stats.py), writes
# OUT/bench.png: the median of each operation on stock and ours with its 95%
# bootstrap CI, the ratio ours/stock with its CI, and the swap downtime by
# step (when swaps > 0).
if (!exists("swaps")) swaps = 0
set terminal pngcairo size 1600, (swaps > 0 ? 1500 : 1000) font "sans,10"
set output dir . "/bench.png"
set multiplot layout (swaps > 0 ? 3 : 2), 1

set grid ytics
set xtics rotate by -35 nomirror
set key top left
set logscale y
set bmargin 7
set rmargin 10
set offsets 0.5, 0.5, 0, 0

set title "Median per operation, 95% bootstrap CI (lower is better)"
set ylabel "microseconds (log)"
plot dir . "/ops.dat" using ($1 - 0.12):3:4:5:xtic(2) with yerrorbars pt 7 ps 0.8 lc rgb "#1f77b4" title "stock vfio.ko", \
     "" using ($1 + 0.12):6:7:8 with yerrorbars pt 5 ps 0.8 lc rgb "#d62728" title "vfio-core"

set title "ours / stock (ratio of medians), 95% bootstrap CI; lines at 1, 1.02 and 1.05"
set ylabel "ratio (log)"
plot dir . "/ops.dat" using 1:9:10:11:xtic(2) with yerrorbars pt 7 ps 0.8 lc rgb "#2ca02c" title "ours/stock", \
     1 with lines lc rgb "black" notitle, \
     1.02 with lines dt 2 lc rgb "gray" notitle, \
     1.05 with lines dt 3 lc rgb "gray" notitle

if (swaps > 0) {
	unset logscale y
	set offsets 0, 0, 0, 0
	set title "vfio-swap downtime by step (median, milliseconds): devices unavailable from the start until all open"
	set ylabel "milliseconds"
	set style data histograms
	set style histogram rowstacked
	set style fill solid 0.8 border -1
	set boxwidth 0.6
	set key outside right top
	plot dir . "/swaps.dat" using 2:xtic(1) title "check", \
	     "" using 3 title "save", "" using 4 title "unload", "" using 5 title "load", \
	     "" using 6 title "dependents", "" using 7 title "restore", "" using 8 title "reopen", \
	     "" using 9 title "other"
}
unset multiplot
