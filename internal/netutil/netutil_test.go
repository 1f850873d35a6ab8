package netutil

import "testing"

func TestIsLoopbackHost(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost":        true,
		"LocalHost":        true,
		"localhost.":       true,
		"127.0.0.1":        true,
		"127.9.8.7":        true,
		"::1":              true,
		"::ffff:127.0.0.1": true,
		"":                 false,
		"localhost.evil":   false,
		"evil.localhost":   false,
		"10.0.0.1":         false,
		"::":               false,
		"0.0.0.0":          false,
		"example.com":      false,
		"128.0.0.1":        false,
	} {
		if got := IsLoopbackHost(host); got != want {
			t.Errorf("IsLoopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}
