package scenarios

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseServiceTime parses "0", "250us" (fixed) or "exp:250us".
func ParseServiceTime(s string) (ServiceTime, error) {
	raw := strings.TrimSpace(s)
	var out ServiceTime
	if rest, ok := strings.CutPrefix(raw, "exp:"); ok {
		out.Exponential = true
		raw = rest
	} else if rest, ok := strings.CutPrefix(raw, "fixed:"); ok {
		raw = rest
	}
	if raw == "0" {
		return ServiceTime{}, nil
	}
	d, err := time.ParseDuration(raw)
	if err != nil || d < 0 || d > time.Minute {
		return ServiceTime{}, fmt.Errorf("%q is not a service time: want 0, a duration such as 250us (fixed) or exp:250us (exponential with that mean), at most 1m", s)
	}
	out.Mean = d
	return out, nil
}

// ParseSize parses a byte size: 64, "1KiB", "4kb", "1MiB".
func ParseSize(s string) (int, error) {
	raw := strings.TrimSpace(s)
	mult := 1
	lower := strings.ToLower(raw)
	for _, u := range []struct {
		suffix string
		mult   int
	}{{"kib", 1 << 10}, {"mib", 1 << 20}, {"kb", 1000}, {"mb", 1000 * 1000}, {"k", 1 << 10}, {"m", 1 << 20}, {"b", 1}} {
		if strings.HasSuffix(lower, u.suffix) {
			mult = u.mult
			raw = strings.TrimSpace(raw[:len(raw)-len(u.suffix)])
			break
		}
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 0 || n > MaxPayload/mult {
		return 0, fmt.Errorf("%q is not a payload size: want bytes from 0 to 64MiB, e.g. 64, 1KiB, 1MiB", s)
	}
	return n * mult, nil
}
