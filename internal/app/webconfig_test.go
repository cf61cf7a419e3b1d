package app

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"golang.org/x/crypto/bcrypt"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
)

// teamWebConfig writes a self-signed certificate for 127.0.0.1 and a web
// config file (exporter-toolkit's format) with TLS and one user, and
// returns the file and a certificate pool trusting the certificate.
func teamWebConfig(t *testing.T, user, pass string) (string, *x509.CertPool) {
	t.Helper()
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "lookout test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("cert.pem", certPEM)
	write("key.pem", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}))
	hash, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	// Relative certificate paths resolve against the file's directory.
	write("web.yml", []byte("tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\nbasic_auth_users:\n  "+user+": "+string(hash)+"\n"))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	return filepath.Join(dir, "web.yml"), pool
}

type basicAuth struct {
	user, pass string
	next       http.RoundTripper
}

func (b basicAuth) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.SetBasicAuth(b.user, b.pass)
	return b.next.RoundTrip(r)
}

// TestWebConfigFile: with --web.config.file every listener takes only TLS
// and a user of the file: the Prometheus API with client_golang, the Tempo
// API and the UI, OTLP/HTTP, and OTLP/gRPC with the OpenTelemetry SDK's
// exporter.
func TestWebConfigFile(t *testing.T) {
	path, pool := teamWebConfig(t, "team", "s3cret")
	cfg := testConfig(t)
	cfg.WebConfigFile = path
	a, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	runStarted(t, a)
	tlsTransport := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	defer tlsTransport.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// client_golang, over TLS with the team's password.
	client, err := api.NewClient(api.Config{Address: "https://" + a.PrometheusAddr(), RoundTripper: basicAuth{"team", "s3cret", tlsTransport}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := promv1.NewAPI(client).Buildinfo(ctx); err != nil {
		t.Errorf("client_golang with TLS and basic auth: %v", err)
	}
	wrong, _ := api.NewClient(api.Config{Address: "https://" + a.PrometheusAddr(), RoundTripper: basicAuth{"team", "guess", tlsTransport}})
	if _, err := promv1.NewAPI(wrong).Buildinfo(ctx); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("wrong password: %v, want 401", err)
	}

	get := func(url string, auth bool) int {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if auth {
			req.SetBasicAuth("team", "s3cret")
		}
		resp, err := (&http.Client{Transport: tlsTransport}).Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, u := range []string{
		"https://" + a.PrometheusAddr() + "/api/v1/query?query=up",
		"https://" + a.PrometheusAddr() + "/api/lookout/analyze?query=up&start=1&end=2",
		"https://" + a.TempoAddr() + "/api/echo",
		"https://" + a.UIAddr() + "/",
		"https://" + a.UIAddr() + "/prometheus/api/v1/query?query=up",
		"https://" + a.OTLPHTTPAddr() + "/v1/traces",
	} {
		if code := get(u, false); code != http.StatusUnauthorized {
			t.Errorf("GET %s without a password: %d, want 401", u, code)
		}
	}
	for _, u := range []string{"https://" + a.TempoAddr() + "/api/echo", "https://" + a.UIAddr() + "/"} {
		if code := get(u, true); code != http.StatusOK {
			t.Errorf("GET %s with the password: %d, want 200", u, code)
		}
	}
	// Plain HTTP to a TLS listener gets nothing useful.
	if resp, err := http.Get("http://" + a.PrometheusAddr() + "/api/v1/query?query=up"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("plain HTTP answered 200 on a TLS listener")
		}
	}
	// pprof is off unless asked for, with or without a password.
	if code := get("https://"+a.PrometheusAddr()+"/debug/pprof/", true); code != http.StatusNotFound {
		t.Errorf("/debug/pprof/ without --web.enable-pprof: %d, want 404", code)
	}

	// OTLP/gRPC: the SDK's exporter with TLS and the password in its
	// headers is accepted; without the password it is Unauthenticated.
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	_, span := tp.Tracer("test").Start(ctx, "checkout")
	span.End()
	_ = tp.Shutdown(ctx)
	creds := credentials.NewClientTLSFromCert(pool, "")
	authz := "Basic " + base64.StdEncoding.EncodeToString([]byte("team:s3cret"))
	for _, tc := range []struct {
		name    string
		headers map[string]string
		want    codes.Code
	}{
		{"with the password", map[string]string{"authorization": authz}, codes.OK},
		{"without", nil, codes.Unauthenticated},
	} {
		exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(a.OTLPGRPCAddr()), otlptracegrpc.WithTLSCredentials(creds),
			otlptracegrpc.WithHeaders(tc.headers), otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: false}))
		if err != nil {
			t.Fatal(err)
		}
		err = exp.ExportSpans(ctx, rec.Ended())
		_ = exp.Shutdown(ctx)
		if got := status.Code(unwrapGRPC(err)); got != tc.want {
			t.Errorf("OTLP/gRPC %s: %v, want %s", tc.name, err, tc.want)
		}
	}
	traceID := rec.Ended()[0].SpanContext().TraceID().String()
	if code := get("https://"+a.TempoAddr()+"/api/traces/"+traceID, true); code != http.StatusOK {
		t.Errorf("the span sent over OTLP/gRPC with TLS: GET its trace %d, want 200", code)
	}
}

// unwrapGRPC finds the gRPC status in an exporter's wrapped error.
func unwrapGRPC(err error) error {
	for e := err; e != nil; {
		if _, ok := status.FromError(e); ok {
			return e
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			break
		}
		e = u.Unwrap()
	}
	return err
}

// TestPprofFlag: --web.enable-pprof serves the profiler on the Prometheus
// listener, never under the UI listener's /prometheus/.
func TestPprofFlag(t *testing.T) {
	cfg := testConfig(t)
	cfg.EnablePprof = true
	a, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	runStarted(t, a)
	for url, want := range map[string]int{
		"http://" + a.PrometheusAddr() + "/debug/pprof/":             http.StatusOK,
		"http://" + a.UIAddr() + "/prometheus/debug/pprof/":          http.StatusNotFound,
		"http://" + a.UIAddr() + "/prometheus/api/v1/query?query=up": http.StatusOK,
	} {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", url, resp.StatusCode, want)
		}
	}
	// A web config file that does not parse stops start-up with its name.
	bad := filepath.Join(t.TempDir(), "web.yml")
	if err := os.WriteFile(bad, []byte("tls_server_config: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg = testConfig(t)
	cfg.WebConfigFile = bad
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "--web.config.file") {
		t.Errorf("bad web config: %v", err)
	}
}

// TestQueryLimitFlags: --query.max-samples stops a query that loads more,
// with Prometheus's error; --query.max-concurrency sizes the engine's queue
// (Prometheus's active query tracker, whose file is in the data dir).
func TestQueryLimitFlags(t *testing.T) {
	cfg := testConfig(t)
	cfg.QueryMaxSamples = 10
	cfg.QueryMaxConcurrency = 3
	a, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	runStarted(t, a)
	now := time.Now().Truncate(time.Second)
	for i := range 3 {
		b, err := pmetricotlp.NewExportRequestFromMetrics(paymentHistogram(now.Add(time.Duration(i-3)*time.Minute), uint64(10*i), nil)).MarshalProto()
		if err != nil {
			t.Fatal(err)
		}
		post(t, "http://"+a.OTLPHTTPAddr()+"/v1/metrics", b)
	}
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + a.PrometheusAddr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get("/api/v1/query?query=" + url.QueryEscape("webstore_payment_duration_bucket[10m]"))
	if code != 422 || !strings.Contains(body, "too many samples") {
		t.Errorf("15 samples with --query.max-samples 10: %d %s", code, body)
	}
	if code, body := get("/api/v1/query?query=" + url.QueryEscape("count(webstore_payment_duration_bucket)")); code != 200 {
		t.Errorf("5 samples: %d %s", code, body)
	}
	if _, body := get("/metrics"); !strings.Contains(body, "prometheus_engine_queries_concurrent_max 3") {
		t.Error("/metrics lacks prometheus_engine_queries_concurrent_max 3")
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "queries.active")); err != nil {
		t.Error(err)
	}
	bad := testConfig(t)
	bad.QueryMaxConcurrency, bad.QueryTimeout = 0, 0
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "--query.max-concurrency") || !strings.Contains(err.Error(), "--query.timeout") {
		t.Errorf("bad limits: %v", err)
	}
}
