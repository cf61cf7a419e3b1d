// Package memlimit picks Lookout's default memory limit from the machine:
// the cgroup's limit when the process runs in one (a container), else the
// physical memory.
package memlimit

import (
	"bufio"
	"bytes"
	"io/fs"
	"os"
	"strconv"
	"strings"
)

// Floor is the smallest default on a machine without a cgroup limit:
// below it Lookout would refuse ingest before its stores are warm.
const Floor = 512 << 20

// Default returns the default limit for the running machine: 80% of the
// cgroup's memory limit when one is set (the container is Lookout's), else
// a quarter of the physical memory (the machine is shared) but at least
// Floor; 0 when neither can be read.
func Default() uint64 {
	return FromFS(os.DirFS("/"))
}

// FromFS is Default reading sys/fs/cgroup and proc/meminfo under root.
func FromFS(root fs.FS) uint64 {
	if l, ok := cgroupLimit(root); ok {
		return l / 10 * 8
	}
	if total, ok := memTotal(root); ok {
		return min(max(total/4, Floor), total)
	}
	return 0
}

// cgroupLimit reads cgroup v2's memory.max, then v1's
// memory.limit_in_bytes; "max" or v1's huge "unlimited" mean no limit.
func cgroupLimit(root fs.FS) (uint64, bool) {
	for _, p := range []string{"sys/fs/cgroup/memory.max", "sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := fs.ReadFile(root, p)
		if err != nil {
			continue
		}
		v, err := strconv.ParseUint(string(bytes.TrimSpace(b)), 10, 64)
		if err != nil || v >= 1<<60 {
			return 0, false // "max", or unlimited
		}
		return v, true
	}
	return 0, false
}

// memTotal reads MemTotal from /proc/meminfo.
func memTotal(root fs.FS) (uint64, bool) {
	f, err := root.Open("proc/meminfo")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.ParseUint(fields[1], 10, 64)
			if err != nil {
				return 0, false
			}
			return kb << 10, true
		}
	}
	return 0, false
}
