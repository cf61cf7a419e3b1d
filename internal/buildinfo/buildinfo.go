// Package buildinfo reports what Lookout was built from: the version the
// build stamped (make passes `git describe` through -ldflags) or, without
// it, the VCS revision Go recorded, and when.
package buildinfo

import (
	"runtime/debug"
	"time"
)

// version is set at link time:
//
//	go build -ldflags "-X github.com/lookout-dev/lookout/internal/buildinfo.version=$(git describe --tags --always --dirty)"
var version string

// Info is what Get reports.
type Info struct {
	// Version is the stamped version, else the module version Go
	// recorded, else the short VCS revision, else "unknown".
	Version string
	// Revision is the full VCS revision when Go recorded one (builds with
	// -buildvcs), else the stamped version.
	Revision string
	// Date is the commit time when Go recorded one, RFC 3339; else empty.
	Date string
}

// Get returns the build's Info.
func Get() Info {
	bi, _ := debug.ReadBuildInfo()
	return from(version, bi)
}

func from(stamped string, bi *debug.BuildInfo) Info {
	info := Info{Version: stamped, Revision: stamped}
	if bi == nil {
		if info.Version == "" {
			info.Version = "unknown"
		}
		return info
	}
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Revision = s.Value
		case "vcs.time":
			if t, err := time.Parse(time.RFC3339, s.Value); err == nil {
				info.Date = t.UTC().Format(time.RFC3339)
			}
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	switch {
	case info.Version != "":
	case bi.Main.Version != "" && bi.Main.Version != "(devel)":
		info.Version = bi.Main.Version
	case len(info.Revision) >= 12:
		info.Version = info.Revision[:12]
		if modified {
			info.Version += "-dirty"
		}
	default:
		info.Version = "unknown"
	}
	return info
}
