package traceid

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tt := range []struct {
		in, want string // want "" means invalid
	}{
		{"4bf92f3577b34da6a3ce929d0e0e4736", "4bf92f3577b34da6a3ce929d0e0e4736"},
		{"4BF92F3577B34DA6A3CE929D0E0E4736", "4bf92f3577b34da6a3ce929d0e0e4736"},
		{"a3ce929d0e0e4736", "0000000000000000a3ce929d0e0e4736"}, // 8-byte ID
		{"abc", "00000000000000000000000000000abc"},              // leading zeros left out
		{"", ""},
		{"00000000000000000000000000000000", ""},
		{"4bf92f3577b34da6a3ce929d0e0e47360", ""}, // 33 digits
		{"zz", ""},
		{"4bf92f35-7b34da6a3ce929d0e0e4736", ""},
	} {
		id, err := Parse(tt.in)
		switch {
		case tt.want == "" && (err == nil || !errors.Is(err, ErrInvalid)):
			t.Errorf("Parse(%q) = %s, %v; want an ErrInvalid error", tt.in, id, err)
		case tt.want != "" && (err != nil || id.String() != tt.want):
			t.Errorf("Parse(%q) = %s, %v; want %s", tt.in, id, err, tt.want)
		}
	}
	if _, err := ParseSpan("00f067aa0ba902b7"); err != nil {
		t.Error(err)
	}
	if _, err := ParseSpan("00f067aa0ba902b700"); err == nil {
		t.Error("ParseSpan accepted 18 digits")
	}
}

func TestFromLabels(t *testing.T) {
	get := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	if id, ok := FromLabels(get(map[string]string{"trace_id": "zz", "traceID": "ab"})); !ok || !strings.HasSuffix(id.String(), "ab") {
		t.Errorf("fallback to traceID: %s %v", id, ok)
	}
	if _, ok := FromLabels(get(map[string]string{})); ok {
		t.Error("no labels: ok")
	}
	if id := SpanFromLabels(get(map[string]string{"spanID": "1"})); id.String() != "0000000000000001" {
		t.Errorf("span %s", id)
	}
}

// FuzzParse: IDs are outside input; what parses is at most 32 hex digits,
// not all zero, and formats back to itself left-padded.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"4bf92f3577b34da6a3ce929d0e0e4736", "", "0", "c0ffee", "zz", strings.Repeat("f", 33)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := Parse(s)
		if err != nil {
			return
		}
		if len(s) > 32 || id.IsEmpty() {
			t.Fatalf("accepted %q", s)
		}
		if got := id.String(); !strings.HasSuffix(got, strings.ToLower(s)) {
			t.Fatalf("%q formats as %s", s, got)
		}
	})
}
