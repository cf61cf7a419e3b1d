package shop

import (
	"fmt"
	"os"
	"os/signal"
	"testing"

	"go.uber.org/goleak"
)

// sinkProcessEnv makes the test binary act as a stand-alone OTLP receiver
// (see startOTLPSinkProcess), so benchmarks can keep the receiver's CPU out
// of the measured process.
const sinkProcessEnv = "WEBSTORE_TEST_OTLP_SINK_PROCESS"

func TestMain(m *testing.M) {
	if os.Getenv(sinkProcessEnv) == "1" {
		runSinkProcess()
		return
	}
	goleak.VerifyTestMain(m)
}

// runSinkProcess serves a counting OTLP/gRPC receiver, prints its address on
// stdout and runs until stdin closes or it is interrupted.
func runSinkProcess() {
	sink, err := newOTLPSink()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sink.countOnly = true
	fmt.Println(sink.addr)
	done := make(chan struct{})
	go func() {
		buf := make([]byte, 1)
		for {
			if _, err := os.Stdin.Read(buf); err != nil {
				close(done)
				return
			}
		}
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt)
	select {
	case <-done:
	case <-sig:
	}
	sink.stop()
}
