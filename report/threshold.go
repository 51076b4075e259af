package report

import (
	"math"
	"strconv"
	"strings"

	"github.com/rpcbench/rpcbench/results"
)

// Metrics compare knows, in display order. Latencies are in µs.
var metricNames = []string{"p50", "p90", "p99", "p99.9", "p99.99", "mean", "throughput", "errors", "rstar"}

// DefaultMetrics are the metrics compare reports when no threshold names
// another.
var DefaultMetrics = []string{"p50", "p99", "p99.9", "throughput"}

// Threshold is a --fail-on rule: fail when Metric changes by more than
// Percent, in the direction of its sign (+10: an increase of more than 10%;
// -5: a decrease of more than 5%). For "errors", the error rate, Percent is
// in percentage points: errors:+0.1% fails a cell whose share of failed
// calls grows by more than 0.1 points.
type Threshold struct {
	Metric  string  `json:"metric"`
	Percent float64 `json:"percent"`
}

func (t Threshold) String() string {
	sign := "+"
	if t.Percent < 0 {
		sign = ""
	}
	return t.Metric + ":" + sign + strconv.FormatFloat(t.Percent, 'f', -1, 64) + "%"
}

// crossed reports whether a change of deltaPct crosses t.
func (t Threshold) crossed(deltaPct float64) bool {
	if math.IsNaN(deltaPct) {
		return false
	}
	if t.Percent >= 0 {
		return deltaPct > t.Percent
	}
	return deltaPct < t.Percent
}

// ParseThreshold parses "p99:+10%" or "throughput:-5%". Its errors are
// ErrBadInput and name the --fail-on flag.
func ParseThreshold(s string) (Threshold, error) {
	bad := func(why string) error {
		return badInput("--fail-on %q: %s: want METRIC:+N%% or METRIC:-N%%, e.g. p99:+10%% or throughput:-5%% (metrics: %s)",
			s, why, strings.Join(metricNames, ", "))
	}
	name, val, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok {
		return Threshold{}, bad("no ':'")
	}
	metric, ok := canonicalMetric(name)
	if !ok {
		return Threshold{}, bad("unknown metric " + strconv.Quote(name))
	}
	val = strings.TrimSuffix(strings.TrimSpace(val), "%")
	if !strings.HasPrefix(val, "+") && !strings.HasPrefix(val, "-") {
		return Threshold{}, bad("the change needs a sign, + for an increase or - for a decrease")
	}
	f, err := strconv.ParseFloat(val, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f == 0 {
		return Threshold{}, bad("not a non-zero percentage")
	}
	if metric == "rstar" && f > 0 {
		return Threshold{}, bad("a higher R* is an improvement: gate on a drop, rstar:-N%")
	}
	return Threshold{Metric: metric, Percent: f}, nil
}

func canonicalMetric(s string) (string, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "p50", "median":
		return "p50", true
	case "p90":
		return "p90", true
	case "p99":
		return "p99", true
	case "p99.9", "p999":
		return "p99.9", true
	case "p99.99", "p9999":
		return "p99.99", true
	case "mean":
		return "mean", true
	case "throughput", "tput", "calls/s", "rate":
		return "throughput", true
	case "errors", "error_rate", "error-rate", "failures":
		return "errors", true
	case "rstar", "r*", "max-rate", "max_sustainable_rate":
		return "rstar", true
	}
	return "", false
}

// CompareOptions configure Compare. The zero value is usable.
type CompareOptions struct {
	Thresholds []Threshold
	// Alpha is the significance level; 0 means 0.05.
	Alpha float64
	// Confidence is the confidence level of the intervals; 0 means 0.95.
	Confidence float64
	// Test is "welch" (default: Welch's t-test, intervals around the mean)
	// or "mann-whitney" (Mann-Whitney U test, intervals around the median;
	// it needs 4 repetitions a side to ever reach p < 0.05).
	Test string
	// BaseName and NewName label the two sides in the output (file names).
	BaseName, NewName string
	// RequireSignificance fails only on changes a significance test
	// confirmed; by default a cell with fewer than MinRepetitions a side is
	// judged on its point estimates (and the output says significance is
	// unknown).
	RequireSignificance bool
	// AllowMissing lets a cell of the base be absent from the new run.
	AllowMissing bool
}

// DefaultErrorRate is the error-rate line compare holds every cell to when
// no errors threshold is given: a cell at or under it in the base that
// goes over it in the new run fails.
const DefaultErrorRate = results.MaxErrorRate
