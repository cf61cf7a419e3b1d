package webauth

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/bcrypt"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

func TestAuthenticator(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "web.yml")
	if err := os.WriteFile(path, []byte("basic_auth_users:\n  team: "+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := GRPCServerOptions(path)
	if err != nil || len(opts) != 2 { // no TLS: the two interceptors only
		t.Fatalf("options %d, %v", len(opts), err)
	}
	a := &authenticator{users: map[string]string{"team": string(hash)}, ok: map[[32]byte]bool{}}
	basic := func(s string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, tt := range []struct {
		name  string
		authz []string
		ok    bool
	}{
		{"right", []string{basic("team:s3cret")}, true},
		{"right again (cached)", []string{basic("team:s3cret")}, true},
		{"wrong password", []string{basic("team:guess")}, false},
		{"unknown user", []string{basic("eve:s3cret")}, false},
		{"no header", nil, false},
		{"bearer", []string{"Bearer s3cret"}, false},
		{"not base64", []string{"Basic ***"}, false},
		{"no colon", []string{basic("team")}, false},
		{"second header right", []string{"Basic ***", basic("team:s3cret")}, true},
	} {
		ctx := context.Background()
		if tt.authz != nil {
			ctx = metadata.NewIncomingContext(ctx, metadata.MD{"authorization": tt.authz})
		}
		err := a.check(ctx)
		if (err == nil) != tt.ok || (err != nil && status.Code(err) != codes.Unauthenticated) {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
	if err := Validate(filepath.Join(t.TempDir(), "missing.yml")); err == nil {
		t.Error("a missing file validated")
	}
	if err := Validate(""); err != nil {
		t.Errorf("no file: %v", err)
	}
}
