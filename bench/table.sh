#!/usr/bin/env bash
# Reads the figure lines of benchmark runs (bench/benchlib.h) on standard
# input and prints one Markdown table: per workload and figure, min / median
# / max over the runs, the median of its reference (a figure of the same
# input) and the ratio of the two medians. Other lines are ignored.
#
#   grep -h '^figure' build/bench/*.out | bench/table.sh
set -euo pipefail
awk -F'\t' '$1 == "figure" && NF >= 6 {
		key = $2 "/" $3
		if (!(key in order)) order[key] = ++n
		print order[key] "\t" $0
	}' |
	sort -t$'\t' -k1,1n -k6,6g |
	awk -F'\t' '
	function fmt(v) {
		if (v == "") return "–"
		a = v < 0 ? -v : v
		if (a >= 1000) return sprintf("%.0f", v)
		if (a >= 100) return sprintf("%.0f", v)
		if (a >= 10) return sprintf("%.1f", v)
		return sprintf("%.2f", v)
	}
	{
		k = $1
		if (!(k in count)) { keys[++n] = k; workload[k] = $3; name[k] = $4; unit[k] = $5; ref[k] = $7 }
		values[k, ++count[k]] = $6
	}
	END {
		for (i = 1; i <= n; i++) {
			k = keys[i]; c = count[k]
			med[k] = c % 2 ? values[k, (c + 1) / 2] : (values[k, c / 2] + values[k, c / 2 + 1]) / 2
			median_of[workload[k] "/" name[k]] = med[k]
		}
		print "| workload | figure | unit | runs | min | median | max | reference (median) | ratio |"
		print "|---|---|---|---|---|---|---|---|---|"
		for (i = 1; i <= n; i++) {
			k = keys[i]; c = count[k]
			r = ref[k]; rv = ""; ratio = "–"
			if (r != "-" && (r in median_of)) {
				rv = median_of[r]
				if (rv != 0) ratio = sprintf("%.2f", med[k] / rv)
				r = r " " fmt(rv)
			} else if (r != "-") {
				r = r " (not measured)"
			} else {
				r = "–"
			}
			printf "| %s | %s | %s | %d | %s | %s | %s | %s | %s |\n", workload[k], name[k], unit[k], \
				c, fmt(values[k, 1]), fmt(med[k]), fmt(values[k, c]), r, ratio
		}
	}'
