// Package pebbleslog adapts a *slog.Logger to Pebble's logger interface, for
// the Pebble-backed stores (trace store, exemplar index).
package pebbleslog

import (
	"fmt"
	"log/slog"

	"github.com/cockroachdb/pebble/v2"
)

// Logger logs Pebble's informational messages at debug level and its errors
// at error level, tagged component=pebble.
type Logger struct{ L *slog.Logger }

var _ pebble.Logger = Logger{}

// Infof logs at debug level: Pebble is chatty about flushes and compactions.
func (p Logger) Infof(format string, args ...any) {
	p.L.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}

// Errorf logs at error level.
func (p Logger) Errorf(format string, args ...any) {
	p.L.Error(fmt.Sprintf(format, args...), "component", "pebble")
}

// Fatalf logs at error level and panics, as Pebble expects Fatalf not to return.
func (p Logger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.L.Error(msg, "component", "pebble")
	panic("pebble: " + msg)
}
