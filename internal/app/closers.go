package app

import (
	"context"
	"errors"
	"fmt"
)

// closerStack holds the closes of the parts of an App, in the order the
// parts were opened, and runs them in reverse: a part closes before
// everything it was built on. It is not safe for concurrent use; New and
// Run use it from one goroutine.
type closerStack struct {
	closers []namedCloser
}

type namedCloser struct {
	what  string // what the close does, for its error: "close the trace store"
	close func(ctx context.Context) error
}

// push adds close on top of the stack; what says what it does.
func (s *closerStack) push(what string, close func(ctx context.Context) error) {
	s.closers = append(s.closers, namedCloser{what: what, close: close})
}

// close runs every close, the last pushed first, even after one failed,
// and empties the stack: a second call does nothing. It returns the
// failures joined, each naming its part. ctx bounds the closes that wait
// for work in flight (receivers, servers).
func (s *closerStack) close(ctx context.Context) error {
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		c := s.closers[i]
		if err := c.close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.what, err))
		}
	}
	s.closers = nil
	return errors.Join(errs...)
}
