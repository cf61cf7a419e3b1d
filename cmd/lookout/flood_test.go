package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// TestMemoryLimitBodyFlood floods the built binary, run with a small
// --memory.limit, with large valid OTLP bodies over HTTP and gRPC from many
// connections at once, and with bodies over --otlp.max-request-bytes. The
// peak RSS (VmHWM) must stay under the limit; the flood must be refused in
// part (429 / RESOURCE_EXHAUSTED) rather than taken whole (how much of it is
// stored depends on the machine); and afterwards Lookout must accept and
// serve a small request.
func TestMemoryLimitBodyFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	const limit = 384 << 20
	p := startLookout(t, buildLookout(t), t.TempDir(), "--memory.limit", strconv.Itoa(limit))
	body := floodTraces(t, 12<<20)
	oversized := make([]byte, 17<<20) // over the 16 MiB default --otlp.max-request-bytes

	conn, err := grpc.NewClient(p.otlpGRPC, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(32<<20)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	grpcClient := ptraceotlp.NewGRPCClient(conn)
	req := ptraceotlp.NewExportRequest()
	if err := req.UnmarshalProto(body); err != nil {
		t.Fatal(err)
	}

	var ok, refused, tooLarge atomic.Int64
	other := make(chan string, 1)
	note := func(s string) {
		select {
		case other <- s:
		default:
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 0, MaxIdleConnsPerHost: 256}}
	var wg sync.WaitGroup
	for i := range 160 {
		wg.Go(func() {
			for ctx.Err() == nil {
				switch {
				case i%4 == 3: // gRPC
					_, err := grpcClient.Export(ctx, req)
					switch status.Code(err) {
					case codes.OK:
						ok.Add(1)
					case codes.ResourceExhausted:
						refused.Add(1)
					case codes.DeadlineExceeded, codes.Canceled:
					default:
						note(fmt.Sprintf("gRPC: %v", err))
					}
				default:
					b := body
					if i%8 == 1 {
						b = oversized
					}
					r, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+p.otlp+"/v1/traces", bytes.NewReader(b))
					r.Header.Set("Content-Type", "application/x-protobuf")
					resp, err := client.Do(r)
					if err != nil {
						continue // the deadline, mid-request
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					switch resp.StatusCode {
					case http.StatusOK:
						ok.Add(1)
					case http.StatusTooManyRequests, http.StatusServiceUnavailable:
						refused.Add(1)
					case http.StatusRequestEntityTooLarge:
						tooLarge.Add(1)
					default:
						note(fmt.Sprintf("HTTP %d", resp.StatusCode))
					}
				}
			}
		})
	}
	wg.Wait()
	select {
	case s := <-other:
		t.Errorf("unexpected answer during the flood: %s", s)
	default:
	}
	peak := vmHWM(t, p.cmd.Process.Pid)
	t.Logf("flood: %d stored, %d refused (429/RESOURCE_EXHAUSTED), %d too large (413); peak RSS %d MiB of a %d MiB limit",
		ok.Load(), refused.Load(), tooLarge.Load(), peak>>20, limit>>20)
	if peak >= limit {
		t.Errorf("peak RSS %d MiB, over the %d MiB --memory.limit", peak>>20, limit>>20)
	}
	if refused.Load() == 0 || tooLarge.Load() == 0 {
		t.Errorf("want some requests refused and some too large; got %d and %d", refused.Load(), tooLarge.Load())
	}

	// After the flood Lookout takes a small request again, at once or after
	// the retries an OTLP exporter makes on 429 (within its 5 s backoff).
	now := time.Now().Add(-5 * time.Second)
	small := batch("after.flood", now, 3, "trace-after-flood")
	for try := 0; ; try++ {
		resp, err := http.Post("http://"+p.otlp+"/v1/metrics", "application/x-protobuf", bytes.NewReader(small))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Logf("after the flood: stored on try %d", try+1)
			break
		}
		if resp.StatusCode != http.StatusTooManyRequests || try == 10 {
			t.Fatalf("after the flood: %s on try %d", resp.Status, try+1)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if got := value(t, p, "after_flood"); got != "3" {
		t.Errorf("after the flood: after_flood = %q, want 3", got)
	}
}

// floodTraces is a valid OTLP/protobuf trace request of about size bytes.
func floodTraces(t *testing.T, size int) []byte {
	t.Helper()
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "flood")
	ss := rs.ScopeSpans().AppendEmpty().Spans()
	start := pcommon.NewTimestampFromTime(time.Now().Add(-time.Minute))
	for i := 0; ; i++ {
		s := ss.AppendEmpty()
		var tid [16]byte
		var sid [8]byte
		copy(tid[:], fmt.Sprintf("flood-%010d", i/8))
		copy(sid[:], fmt.Sprintf("%08d", i))
		s.SetTraceID(tid)
		s.SetSpanID(sid)
		s.SetName("GET /flood/" + strconv.Itoa(i%50))
		s.SetStartTimestamp(start)
		s.SetEndTimestamp(start + 1e6)
		s.Attributes().PutStr("http.route", "/flood/{id}")
		s.Attributes().PutInt("http.response.status_code", 200)
		if i%1000 == 999 {
			b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
			if err != nil {
				t.Fatal(err)
			}
			if len(b) >= size {
				return b
			}
		}
	}
}

// vmHWM is the process's peak resident set size, in bytes.
func vmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}
