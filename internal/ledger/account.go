package ledger

import (
	"math"
	"slices"
	"time"

	"github.com/rpcbench/rpcbench/results"
)

// Outcome is what a caller saw of one call.
type Outcome uint8

const (
	// NotSent: the call was due but never started (every slot busy past
	// its timeout), or the driver said it never sent it (ErrNotSent).
	NotSent Outcome = iota
	// OK: the reply came back, correct, by the deadline.
	OK
	// Failed: the call timed out or failed otherwise.
	Failed
)

// Call is the caller side's record of one call. Times are offsets from the
// start of the cell's load.
type Call struct {
	ID uint64
	// Intended is when the call was due; Start when it counts from (the
	// intended start plus the generator's own lateness); End when it
	// ended (NotSent: its intended start plus its timeout).
	Intended, Start, End time.Duration
	Outcome              Outcome
	// Acked: the call failed after the broker had acknowledged its
	// request (drivers.ErrAcknowledged).
	Acked bool
}

// Account joins what the callers saw with what the responders recorded:
// every call is classified once (see results.Ledger). acks says whether
// the driver reports the broker's acknowledgements (then
// LostAcknowledged is counted, else left null).
func Account(calls []Call, recs []Record, acks bool) results.Ledger {
	var l results.Ledger
	handled := make(map[uint64]int, len(recs))
	incs := map[uint32]bool{}
	MarkRedelivered(recs)
	for _, r := range recs {
		handled[r.ID]++
		incs[r.Incarnation] = true
		if r.Redelivered {
			l.Redelivered++
		}
	}
	l.Handlings = int64(len(recs))
	l.Incarnations = len(incs)
	attempted := make(map[uint64]bool, len(calls))
	var lostAcked int64
	for _, c := range calls {
		attempted[c.ID] = true
		n := handled[c.ID]
		if c.Outcome == NotSent && n == 0 {
			l.NotSent++
			continue
		}
		// (a call said not sent that was handled counts as sent: the
		// responder's record wins)
		l.Attempted++
		switch {
		case n == 0:
			l.Lost++
			if c.Outcome == OK {
				l.OKUnrecorded++
			}
			if c.Acked {
				lostAcked++
			}
		case n > 1:
			l.Duplicated++
			if c.Outcome == OK {
				l.DuplicatedOK++
			}
		case c.Outcome == OK:
			l.ExactlyOnce++
		default:
			l.ExecutedAfterTimeout++
		}
	}
	for id, n := range handled {
		if !attempted[id] {
			l.Unexpected += int64(n)
		}
	}
	if acks {
		l.LostAcknowledged = &lostAcked
	}
	return l
}

// Timeline buckets the calls into steps of step from 0 to until: the calls
// that ended in each step, those in flight at its end, and the ok calls'
// latency percentiles (from Start).
func Timeline(calls []Call, step, until time.Duration) []results.TimelinePoint {
	n := int((until + step - 1) / step)
	if n <= 0 {
		return nil
	}
	pts := make([]results.TimelinePoint, n)
	lats := make([][]time.Duration, n)
	// in flight at the end of step k: started at or before it, ended after
	diff := make([]int64, n+1)
	for _, c := range calls {
		end := int(c.End / step)
		if c.Outcome != NotSent {
			s := int(c.Start / step)
			// in flight at the ends of steps s .. end-1
			if s < n && end > s {
				diff[s]++
				diff[min(end, n)]--
			}
		}
		if end < 0 || end >= n {
			continue
		}
		if c.Outcome == OK {
			pts[end].OK++
			lats[end] = append(lats[end], c.End-c.Start)
		} else {
			pts[end].Failed++
		}
	}
	var run int64
	for k := range pts {
		run += diff[k]
		pts[k].T = math.Round(float64(time.Duration(k)*step)/1e6) / 1e3
		pts[k].InFlight = run
		if l := lats[k]; len(l) > 0 {
			slices.Sort(l)
			pts[k].P50 = us(quantile(l, 0.50))
			pts[k].P99 = us(quantile(l, 0.99))
		}
	}
	return pts
}

func us(d time.Duration) float64 { return math.Round(float64(d)/10) / 100 }

// quantile of sorted values (nearest rank).
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// Recovery windows: the baseline is the p99 of the calls started in the
// BaselineWindow before the fault; a window of RecoveryWindow after the
// restore has recovered when its calls all succeeded with a p99 within
// RecoveryFactor of the baseline, and the p99 is back at the first window
// start from which every window for RecoveryHold is recovered.
const (
	BaselineWindow = 2 * time.Second
	RecoveryWindow = 500 * time.Millisecond
	RecoveryStep   = 100 * time.Millisecond
	RecoveryHold   = 2 * time.Second
	RecoveryFactor = 1.5
	// minWindowCalls is the fewest calls a window needs to say anything.
	minWindowCalls = 5
)

// Recovery fills in ev's recovery times: at and restore are the fault's
// and its restore's offsets, end the end of the load (or the next fault).
func Recovery(calls []Call, at, restore, end time.Duration, ev *results.FaultEvent) {
	byStart := slices.Clone(calls)
	slices.SortFunc(byStart, func(a, b Call) int { return cmpDur(a.Intended, b.Intended) })
	window := func(from, to time.Duration) (p99 time.Duration, n int, failed bool) {
		var lat []time.Duration
		for _, c := range byStart {
			if c.Intended < from {
				continue
			}
			if c.Intended >= to {
				break
			}
			if c.Outcome != OK {
				failed = true
				continue
			}
			lat = append(lat, c.End-c.Start)
		}
		slices.Sort(lat)
		return quantile(lat, 0.99), len(lat), failed
	}
	base, n, _ := window(max(0, at-BaselineWindow), at)
	if n >= minWindowCalls {
		ev.BaselineP99Us = us(base)
	}
	first := time.Duration(-1)
	for _, c := range calls {
		if c.Outcome == OK && c.End >= restore && (first < 0 || c.End < first) {
			first = c.End
		}
	}
	if first >= 0 {
		ms := float64(first-restore) / 1e6
		ev.FirstOKMs = &ms
	}
	if n < minWindowCalls {
		return
	}
	bound := time.Duration(float64(base) * RecoveryFactor)
	// the earliest t after the restore from which every window for
	// RecoveryHold is recovered
	var rec time.Duration = -1
	for t := restore; t+RecoveryWindow <= end; t += RecoveryStep {
		p99, k, failed := window(t, t+RecoveryWindow)
		ok := !failed && k >= minWindowCalls && p99 <= bound
		switch {
		case ok && rec < 0:
			rec = t
		case !ok:
			rec = -1
		}
		if rec >= 0 && t+RecoveryWindow-rec >= RecoveryHold {
			break
		}
	}
	if rec >= 0 && end-rec < RecoveryHold {
		rec = -1 // recovered too close to the end to tell
	}
	if rec >= 0 {
		ms := float64(rec-restore) / 1e6
		ev.RecoveredMs = &ms
	}
}

func cmpDur(a, b time.Duration) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
