package broker

import (
	"strings"
	"testing"
)

func TestParseExternalChecksURLs(t *testing.T) {
	kinds := []string{"nats", "rabbitmq", "rocketmq"}
	for _, ok := range []string{
		"nats=nats://127.0.0.1:4222", "nats=nats://u:p@h:4222,nats://h2:4222", "nats=127.0.0.1:4222", "nats=tls://h",
		"rabbitmq=amqp://guest:guest@127.0.0.1:5672/", "rabbitmq=amqps://u:p@[::1]:5671/vh", "rabbitmq=amqp://h",
		"rocketmq=127.0.0.1:9876", "rocketmq=a:9876;b:9876", "rocketmq=[::1]:9876",
	} {
		if _, err := ParseExternal([]string{ok}, kinds); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, tc := range []struct{ v, want string }{
		{"rabbitmq=http://guest:s3cret@h:15672/", `scheme "http" is not amqp or amqps`},
		{"rabbitmq=amqp://u:s3cret@:5672/", "no host"},
		{"rabbitmq=amqp://u:s3cret@h:99999/", `port "99999"`},
		{"rocketmq=nohostport", "nohostport: no port: want NAMESRV_HOST:PORT"},
		{"rocketmq=h:0", `port "0"`},
		{"rocketmq=http://h:9876", "has no scheme"},
		{"nats=::::", "not HOST:PORT"},
		{"nats=http://h:4222", `scheme "http" is not a NATS scheme`},
		{"nats=nats://s3cret@h:x", `"nats://***@h:x" is not a URL`},
		{"nats= nats://h", "surrounded by spaces"},
		{"nats=nats://a:1", ""}, // then a second one
	} {
		vals := []string{tc.v}
		if tc.want == "" {
			vals, tc.want = []string{tc.v, tc.v}, "a second nats broker"
		}
		_, err := ParseExternal(vals, kinds)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.v, err, tc.want)
			continue
		}
		kind, _, _ := strings.Cut(tc.v, "=")
		if !strings.HasPrefix(err.Error(), "--broker ") || len(vals) == 1 && !strings.Contains(err.Error(), "want "+urlForms[kind]) {
			t.Errorf("%s: %q does not name the flag and the form wanted", tc.v, err)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: the message repeats the password: %q", tc.v, err)
		}
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"amqp://user:pass@host:5672/":                    "amqp://user:***@host:5672/",
		"dial amqp://guest:guest@127.0.0.1:5672/vh: EOF": "dial amqp://guest:***@127.0.0.1:5672/vh: EOF",
		"nats://tok3n@h:4222,nats://u:p%40ss@h2:4222":    "nats://***@h:4222,nats://u:***@h2:4222",
		"amqp://guest@h/":                                "amqp://guest@h/",
		"127.0.0.1:9876":                                 "127.0.0.1:9876",
		"no url here: user:pass@host":                    "no url here: user:pass@host",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
	sec := Secrets("amqp://u:p%40ssword@h/", "nats://tok3n@h", "rocketmq-has-none:9876")
	if strings.Join(sec, " ") != "p%40ssword p@ssword tok3n" {
		t.Errorf("Secrets = %q", sec)
	}
	if got := RedactAll("auth failed for p@ssword (tok3n)", sec); got != "auth failed for *** (***)" {
		t.Errorf("RedactAll = %q", got)
	}
}
