package runner

import "testing"

func TestReplaceAddrs(t *testing.T) {
	swap := map[string]string{"127.0.0.1:4123": "127.0.0.1:50001", "127.0.0.1:9092": "127.0.0.1:50002"}
	for in, want := range map[string]string{
		"127.0.0.1:4123":             "127.0.0.1:50001",
		"amqp://u:p@127.0.0.1:4123/": "amqp://u:p@127.0.0.1:50001/",
		"127.0.0.1:41234#t":          "127.0.0.1:41234#t", // another port that starts the same
		"127.0.0.1:9092#t~via=127.0.0.1:9092>127.0.0.1:4123": "127.0.0.1:50002#t~via=127.0.0.1:50002>127.0.0.1:50001",
		"": "",
	} {
		if got := replaceAddrs(in, swap); got != want {
			t.Errorf("replaceAddrs(%q) = %q, want %q", in, got, want)
		}
	}
}
