package memlimit

import (
	"testing"
	"testing/fstest"
)

func TestFromFS(t *testing.T) {
	meminfo := &fstest.MapFile{Data: []byte("MemTotal:       24576000 kB\nMemFree:        1000 kB\n")}
	for _, tc := range []struct {
		name  string
		files fstest.MapFS
		want  uint64
	}{
		{"cgroup v2 limit", fstest.MapFS{"sys/fs/cgroup/memory.max": {Data: []byte("4294967296\n")}, "proc/meminfo": meminfo}, 4294967296 / 10 * 8},
		{"cgroup v2 unlimited", fstest.MapFS{"sys/fs/cgroup/memory.max": {Data: []byte("max\n")}, "proc/meminfo": meminfo}, 24576000 << 10 / 4},
		{"cgroup v1 limit", fstest.MapFS{"sys/fs/cgroup/memory/memory.limit_in_bytes": {Data: []byte("2147483648\n")}}, 2147483648 / 10 * 8},
		{"cgroup v1 unlimited", fstest.MapFS{"sys/fs/cgroup/memory/memory.limit_in_bytes": {Data: []byte("9223372036854771712\n")}, "proc/meminfo": meminfo}, 24576000 << 10 / 4},
		{"small cgroup", fstest.MapFS{"sys/fs/cgroup/memory.max": {Data: []byte("100000000")}}, 80000000},
		{"small machine", fstest.MapFS{"proc/meminfo": {Data: []byte("MemTotal: 1048576 kB")}}, Floor},
		{"tiny machine", fstest.MapFS{"proc/meminfo": {Data: []byte("MemTotal: 262144 kB")}}, 256 << 20},
		{"physical only", fstest.MapFS{"proc/meminfo": meminfo}, 24576000 << 10 / 4},
		{"nothing readable", fstest.MapFS{}, 0},
		{"garbage", fstest.MapFS{"proc/meminfo": {Data: []byte("MemTotal: lots kB")}}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := FromFS(tc.files); got != tc.want {
				t.Errorf("got %d, want %d", got, tc.want)
			}
		})
	}
}
