// Package webauth applies one web configuration file, in Prometheus's
// exporter-toolkit format (tls_server_config, basic_auth_users,
// http_server_config), to every Lookout listener: the HTTP ones through
// exporter-toolkit itself, OTLP/gRPC through the same file's TLS settings
// and bcrypt-hashed users. An empty path means plain HTTP and gRPC without
// authentication, as before.
package webauth

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/prometheus/exporter-toolkit/web"
	"go.yaml.in/yaml/v2"
	"golang.org/x/crypto/bcrypt"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Validate checks the file as exporter-toolkit will read it: YAML, TLS
// files, bcrypt hashes. An empty path is valid.
func Validate(path string) error {
	if path == "" {
		return nil
	}
	if err := web.Validate(path); err != nil {
		return fmt.Errorf("web config file %s: %w", path, err)
	}
	return nil
}

// Serve serves srv on ln with the file's TLS and basic authentication
// (exporter-toolkit's web.Serve, which re-reads the file on each new
// connection and request, so certificates and users can change without a
// restart).
func Serve(ln net.Listener, srv *http.Server, path string, logger *slog.Logger) error {
	return web.Serve(ln, srv, &web.FlagConfig{WebConfigFile: &path}, logger)
}

// read parses the file into exporter-toolkit's configuration type, with
// its defaults, resolving relative certificate paths as it does.
func read(path string) (*web.Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c := &web.Config{}
	if err := yaml.UnmarshalStrict(b, c); err != nil {
		return nil, fmt.Errorf("web config file %s: %w", path, err)
	}
	c.TLSConfig.SetDirectory(filepath.Dir(path))
	return c, nil
}

// GRPCServerOptions returns the options that give a gRPC server the file's
// TLS (when tls_server_config sets a certificate) and basic authentication
// (when basic_auth_users is set: "authorization: Basic …" metadata, as the
// OpenTelemetry exporters send with OTEL_EXPORTER_OTLP_HEADERS). Users are
// read at start; certificates on each handshake.
func GRPCServerOptions(path string) ([]grpc.ServerOption, error) {
	if path == "" {
		return nil, nil
	}
	c, err := read(path)
	if err != nil {
		return nil, err
	}
	var opts []grpc.ServerOption
	if c.TLSConfig.IsEnabled() {
		tc, err := web.ConfigToTLSConfig(&c.TLSConfig)
		if err != nil {
			return nil, fmt.Errorf("web config file %s: %w", path, err)
		}
		tc.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
			c, err := read(path)
			if err != nil {
				return nil, err
			}
			return web.ConfigToTLSConfig(&c.TLSConfig)
		}
		opts = append(opts, grpc.Creds(credentials.NewTLS(tc)))
	}
	if len(c.Users) > 0 {
		a := &authenticator{users: map[string]string{}, ok: map[[32]byte]bool{}}
		for u, h := range c.Users {
			a.users[u] = string(h)
		}
		opts = append(opts, grpc.ChainUnaryInterceptor(a.unary), grpc.ChainStreamInterceptor(a.stream))
	}
	return opts, nil
}

// ErrUnauthenticated is what a request without valid credentials gets.
var ErrUnauthenticated = errors.New("basic authentication required: send an authorization: Basic header with a user of the web config file")

// authenticator checks gRPC basic authentication against bcrypt hashes,
// remembering verdicts (bcrypt costs tens of milliseconds by design) by a
// hash of user, password and stored hash.
type authenticator struct {
	users map[string]string
	mu    sync.Mutex
	ok    map[[32]byte]bool
}

// fakeHash is compared for unknown users, so a request takes as long for
// them as for known ones.
const fakeHash = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi"

func (a *authenticator) check(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get("authorization") {
		enc, found := strings.CutPrefix(v, "Basic ")
		if !found {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			continue
		}
		user, pass, _ := strings.Cut(string(raw), ":")
		hash, known := a.users[user]
		if !known {
			hash = fakeHash
		}
		key := sha256.Sum256([]byte(user + "\x00" + pass + "\x00" + hash))
		a.mu.Lock()
		good, cached := a.ok[key]
		if !cached {
			good = known && bcrypt.CompareHashAndPassword([]byte(hash), []byte(pass)) == nil
			if len(a.ok) > 1024 {
				clear(a.ok)
			}
			a.ok[key] = good
		}
		a.mu.Unlock()
		if good {
			return nil
		}
	}
	return status.Error(codes.Unauthenticated, ErrUnauthenticated.Error())
}

func (a *authenticator) unary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if err := a.check(ctx); err != nil {
		return nil, err
	}
	return h(ctx, req)
}

func (a *authenticator) stream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if err := a.check(ss.Context()); err != nil {
		return err
	}
	return h(srv, ss)
}
