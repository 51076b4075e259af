package gozero

// WithoutClientBreaker turns the client breaker off in t. go-zero v1.10.3's
// breaker races within itself once it opens (core/breaker/breaker.go:268,
// errorWindow.String reads count outside its lock while errorWindow.add
// writes it under the lock): the failure-path tests of the middleware
// variant, which open the breaker, use it when built with -race.
func WithoutClientBreaker(t *Transport) *Transport {
	c := *t
	c.noClientBreaker = true
	return &c
}
