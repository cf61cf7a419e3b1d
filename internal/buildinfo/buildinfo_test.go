package buildinfo

import (
	"runtime/debug"
	"testing"
)

func TestFrom(t *testing.T) {
	vcs := func(kv ...string) *debug.BuildInfo {
		bi := &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}
		for i := 0; i < len(kv); i += 2 {
			bi.Settings = append(bi.Settings, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return bi
	}
	rev := "0123456789abcdef0123456789abcdef01234567"
	for _, tc := range []struct {
		name    string
		stamped string
		bi      *debug.BuildInfo
		want    Info
	}{
		{"stamped wins", "v0.3.0-2-gabc", vcs("vcs.revision", rev), Info{Version: "v0.3.0-2-gabc", Revision: rev}},
		{"stamped, no VCS", "abc1234-dirty", vcs(), Info{Version: "abc1234-dirty", Revision: "abc1234-dirty"}},
		{"VCS only", "", vcs("vcs.revision", rev, "vcs.time", "2026-12-06T20:00:00+01:00", "vcs.modified", "true"),
			Info{Version: "0123456789ab-dirty", Revision: rev, Date: "2026-12-06T19:00:00Z"}},
		{"module version", "", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}, Info{Version: "v1.2.3"}},
		{"nothing", "", vcs(), Info{Version: "unknown"}},
		{"no build info", "", nil, Info{Version: "unknown"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := from(tc.stamped, tc.bi); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
