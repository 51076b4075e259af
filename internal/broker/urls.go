package broker

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/rpcbench/rpcbench/drivers"
)

// URL forms of each broker kind, for messages.
var urlForms = map[string]string{
	"nats":     "nats://[user:pass@]host[:4222] (several comma-separated; schemes nats, tls, ws, wss)",
	"rabbitmq": "amqp://[user:pass@]host[:5672]/[vhost] (or amqps://)",
	"rocketmq": "NAMESRV_HOST:PORT (several separated by ';'), e.g. 127.0.0.1:9876",
	"kafka":    "HOST:PORT (bootstrap brokers, several comma-separated), e.g. 127.0.0.1:9092",
	"activemq": "stomp://[user:pass@]HOST:PORT (a STOMP connector), e.g. stomp://127.0.0.1:61613",
}

// CheckURL checks that raw is an address a broker of kind is reached at,
// before anything is started: the error says what is wrong and the form
// wanted. It never repeats a password.
func CheckURL(kind, raw string) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%s: want %s", fmt.Sprintf(format, args...), urlForms[kind])
	}
	if strings.TrimSpace(raw) != raw || raw == "" {
		return bad("empty or surrounded by spaces")
	}
	// routes a run gave a responder to the delay proxies
	// (drivers.Rerouter: Kafka, RocketMQ)
	if kind == "kafka" || kind == "rocketmq" {
		base, _, err := drivers.SplitVia(raw)
		if err != nil {
			return bad("%v", err)
		}
		raw = base
	}
	// which, in a list of several, says which one is wrong
	which := func(list []string, one string) string {
		if len(list) == 1 {
			return ""
		}
		return fmt.Sprintf("%q: ", Redact(one))
	}
	switch kind {
	case "nats":
		list := strings.Split(raw, ",")
		for _, one := range list {
			s := strings.TrimSpace(one)
			if !strings.Contains(s, "://") {
				s = "nats://" + s // what nats.go does with host:port
			}
			u, err := url.Parse(s)
			if err != nil {
				return bad("%q is not a URL", Redact(one))
			}
			if !slices.Contains([]string{"nats", "tls", "ws", "wss"}, u.Scheme) {
				return bad("scheme %q is not a NATS scheme", u.Scheme)
			}
			if err := CheckHostPort(u.Host, false); err != nil {
				return bad("%s%v", which(list, one), err)
			}
		}
	case "rabbitmq":
		u, err := url.Parse(raw)
		if err != nil {
			return bad("not a URL")
		}
		if u.Scheme != "amqp" && u.Scheme != "amqps" {
			return bad("scheme %q is not amqp or amqps", u.Scheme)
		}
		if err := CheckHostPort(u.Host, false); err != nil {
			return bad("%v", err)
		}
	case "kafka":
		list := strings.Split(raw, ",")
		for _, one := range list {
			if strings.Contains(one, "://") {
				return bad("%sa bootstrap address has no scheme", which(list, one))
			}
			if err := CheckHostPort(strings.TrimSpace(one), true); err != nil {
				return bad("%s%v", which(list, one), err)
			}
		}
	case "activemq":
		u, err := url.Parse(raw)
		if err != nil {
			return bad("not a URL")
		}
		if u.Scheme != "stomp" {
			return bad("scheme %q is not stomp", u.Scheme)
		}
		if err := CheckHostPort(u.Host, true); err != nil {
			return bad("%v", err)
		}
		if (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return bad("a STOMP address has no path or query")
		}
	case "rocketmq":
		list := strings.Split(raw, ";")
		for _, one := range list {
			if strings.Contains(one, "://") {
				return bad("%sa name server address has no scheme", which(list, one))
			}
			if err := CheckHostPort(strings.TrimSpace(one), true); err != nil {
				return bad("%s%v", which(list, one), err)
			}
		}
	}
	return nil
}

// CheckHostPort checks a host[:port] (host:port when needPort).
func CheckHostPort(hp string, needPort bool) error { return drivers.CheckHostPort(hp, needPort) }

// userinfo matches the credentials of a URL: scheme://user:password@ or
// scheme://token@ (a NATS token).
var userinfo = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://)([^/?#@\s:\[\]]*)(:[^/?#@\s]*)?@`)

// Redact returns s with the password of every URL in it replaced by ***
// (amqp://user:***@host:5672/), and a bare user part of a NATS URL (a
// token) too (nats://***@host:4222). Text without credentials is returned
// unchanged.
func Redact(s string) string {
	return userinfo.ReplaceAllStringFunc(s, func(m string) string {
		g := userinfo.FindStringSubmatch(m)
		scheme, user, pass := g[1], g[2], g[3]
		switch {
		case pass != "":
			return scheme + user + ":***@"
		case user != "" && isNATSScheme(scheme):
			return scheme + "***@"
		}
		return m
	})
}

func isNATSScheme(scheme string) bool {
	s := strings.ToLower(strings.TrimSuffix(scheme, "://"))
	return s == "nats" || s == "tls" || s == "ws" || s == "wss"
}

// Secrets returns the credentials in broker URLs (passwords, NATS tokens),
// as given and URL-decoded, so that a message that quotes one outside of a
// URL can be redacted too.
func Secrets(urls ...string) []string {
	var out []string
	add := func(s string) {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	for _, raw := range urls {
		for _, m := range userinfo.FindAllStringSubmatch(raw, -1) {
			user, pass := m[2], strings.TrimPrefix(m[3], ":")
			if pass == "" && isNATSScheme(m[1]) {
				pass = user
			}
			add(pass)
			if d, err := url.PathUnescape(pass); err == nil {
				add(d)
			}
		}
	}
	return out
}

// RedactAll is Redact, then every one of secrets of at least 4 characters
// replaced by *** wherever it stands (shorter ones would garble the text:
// they are redacted inside URLs only).
func RedactAll(s string, secrets []string) string {
	s = Redact(s)
	for _, sec := range secrets {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, "***")
		}
	}
	return s
}
