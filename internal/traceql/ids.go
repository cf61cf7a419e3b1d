package traceql

import (
	"encoding/hex"
	"strings"
)

// span:id, span:parentID and trace:id are hex strings, compared as IDs
// rather than as text, as Tempo compares them (as bytes): case and leading
// zeros do not matter, so `span:id = "1"` is the span 0000000000000001.
// The parser stores the literal in the canonical form (lowercase, padded
// with zeros to 16 or 32 digits) that FieldValue reports, and accepts only
// = and != (and nil), the operators Tempo implements for IDs. A root's
// span:parentID is sixteen zeros.

// idDigits is the length in hex digits of the ID intrinsic i.
func idDigits(i Intrinsic) int {
	if i == IntrinsicTraceID {
		return 32
	}
	return 16
}

// normalizeHexID returns s as a canonical ID of n hex digits, or false
// when s is not hex or has more significant digits than fit.
func normalizeHexID(s string, n int) (string, bool) {
	s = strings.TrimLeft(strings.ToLower(s), "0")
	if len(s) > n {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return "", false
		}
	}
	return strings.Repeat("0", n-len(s)) + s, true
}

// idValue returns an ID as the canonical hex string.
func idValue(id []byte) Value { return StringValue(hex.EncodeToString(id)) }
