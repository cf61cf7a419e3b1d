package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRunUsage(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
	}{
		{"no args prints usage", nil, 2, "Usage:"},
		{"unknown command", []string{"bogus"}, 2, `unknown command "bogus"`},
		{"help", []string{"help"}, 0, "webstore serve"},
		{"serve -h", []string{"serve", "-h"}, 0, "-provider-latency"},
		{"serve bad flag", []string{"serve", "--nope"}, 1, "flag provided but not defined"},
		{"serve extra args", []string{"serve", "extra"}, 2, "unexpected arguments"},
		{"traffic -h", []string{"traffic", "-h"}, 0, "-scenario"},
		{"traffic remote target", []string{"traffic", "--target", "http://example.com"}, 1, "not a loopback address"},
		{"traffic bad scenario", []string{"traffic", "--scenario", "chaos"}, 1, "unknown scenario"},
		{"serve bad faults", []string{"serve", "--payment-failure-rate", "3", "--data-dir", "DATA"}, 1, "payment_failure_rate must be between 0 and 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			for i, a := range args {
				if a == "DATA" {
					args[i] = t.TempDir()
				}
			}
			var stdout, stderr bytes.Buffer
			code := run(args, &stdout, &stderr)
			if code != tc.wantCode {
				t.Errorf("exit code %d, want %d\nstdout: %s\nstderr: %s", code, tc.wantCode, stdout.String(), stderr.String())
			}
			if out := stdout.String() + stderr.String(); !strings.Contains(out, tc.wantOut) {
				t.Errorf("output lacks %q:\n%s", tc.wantOut, out)
			}
		})
	}
}
