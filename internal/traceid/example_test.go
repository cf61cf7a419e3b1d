package traceid_test

import (
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/lookout-dev/lookout/internal/traceid"
)

// Trace IDs are read in any case and with or without leading zeros (Tempo's
// search results leave them out; an 8-byte ID is the low half), and written
// back in one form: 32 lower-case hex digits.
func ExampleParse() {
	for _, s := range []string{"4BF92F3577B34DA6A3CE929D0E0E4736", "c0ffee", "zz", "00000000000000000000000000000000"} {
		id, err := traceid.Parse(s)
		if err != nil {
			fmt.Println(err, errors.Is(err, traceid.ErrInvalid))
			continue
		}
		fmt.Println(hex.EncodeToString(id[:]))
	}
	// Output:
	// 4bf92f3577b34da6a3ce929d0e0e4736
	// 00000000000000000000000000c0ffee
	// invalid trace id "zz": not hexadecimal true
	// invalid trace id "00000000000000000000000000000000": all zeros true
}

// Span IDs follow the same rule, up to 16 hex digits.
func ExampleParseSpan() {
	id, err := traceid.ParseSpan("F067AA0BA902B7")
	fmt.Println(hex.EncodeToString(id[:]), err)
	// Output:
	// 00f067aa0ba902b7 <nil>
}

// An exemplar's trace ID is the first of TraceLabels whose value parses.
func ExampleFromLabels() {
	labels := map[string]string{"trace_id": "not-hex", "traceID": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7"}
	get := func(name string) string { return labels[name] }
	id, ok := traceid.FromLabels(get)
	span := traceid.SpanFromLabels(get)
	fmt.Println(hex.EncodeToString(id[:]), ok, hex.EncodeToString(span[:]))
	fmt.Println(traceid.TraceLabels, traceid.SpanLabels)
	// Output:
	// 4bf92f3577b34da6a3ce929d0e0e4736 true 00f067aa0ba902b7
	// [trace_id traceID] [span_id spanID]
}
