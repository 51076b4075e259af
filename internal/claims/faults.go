package claims

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rpcbench/rpcbench/results"
)

// The fault claims: C5 (a stopped broker stops MQ calls, not direct ones)
// and C6 (a killed responder loses no request of a durable MQ variant).

func parseDur(s string) (time.Duration, error) {
	if s == "0" {
		return 0, nil
	}
	return time.ParseDuration(s)
}

// scheduled is one fault of a scenario as written (ACTION@AT+RESTORE).
type scheduled struct {
	action      string
	at, restore float64 // seconds
}

func parseFaults(fs []string) []scheduled {
	var out []scheduled
	for _, s := range fs {
		action, rest, _ := strings.Cut(s, "@")
		atS, resS, _ := strings.Cut(rest, "+")
		at, err1 := parseDur(atS)
		res, err2 := parseDur(resS)
		if err1 != nil || (resS != "" && err2 != nil) {
			out = append(out, scheduled{action: action, at: -1})
			continue
		}
		out = append(out, scheduled{action, at.Seconds(), res.Seconds()})
	}
	return out
}

// window sums a fault cell's timeline over [from, to): ok and failed
// calls and the seconds covered.
func window(f *results.Faults, from, to float64) (ok, failed int64, secs float64) {
	step := float64(f.StepMs) / 1e3
	if step <= 0 {
		step = 0.1
	}
	for _, p := range f.Timeline {
		if p.T >= from-1e-9 && p.T < to-1e-9 {
			ok += p.OK
			failed += p.Failed
			secs += step
		}
	}
	return ok, failed, secs
}

func brokerAction(a string) bool { return strings.HasSuffix(a, "-broker") }

// faultRef is a fault cell as a comparison used it: the one value judged
// (the other counts are in the comparison's what).
func faultRef(g *group, run string, v float64) CellRef {
	return CellRef{Key: g.key, Runs: []string{run}, Repetitions: 1, Values: []float64{v}, Mean: v}
}

func judgeC5(d *data) finding {
	var f finding
	for _, run := range d.runs {
		plan := parseFaults(run.Scenario.Faults)
		timeout, _ := parseDur(run.Scenario.Timeout)
		for ci := range run.Cells {
			c := &run.Cells[ci]
			if c.Faults == nil {
				continue
			}
			g := d.byKey[keyOf(c)]
			if g == nil {
				continue // not among the cells judged (another hop delay)
			}
			for i, s := range plan {
				if !brokerAction(s.action) {
					continue
				}
				label := fmt.Sprintf("%s during %s (%s, repetition %d)", g.label(), s.action, run.ID, c.Repetition)
				cmp := Comparison{What: label, Metric: "ok share during the outage", Outcome: Undecided, Cells: []CellRef{}}
				from, to := s.at, s.at+s.restore
				if i < len(c.Faults.Events) {
					ev := c.Faults.Events[i]
					switch {
					case ev.Error != "":
						cmp.Why = "the fault could not be done: " + ev.Error
					case ev.NotApplicable == "" && ev.At < 0:
						cmp.Why = "the fault was not done (the cell ended first)"
					case ev.NotApplicable == "" && ev.Restored == nil:
						cmp.Why = "the broker was not restored before the cell ended"
					case ev.NotApplicable == "":
						from, to = ev.At, *ev.Restored
					}
				}
				if s.at < 0 {
					cmp.Why = "the scenario's fault schedule cannot be read: " + strings.Join(run.Scenario.Faults, ", ")
				}
				if cmp.Why != "" {
					f.comparisons = append(f.comparisons, cmp)
					continue
				}
				bok, _, bsecs := window(c.Faults, from-2, from)
				ook, _, osecs := window(c.Faults, from, to)
				_, failed, _ := window(c.Faults, from, to+timeout.Seconds()+1)
				if bsecs == 0 || osecs == 0 || bok == 0 {
					cmp.Why = "no ok calls in the 2 s before the outage to compare with"
					f.comparisons = append(f.comparisons, cmp)
					continue
				}
				share := (float64(ook) / osecs) / (float64(bok) / bsecs)
				cmp.Value = ptr(share)
				cmp.Cells = []CellRef{faultRef(g, run.ID, share)}
				if g.isBroker() {
					cmp.What = "MQ " + cmp.What + ": ok share (failed calls: " + fmt.Sprint(failed) + ")"
					cmp.Threshold = 0.5
					switch {
					case share < 0.5 || failed > 0:
						cmp.Outcome = Holds
					case share >= 0.9:
						cmp.Outcome = Fails
					default:
						cmp.Why = "ok calls fell, but not below half, and none failed"
					}
				} else {
					cmp.What = "direct " + cmp.What + ": ok share (failed calls: " + fmt.Sprint(failed) + ")"
					cmp.Threshold = 0.9
					switch {
					case failed == 0 && share >= 0.9:
						cmp.Outcome = Holds
					case failed > 0 || share < 0.5:
						cmp.Outcome = Fails
					default:
						cmp.Why = "ok calls fell below 90% of the rate before the outage with none failing"
					}
				}
				f.comparisons = append(f.comparisons, cmp)
			}
		}
	}
	if len(f.comparisons) == 0 {
		f.missing = append(f.missing, "no fault cells with a broker fault (stop-broker, kill-broker or pause-broker) in the data")
	} else {
		if !slices.ContainsFunc(f.comparisons, func(c Comparison) bool { return strings.HasPrefix(c.What, "direct ") }) {
			f.missing = append(f.missing, "no direct driver in the fault runs")
		}
		d.missingBrokers(&f)
	}
	return f
}

// keeps classes an MQ variant for a responder fault: "durable" when the
// broker stores the request (in its log or a durable queue) before the
// responder gets it and hands it out again until it is handled, "light"
// otherwise. RocketMQ's flush modes and Kafka's acks differ only in when
// the stored request reaches the disk, which a responder fault does not
// touch.
func keeps(driver, variant string) string {
	switch driver {
	case "rocketmq", "kafka":
		return "durable"
	}
	return durability(driver, variant)
}

func keyOf(c *results.Cell) string {
	if c.Key != "" {
		return c.Key
	}
	return results.CellKey(c)
}

func judgeC6(d *data) finding {
	var f finding
	for _, run := range d.runs {
		for ci := range run.Cells {
			c := &run.Cells[ci]
			if c.Faults == nil {
				continue
			}
			k := slices.IndexFunc(c.Faults.Events, func(e results.FaultEvent) bool { return e.Action == "kill-responder" })
			if k < 0 {
				continue
			}
			g := d.byKey[keyOf(c)]
			if g == nil {
				continue // not among the cells judged (another hop delay)
			}
			ev, l := c.Faults.Events[k], c.Faults.Ledger
			class := "direct"
			if g.isBroker() {
				class = keeps(g.driver, g.variant)
			}
			seen := fmt.Sprintf("lost %d, duplicated %d (redelivered %d), executed after timeout %d, failed calls %d", l.Lost, l.Duplicated, l.Redelivered, l.ExecutedAfterTimeout, c.Counts.Failed())
			label := fmt.Sprintf("%s, responder killed (%s, repetition %d): %s", g.label(), run.ID, c.Repetition, seen)
			cmp := Comparison{What: label, Metric: "lost requests", Outcome: Undecided,
				Cells: []CellRef{faultRef(g, run.ID, float64(l.Lost))}}
			switch {
			case ev.Error != "":
				cmp.Why = "the responder could not be killed or restarted: " + ev.Error
			case ev.At < 0:
				cmp.Why = "the responder was not killed (the cell ended first)"
			case l.Undrained:
				cmp.Why = "the ledger was not drained: later handlings are not counted"
			case l.OKUnrecorded > 0:
				cmp.Why = fmt.Sprintf("the ledger is broken (%d ok calls without a record)", l.OKUnrecorded)
			}
			if cmp.Why != "" {
				if class == "light" {
					f.notes = append(f.notes, label+": "+cmp.Why)
					continue
				}
				f.comparisons = append(f.comparisons, cmp)
				continue
			}
			switch class {
			case "durable":
				cmp.What = "durable MQ " + cmp.What
				cmp.Value, cmp.Threshold = ptr(float64(l.Lost)), 0
				cmp.Outcome = map[bool]Outcome{true: Holds, false: Fails}[l.Lost == 0]
			case "direct":
				n := l.Lost + l.ExecutedAfterTimeout + c.Counts.Failed()
				cmp.What = "direct " + cmp.What
				cmp.Metric = "lost, executed after timeout or failed calls"
				cmp.Value, cmp.Threshold = ptr(float64(n)), 0
				cmp.Cells = []CellRef{faultRef(g, run.ID, float64(n))}
				cmp.Outcome = map[bool]Outcome{true: Holds, false: Fails}[n > 0]
			default:
				// light MQ variants: no assertion, shown for what they are
				f.notes = append(f.notes, "not durable, no assertion: "+label)
				continue
			}
			f.comparisons = append(f.comparisons, cmp)
		}
	}
	if len(f.comparisons) == 0 {
		f.missing = append(f.missing, "no fault cells with kill-responder for a durable MQ variant or a direct driver in the data")
	} else {
		d.missingBrokers(&f)
	}
	f.notes = append(f.notes, "killing a broker process here loses nothing the page cache holds: fsync policies cannot be told apart by killing processes, only by a power loss")
	return f
}
