package traceql

import (
	"context"
	"slices"
	"testing"
)

func TestParseIDs(t *testing.T) {
	cases := []struct{ in, want string }{
		{`{ span:id = "00000000000000AB" }`, `{ span:id = "00000000000000ab" }`},
		{`{ span:id = "1" }`, `{ span:id = "0000000000000001" }`},
		{`{ span:parentID != "0102030405060708" }`, `{ span:parentID != "0102030405060708" }`},
		{`{ trace:id = "abc" }`, `{ trace:id = "00000000000000000000000000000abc" }`},
		{`{ span:id != nil }`, `{ span:id != nil }`},
		{`{ span:name = "x" && span:status = error && span:statusMessage = "m" && span:kind = server && span:duration > 1s }`,
			`{ ((((name = "x" && status = error) && statusMessage = "m") && kind = server) && duration > 1s) }`},
		{`{ trace:duration > 1s && trace:rootName = "r" && trace:rootService = "s" }`,
			`{ ((traceDuration > 1s && rootName = "r") && rootServiceName = "s") }`},
	}
	for _, c := range cases {
		e, err := Parse(c.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", c.in, err)
			continue
		}
		if got := e.String(); got != c.want {
			t.Errorf("Parse(%q) = %s, want %s", c.in, got, c.want)
		}
	}
	checkParseErrors(t, []badParse{
		{`{ span:id > "1" }`, "IDs take = or !=", false},
		{`{ span:id =~ "1.*" }`, "IDs take = or !=", false},
		{`{ span:id = 1 }`, "IDs take = or !=", false},
		{`{ span:id = "xyz" }`, "expected at most 16 hex digits", false},
		{`{ span:id = "11112222333344445" }`, "expected at most 16 hex digits", false},
		{`{ trace:id = "g" }`, "expected at most 32 hex digits", false},
		{`{ span:childCount > 1 }`, "the intrinsic span:childCount", true},
	})
	tr := testTrace()
	tr.Info.TraceID = [16]byte{15: 0xab}
	for _, c := range []struct {
		q    string
		want []int
	}{
		{`{ span:id = "0300000000000000" }`, []int{2}},
		{`{ span:id != "0300000000000000" }`, []int{0, 1, 3}},
		{`{ span:parentID = "0100000000000000" }`, []int{1, 3}},
		{`{ span:parentID = "0" }`, []int{0}}, // a root's parent ID is zeros
		{`{ trace:id = "AB" }`, []int{0, 1, 2, 3}},
		{`{ trace:id = "00000000000000000000000000000ab" }`, []int{0, 1, 2, 3}},
		{`{ trace:id != "ab" }`, nil},
	} {
		e := MustParse(c.q)
		got, err := Eval(context.Background(), e, tr)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("Eval(%q) = %v, want %v", c.q, got, c.want)
		}
		if SpanLocal(e) == NeedsTraceInfo(e) {
			t.Errorf("%s: SpanLocal %v, NeedsTraceInfo %v", c.q, SpanLocal(e), NeedsTraceInfo(e))
		}
	}
}
