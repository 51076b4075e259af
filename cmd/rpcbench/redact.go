package main

import (
	"io"
	"reflect"
	"sync"

	"github.com/rpcbench/rpcbench/internal/broker"
	"github.com/rpcbench/rpcbench/results"
)

// redactor keeps broker credentials out of everything a run writes or
// prints: result.json, the reports, stdout, stderr and its errors. Every
// URL's password (and NATS token) becomes ***, and so does any credential
// of the brokers in use quoted outside of a URL.
type redactor struct {
	mu      sync.Mutex
	secrets []string
}

func newRedactor(urls ...string) *redactor {
	r := &redactor{}
	r.add(urls...)
	return r
}

// add takes the credentials of more broker URLs (or --broker KIND=URL
// values).
func (r *redactor) add(urls ...string) {
	s := broker.Secrets(urls...)
	r.mu.Lock()
	r.secrets = append(r.secrets, s...)
	r.mu.Unlock()
}

func (r *redactor) text(s string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return broker.RedactAll(s, r.secrets)
}

// writer redacts each write to w. Progress output writes whole lines or
// whole bar updates at a time, so a credential is never split between
// two writes.
func (r *redactor) writer(w io.Writer) io.Writer { return redactWriter{r, w} }

type redactWriter struct {
	r *redactor
	w io.Writer
}

func (rw redactWriter) Write(p []byte) (int, error) {
	if _, err := io.WriteString(rw.w, rw.r.text(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}

// err returns err with its message redacted; errors.Is and errors.As
// still see the original.
func (r *redactor) err(err error) error {
	if err == nil {
		return nil
	}
	if msg := r.text(err.Error()); msg != err.Error() {
		return &redactedErr{msg: msg, err: err}
	}
	return err
}

type redactedErr struct {
	msg string
	err error
}

func (e *redactedErr) Error() string { return e.msg }
func (e *redactedErr) Unwrap() error { return e.err }

// run redacts every string of run in place (broker URLs, cell errors and
// warnings, skip reasons, notes...), histograms excepted.
func (r *redactor) run(run *results.Run) {
	r.value(reflect.ValueOf(run))
}

var histogramsType = reflect.TypeOf(results.Histograms{})

func (r *redactor) value(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			r.value(v.Elem())
		}
	case reflect.Struct:
		if v.Type() == histogramsType {
			return
		}
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				r.value(v.Field(i))
			}
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			r.value(v.Index(i))
		}
	case reflect.Map:
		if v.Type().Elem().Kind() == reflect.String && v.Type().Key().Kind() == reflect.String {
			for _, k := range v.MapKeys() {
				s := v.MapIndex(k).String()
				if red := r.text(s); red != s {
					v.SetMapIndex(k, reflect.ValueOf(red).Convert(v.Type().Elem()))
				}
			}
			return
		}
		for _, k := range v.MapKeys() {
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(v.MapIndex(k))
			r.value(e)
			v.SetMapIndex(k, e)
		}
	case reflect.String:
		if v.CanSet() {
			v.SetString(r.text(v.String()))
		}
	}
}
