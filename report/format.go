package report

import (
	"math"
	"strconv"
	"strings"
)

// Formatting helpers: numbers, sizes, loads and lists as a reader sees them.

// formatMicros formats a latency given in microseconds with three
// significant digits and a unit a person reads at a glance.
func formatMicros(us float64) string {
	switch {
	case math.IsNaN(us) || us < 0:
		return "–"
	case us == 0:
		return "0"
	case us < 1:
		return sig3(us*1e3) + " ns"
	case us < 1e3:
		return sig3(us) + " µs"
	case us < 1e6:
		return sig3(us/1e3) + " ms"
	}
	return sig3(us/1e6) + " s"
}

// sig3 formats v with three significant digits, without exponent.
func sig3(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// formatRate formats calls per second.
func formatRate(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 1e6:
		return sig3(v/1e6) + "M"
	case v >= 1e4:
		return strconv.FormatFloat(v/1e3, 'f', 1, 64) + "k"
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return sig3(v)
}

// formatBytes formats a payload size.
func formatBytes(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.Itoa(n>>20) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.Itoa(n>>10) + " KiB"
	}
	return strconv.Itoa(n) + " B"
}

func formatLoad(mode string, conc int, rate float64) string {
	if mode == "open" {
		return strconv.FormatFloat(rate, 'f', -1, 64) + "/s"
	}
	return "conc " + strconv.Itoa(conc)
}

func formatLoadLong(mode string, conc int, rate float64) string {
	if mode == "open" {
		return "rate " + strconv.FormatFloat(rate, 'f', -1, 64) + " calls/s"
	}
	return "concurrency " + strconv.Itoa(conc)
}

func formatRatio(v float64) string {
	if v == 0 {
		return "–"
	}
	if v < 10 {
		return strconv.FormatFloat(v, 'f', 2, 64) + "×"
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + "×"
}

func (p point) String() string {
	s := formatBytes(p.payload) + ", " + formatLoadLong(p.mode, p.concurrency, p.rate)
	if p.service != "" && p.service != "0" {
		s += ", service " + p.service
	}
	return s
}

func joinAnd(s []string) string {
	switch len(s) {
	case 0:
		return ""
	case 1:
		return s[0]
	case 2:
		return s[0] + " and " + s[1]
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}
